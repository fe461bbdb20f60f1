"""Case templates: YAML files (``cases/templates/<name>.yaml``) that prefill a new case.

A template gives defaults (classification, severity, TLP, PAP, tags, ATT&CK techniques, a
description) and the tasks a case of that kind needs. Files are validated as data with
located errors, like pySigma rules: every problem is reported with its file and line, all at
once (:class:`TemplateError`), never as a bare traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from cases.services.case_models import (
    CaseDraft,
    check_classification,
    check_techniques,
    parse_pap,
    parse_tlp,
)
from pukara.core.errors import InvalidInput, NotFound
from pukara.core.taxonomy import PAP, TLP, Severity

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
Technique = Annotated[str, AfterValidator(lambda value: check_techniques([value])[0])]


@dataclass(frozen=True)
class Problem:
    """One located problem in a template file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"


class TemplateError(InvalidInput):
    """A template file with one or more problems; ``problems`` locates each."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems), field="template")
        self.problems = list(problems)


class TaskSpec(BaseModel):
    """A task a template adds: title, optional owner, due hours after the case opens."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    owner: str | None = None
    due_hours: float | None = Field(default=None, gt=0)
    notes: str = ""


class CaseTemplate(BaseModel):
    """A case template as stored in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    description: str = ""
    title_prefix: str = ""
    classification: str
    severity: Severity = Severity.MEDIUM
    tlp: TLP = TLP.AMBER
    pap: PAP = PAP.AMBER
    tags: list[str] = Field(default_factory=list)
    techniques: list[Technique] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(default_factory=list)

    _classification = field_validator("classification")(check_classification)

    _tlp = field_validator("tlp", mode="before")(parse_tlp)
    _pap = field_validator("pap", mode="before")(parse_pap)

    def apply(self, draft: CaseDraft, explicit: Iterable[str]) -> CaseDraft:
        """``draft`` with this template's defaults for every field not set explicitly."""
        given = set(explicit)
        values = draft.model_dump()
        for name in ("classification", "severity", "tlp", "pap"):
            if name not in given:
                values[name] = getattr(self, name)
        values["tags"] = list(dict.fromkeys([*self.tags, *draft.tags]))
        values["techniques"] = list(dict.fromkeys([*self.techniques, *draft.techniques]))
        if not draft.description:
            values["description"] = self.description
        if self.title_prefix and not draft.title.startswith(self.title_prefix):
            values["title"] = f"{self.title_prefix}{draft.title}"
        values["template"] = self.name
        return CaseDraft.model_validate(values)


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of the deepest parent found)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def parse_template(text: str, file: str = "<template>") -> CaseTemplate:
    """Validate one template document; TemplateError lists every located problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError([Problem(file, line, "yaml", str(problem))]) from None
    if not isinstance(data, dict):
        raise TemplateError([Problem(file, 1, "template", "must be a mapping of fields")])
    try:
        return CaseTemplate.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(file, _line_of(node, error["loc"]),
                    ".".join(str(p) for p in error["loc"]) or "template",
                    str(error["msg"]).removeprefix("Value error, "))
            for error in exc.errors()
        ]
        raise TemplateError(problems) from None


def load_template(path: Path) -> CaseTemplate:
    """Read and validate a template file; its name must match the file name."""
    template = parse_template(path.read_text(encoding="utf-8"), str(path))
    if template.name != path.stem:
        raise TemplateError([Problem(str(path), 1, "name",
                                     f"{template.name!r} differs from the file name "
                                     f"{path.stem!r}")])
    return template


class TemplateLibrary:
    """The templates of one or more folders (later folders override earlier ones)."""

    def __init__(self, folders: Sequence[Path] = (TEMPLATES_DIR,)) -> None:
        self.folders = list(folders)

    def paths(self) -> dict[str, Path]:
        """Template name → file."""
        found: dict[str, Path] = {}
        for folder in self.folders:
            for path in sorted(folder.glob("*.yaml")):
                found[path.stem] = path
        return found

    def names(self) -> list[str]:
        """The names of the available templates."""
        return sorted(self.paths())

    def get(self, name: str) -> CaseTemplate:
        """The template called ``name``; NotFound lists the ones there are."""
        path = self.paths().get(name)
        if path is None:
            raise NotFound(f"no case template {name!r} (available: {', '.join(self.names())})")
        return load_template(path)

    def validate_all(self) -> list[Problem]:
        """Every problem of every template file (empty when all are valid)."""
        problems: list[Problem] = []
        for path in self.paths().values():
            try:
                load_template(path)
            except TemplateError as exc:
                problems.extend(exc.problems)
        return problems
