"""Load playbooks from YAML with every error located (file, line, field), all at once.

PyYAML's composed node tree keeps the line of every key and item; a pydantic error location
(``steps.2.action.name``) is mapped to the nearest node that exists. After the schema, the
graph is checked: duplicate step ids, unknown ``needs`` and branch targets, branch targets
that do not need their decision, unknown action names and cycles in ``needs``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from playbooks.actions import action_names, argument_errors
from playbooks.condition import ConditionError
from playbooks.model import Playbook, references
from pukara.core.errors import InvalidInput

LIBRARY = Path(__file__).resolve().parent / "library"
MAX_BYTES = 1024 * 1024
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LocatedError:
    """One problem in a playbook file."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.file}:{self.line}: {self.message}{where}"


class PlaybookInvalid(InvalidInput):
    """A playbook file was refused; ``errors`` lists every located problem."""

    def __init__(self, errors: Sequence[LocatedError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors),
                         field=self.errors[0].field if self.errors else None)


def _lines(node: yaml.Node, path: Loc, into: dict[Loc, int]) -> None:
    into[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark.line)
            _lines(value, (*path, name), into)
            into[(*path, name)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), into)


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _field(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def parse_yaml(text: str, name: str) -> tuple[Any, dict[Loc, int]]:
    """The document and the line of every path in it; a YAML error is located."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PlaybookInvalid([LocatedError(name, 1, "", "the file is empty")])
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise PlaybookInvalid([LocatedError(name, line, "", f"YAML: {exc.problem}")]) from exc
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    _lines(node, (), lines)
    return document, lines


def _schema_errors(exc: ValidationError, name: str,
                   lines: dict[Loc, int]) -> Iterator[LocatedError]:
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConditionError):
            message = f"bad condition at column {cause.column}: {cause.reason}"
        elif error["type"] == "missing":
            message = f"missing field {loc[-1]!r}"
        elif error["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        yield LocatedError(name, _line_of(lines, loc), _field(loc), message)


def load_text(text: str, name: str = "<playbook>") -> Playbook:
    """A validated playbook from YAML text, or :class:`PlaybookInvalid` with every error."""
    document, lines = parse_yaml(text, name)
    if not isinstance(document, dict):
        raise PlaybookInvalid([LocatedError(name, 1, "", "a playbook is a YAML mapping")])
    try:
        playbook = Playbook.model_validate(document)
    except ValidationError as exc:
        raise PlaybookInvalid(list(_schema_errors(exc, name, lines))) from None
    errors = list(graph_errors(playbook, name, lines))
    if errors:
        raise PlaybookInvalid(errors)
    return playbook


def load_file(path: Path) -> Playbook:
    """A validated playbook from a file (at most 1 MiB)."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PlaybookInvalid([LocatedError(name, 1, "", f"cannot read: {exc.strerror}")]) from exc
    if len(raw) > MAX_BYTES:
        raise PlaybookInvalid([LocatedError(name, 1, "", "the file is larger than 1 MiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlaybookInvalid([LocatedError(name, 1, "", "the file is not UTF-8")]) from exc
    return load_text(text, name)


def graph_errors(playbook: Playbook, name: str, lines: dict[Loc, int]) -> Iterator[LocatedError]:
    """Problems across steps: ids, needs, branches, action names, cycles."""
    seen: dict[str, int] = {}
    known_actions = set(action_names())
    declared = {item.name for item in playbook.inputs}
    for index, step in enumerate(playbook.steps):
        here: Loc = ("steps", index)
        if step.id in seen:
            yield LocatedError(name, _line_of(lines, (*here, "id")), _field((*here, "id")),
                               f"duplicate step id {step.id!r} (first at step {seen[step.id]})")
        seen.setdefault(step.id, index)
        if step.action and step.action.name not in known_actions:
            loc = (*here, "action", "name")
            yield LocatedError(name, _line_of(lines, loc), _field(loc),
                               f"unknown action {step.action.name!r}; known: "
                               f"{', '.join(sorted(known_actions))}")
        elif step.action:
            loc = (*here, "action", "with")
            for problem in argument_errors(step.action.name, step.action.with_):
                yield LocatedError(name, _line_of(lines, loc), _field(loc), problem)
            for missing in sorted(references(step.action.with_) - declared):
                yield LocatedError(name, _line_of(lines, loc), _field(loc),
                                   f"unknown input {missing!r} in ${{inputs.{missing}}}")
    for index, step in enumerate(playbook.steps):
        for position, need in enumerate(step.needs):
            if need not in seen:
                loc = ("steps", index, "needs", position)
                yield LocatedError(name, _line_of(lines, loc), _field(loc),
                                   f"step {step.id!r} needs unknown step {need!r}")
        yield from _branch_errors(playbook, index, seen, name, lines)
    yield from _cycle_errors(playbook, name, lines)


def _branch_errors(playbook: Playbook, index: int, seen: dict[str, int], name: str,
                   lines: dict[Loc, int]) -> Iterator[LocatedError]:
    decision = playbook.steps[index].decision
    if decision is None:
        return
    for key, targets in (("then", decision.then), ("else", decision.else_)):
        for position, target in enumerate(targets):
            loc = ("steps", index, "decision", key, position)
            if target not in seen:
                message = f"branch names unknown step {target!r}"
            elif playbook.steps[index].id not in playbook.steps[seen[target]].needs:
                message = (f"branch target {target!r} must list "
                           f"{playbook.steps[index].id!r} in its needs")
            else:
                continue
            yield LocatedError(name, _line_of(lines, loc), _field(loc), message)


def _cycle_errors(playbook: Playbook, name: str,
                  lines: dict[Loc, int]) -> Iterator[LocatedError]:
    needs = {step.id: [n for n in step.needs if n != step.id] for step in playbook.steps}
    index_of = {step.id: i for i, step in enumerate(playbook.steps)}
    for step in playbook.steps:
        if step.id in step.needs:
            loc = ("steps", index_of[step.id], "needs")
            yield LocatedError(name, _line_of(lines, loc), _field(loc),
                               f"step {step.id!r} needs itself")
    cycle = find_cycle(needs)
    if cycle:
        loc = ("steps", index_of[cycle[0]], "needs")
        yield LocatedError(name, _line_of(lines, loc), _field(loc),
                           f"cycle in needs: {' -> '.join([*cycle, cycle[0]])}")


def find_cycle(needs: dict[str, list[str]]) -> list[str]:
    """One cycle of the ``needs`` graph as a list of step ids, or [] (iterative DFS)."""
    state: dict[str, int] = {}
    for root in needs:
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(needs.get(root, ())))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif child in needs and state.get(child) == 1:
                return path[path.index(child):]
            elif child in needs and not state.get(child):
                state[child] = 1
                stack.append((child, iter(needs[child])))
                path.append(child)
    return []


def library(folder: Path = LIBRARY) -> dict[str, Playbook]:
    """Every playbook of a folder by id (a bad file raises with its errors)."""
    found: dict[str, Playbook] = {}
    for path in sorted(folder.glob("*.yaml")):
        playbook = load_file(path)
        if playbook.id in found:
            raise PlaybookInvalid([LocatedError(str(path), 1, "id",
                                                f"duplicate playbook id {playbook.id!r}")])
        found[playbook.id] = playbook
    return found
