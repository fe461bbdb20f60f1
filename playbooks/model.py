"""The playbook schema: a validated document, one step kind per step.

A playbook says when it applies (``when``: RSIT classification patterns, a minimum severity,
entity sectors) and lists steps in NIST SP 800-61 phases. Each step is exactly one of a
manual ``task``, an automated ``action`` (a name from the action registry, with ``with``
arguments and ``retry``), an ``approval`` by a role, or a ``decision`` on a safe condition
(:mod:`playbooks.condition`) with ``then``/``else`` branches. Steps form a graph by ``needs``.
Cross-step checks (unknown ids, cycles, unknown actions) live in :mod:`playbooks.loader`,
which knows the line of every field.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from playbooks.condition import Condition
from pukara.core.errors import InvalidInput
from pukara.core.taxonomy import Severity

PHASES = ("detection-analysis", "containment", "eradication", "recovery", "post-incident")
Phase = Literal["detection-analysis", "containment", "eradication", "recovery", "post-incident"]
STEP_KINDS = ("task", "action", "approval", "decision")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_OFFSET = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_offset(text: str) -> timedelta:
    """``30m``, ``4h``, ``3d``, ``1w`` as a timedelta."""
    found = _OFFSET.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not an offset like 30m, 4h, 3d or 1w")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _slug(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("an id is lower-case letters, digits and '-', 1 to 63 characters")
    return value


class When(_Strict):
    """When a playbook starts by itself on a newly opened case."""

    classifications: list[str] = Field(default_factory=list,
                                       description="RSIT class/type patterns, * wildcards")
    min_severity: Severity = Severity.INFO
    sectors: list[str] = Field(default_factory=list, description="any entity sector; empty: any")

    def matches(self, classification: str, severity: Severity, sectors: list[str]) -> bool:
        """True when a case with these fields should run the playbook."""
        if self.classifications and not any(fnmatch.fnmatchcase(classification, pattern)
                                            for pattern in self.classifications):
            return False
        if severity < self.min_severity:
            return False
        return not self.sectors or bool(set(self.sectors) & set(sectors))


class Input(_Strict):
    """A typed input of a playbook; without a default it must be given when the run starts.
    Action arguments use it as ``${inputs.<name>}``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    type: Literal["string", "integer", "boolean", "duration"] = "string"
    default: Any = None
    description: str = ""

    @model_validator(mode="after")
    def _default_typed(self) -> Input:
        if self.default is not None:
            self.typed(self.default)
        return self

    def typed(self, value: Any) -> Any:
        """``value`` as this input's type (text from the command line is converted)."""
        text = str(value).strip()
        if self.type == "integer":
            if isinstance(value, bool) or not text.lstrip("-").isdigit():
                raise ValueError(f"input {self.name!r} must be an integer, not {value!r}")
            return int(text)
        if self.type == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(f"input {self.name!r} must be true or false, not {value!r}")
            return text.lower() == "true"
        if self.type == "duration":
            parse_offset(text)
        return text


_REFERENCE = re.compile(r"\$\{inputs\.([a-z][a-z0-9_]*)\}")


def references(value: Any) -> set[str]:
    """The input names ``${inputs.<name>}`` used anywhere in an argument value."""
    if isinstance(value, str):
        return set(_REFERENCE.findall(value))
    if isinstance(value, dict):
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


def substitute(value: Any, inputs: dict[str, Any]) -> Any:
    """``value`` with input references replaced (a whole-string reference keeps the type)."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return inputs[whole.group(1)]
        return _REFERENCE.sub(lambda found: str(inputs[found.group(1)]), value)
    if isinstance(value, dict):
        return {key: substitute(item, inputs) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, inputs) for item in value]
    return value


class ManualTask(_Strict):
    """A task created in the case; the step waits until it is done."""

    title: str = Field(min_length=1, max_length=300)
    owner: Literal["analyst", "coordinator", "admin", "entity"] = "analyst"
    due: str | None = Field(default=None, description="offset from the step's start: 4h, 3d")
    instructions: str = ""

    @field_validator("due")
    @classmethod
    def _due(cls, value: str | None) -> str | None:
        if value is not None:
            parse_offset(value)
        return value


class Retry(_Strict):
    """How often an action is tried, and the first wait (doubled after each failure)."""

    attempts: int = Field(default=3, ge=1, le=20)
    backoff: str = "1m"

    @field_validator("backoff")
    @classmethod
    def _backoff(cls, value: str) -> str:
        parse_offset(value)
        return value

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure (exponential, capped at one day)."""
        wait: timedelta = parse_offset(self.backoff) * (2 ** max(failures - 1, 0))
        return min(wait, timedelta(days=1))


class ActionCall(_Strict):
    """An automated action from the registry."""

    name: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    retry: Retry = Field(default_factory=Retry)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Approval(_Strict):
    """A person of ``role`` (or higher) must approve before dependent steps run."""

    role: Literal["coordinator", "admin"] = "coordinator"
    prompt: str = Field(min_length=1, max_length=1000)


class Decision(_Strict):
    """Branch on a condition over case fields; the branch not taken is skipped."""

    condition: str = Field(alias="if")
    then: list[str] = Field(default_factory=list)
    else_: list[str] = Field(default_factory=list, alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str) -> str:
        Condition.parse(value)
        return value

    def parsed(self) -> Condition:
        """The parsed condition."""
        return Condition.parse(self.condition)


class Step(_Strict):
    """One node of the playbook graph."""

    id: str
    name: str = Field(min_length=1, max_length=200)
    phase: Phase
    needs: list[str] = Field(default_factory=list)
    task: ManualTask | None = None
    action: ActionCall | None = None
    approval: Approval | None = None
    decision: Decision | None = None

    @field_validator("id")
    @classmethod
    def _step_id(cls, value: str) -> str:
        return _slug(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)}; "
                             f"found {', '.join(given) or 'none'}")
        return self

    @property
    def kind(self) -> str:
        """task | action | approval | decision."""
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)


class Playbook(_Strict):
    """A whole playbook document."""

    id: str
    title: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    description: str = ""
    references: list[str] = Field(default_factory=list)
    when: When = Field(default_factory=When)
    auto_start: bool = True
    inputs: list[Input] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _playbook_id(cls, value: str) -> str:
        return _slug(value)

    @model_validator(mode="after")
    def _unique_inputs(self) -> Playbook:
        names = [item.name for item in self.inputs]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"duplicate input {duplicated[0]!r}")
        return self

    def resolve_inputs(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every declared input typed, from ``given`` or its default; InvalidInput otherwise."""
        declared = {item.name: item for item in self.inputs}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise InvalidInput(f"playbook {self.id} has no input {unknown[0]!r}", field="inputs")
        resolved = {}
        for name, item in declared.items():
            value = given.get(name, item.default)
            if value is None:
                raise InvalidInput(f"playbook {self.id} needs input {name!r}", field="inputs")
            try:
                resolved[name] = item.typed(value)
            except ValueError as exc:
                raise InvalidInput(str(exc), field="inputs") from None
        return resolved

    def step(self, step_id: str) -> Step:
        """The step with this id."""
        return next(step for step in self.steps if step.id == step_id)

    def branch_targets(self) -> dict[str, str]:
        """Each step named in a decision branch → the decision naming it."""
        return {target: step.id for step in self.steps if step.decision
                for target in (*step.decision.then, *step.decision.else_)}
