"""Load scenario YAML with located errors: every problem names its file, line and field.

YAML is composed into nodes first so each key path keeps its line; pydantic errors are
collected (all of them, not the first) and mapped back to the line of the nearest node.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from playbooks.exercises.injects import known_kinds
from playbooks.exercises.model import Scenario
from pukara.core.errors import InvalidInput

Path_ = tuple[str | int, ...]


class ScenarioError(InvalidInput):
    """A scenario file is invalid; ``problems`` lists ``file:line: field: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _lines(node: yaml.Node, path: Path_ = ()) -> Iterator[tuple[Path_, int]]:
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield (*path, str(key.value)), key.start_mark.line + 1
            yield from _lines(value, (*path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _lines(item, (*path, index))


def _line_of(lines: dict[Path_, int], loc: Path_) -> int:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def _field(loc: Path_) -> str:
    return ".".join(str(part) for part in loc) or "(top)"


def parse_scenario(text: str, name: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; ScenarioError lists every located problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError([f"{name}:{line}: not valid YAML: {exc}"]) from exc
    if node is None or not isinstance(data, dict):
        raise ScenarioError([f"{name}:1: a scenario is a mapping with id, title, timeline …"])
    lines = dict(_lines(node))
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
            problems.append(f"{name}:{_line_of(lines, loc)}: {_field(loc)}: {error['msg']}")
        raise ScenarioError(problems) from exc
    unknown = [(i, inject) for i, inject in enumerate(scenario.timeline)
               if inject.kind not in known_kinds()]
    if unknown:
        raise ScenarioError([
            f"{name}:{_line_of(lines, ('timeline', i, 'kind'))}: timeline.{i}.kind: unknown "
            f"inject kind {inject.kind!r}; known: {', '.join(sorted(known_kinds()))}"
            for i, inject in unknown])
    return scenario


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read: {exc.strerror}"]) from exc
    return parse_scenario(text, str(path))


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios shipped in ``scenarios/*.yaml``, by scenario id (the file stem)."""
    folder = Path(__file__).resolve().parent / "scenarios"
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def to_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON-ready data (frozen into each run)."""
    return scenario.model_dump(mode="json")
