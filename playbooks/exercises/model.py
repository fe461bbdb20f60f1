"""The scenario model: participants, a timeline of injects at offsets, expectations, bots.

A scenario is data (YAML, see :mod:`playbooks.exercises.loader`); every model forbids unknown
keys so a typo is an error with its file and line, never a silently ignored setting.
Offsets are exercise time from the start: ``T+00:05`` (hours:minutes) or ``T+1:30:00``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pukara.core.schema import Classification, Entity

_OFFSET = re.compile(r"^T\+(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


def parse_offset(value: Any) -> float:
    """``T+HH:MM`` or ``T+H:MM:SS`` → seconds of exercise time (numbers pass as seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _OFFSET.match(str(value).strip())
    if match is None:
        raise ValueError(f"offset {value!r} is not T+HH:MM or T+H:MM:SS")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600.0 + int(minutes) * 60.0 + int(seconds or 0)


def format_offset(seconds: float) -> str:
    """Seconds of exercise time → ``T+H:MM:SS``."""
    whole = round(seconds)
    return f"T+{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


Offset = Annotated[float, BeforeValidator(parse_offset)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Status(StrEnum):
    """The life of one run of a scenario (OpenAEV's simulation states)."""

    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"


class Member(Protocol):
    """What a selector looks at: an entity's id and sector."""

    @property
    def id(self) -> str:
        """The entity id."""
        ...

    @property
    def sector(self) -> str:
        """The entity's sector."""
        ...


class Selector(_Strict):
    """Which participants an inject targets: entity ids and/or sectors (empty: everyone)."""

    entities: list[str] = Field(default_factory=list)
    sectors: list[str] = Field(default_factory=list)

    def picks(self, entity: Member) -> bool:
        """True when ``entity`` is selected (an empty selector selects everyone)."""
        if not self.entities and not self.sectors:
            return True
        return entity.id in self.entities or entity.sector in self.sectors


class Participant(_Strict):
    """One participant line: an entity id or a sector selector."""

    entity: str | None = None
    sector: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Participant:
        if (self.entity is None) == (self.sector is None):
            raise ValueError("give exactly one of 'entity' or 'sector'")
        return self


class ExpectationKind(StrEnum):
    """What a participant is expected to do after an inject."""

    REPORT = "report"                  # reports an incident within the window
    CLASSIFICATION = "classification"  # … with this RSIT classification
    INDICATOR = "indicator"            # … naming this observable
    STATUS = "status"                  # the incident reaches this stage or status
    TASKS = "tasks"                    # the incident's case has these tasks done


class ObservableRef(_Strict):
    """An observable an expectation looks for."""

    type: str
    value: str


class Expectation(_Strict):
    """One scored expectation of each targeted participant."""

    id: str = Field(pattern=SLUG_PATTERN)
    kind: ExpectationKind
    points: int = Field(ge=0, le=1000)
    within_minutes: float = Field(gt=0, le=7 * 24 * 60, description="expiry after the inject")
    classification: str | None = None
    indicator: ObservableRef | None = None
    status: str | None = None
    tasks: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _argument(self) -> Expectation:
        needed = {ExpectationKind.CLASSIFICATION: self.classification,
                  ExpectationKind.INDICATOR: self.indicator,
                  ExpectationKind.STATUS: self.status,
                  ExpectationKind.TASKS: self.tasks or None}
        if self.kind in needed and needed[self.kind] is None:
            raise ValueError(f"a {self.kind.value} expectation needs '{self.kind.value}'")
        if self.classification is not None:
            Classification.parse(self.classification)
        return self


class Inject(_Strict):
    """One stimulus at an offset: its kind (a registered inject function) and arguments."""

    id: str = Field(pattern=SLUG_PATTERN)
    at: Offset
    kind: str
    title: str = ""
    target: Selector = Field(default_factory=Selector)
    args: dict[str, Any] = Field(default_factory=dict)
    expectations: list[Expectation] = Field(default_factory=list)

    @property
    def ends_at(self) -> float:
        """Exercise second after which every expectation of this inject has expired."""
        return self.at + max((e.within_minutes * 60 for e in self.expectations), default=0.0)


class ReactionTime(_Strict):
    """A bot's reaction delay in exercise minutes: lognormal (median, sigma) or uniform."""

    distribution: Literal["lognormal", "uniform"] = "lognormal"
    median: float = Field(default=15.0, gt=0)
    sigma: float = Field(default=0.3, ge=0, le=3)
    low: float = Field(default=5.0, ge=0)
    high: float = Field(default=30.0, ge=0)


class BotProfile(_Strict):
    """How a simulated participant behaves."""

    reaction: ReactionTime = Field(default_factory=ReactionTime)
    accuracy: float = Field(default=0.9, ge=0, le=1, description="chance of the right class")
    miss_chance: float = Field(default=0.0, ge=0, le=1, description="chance to ignore an inject")
    indicator_chance: float = Field(default=1.0, ge=0, le=1)
    final_after_minutes: float | None = Field(default=None, gt=0,
                                              description="send a final report this much later")


class Bots(_Strict):
    """Bot profiles: a default and per-entity overrides, with the seed of every draw."""

    seed: int = 1
    default: BotProfile = Field(default_factory=BotProfile)
    entities: dict[str, BotProfile] = Field(default_factory=dict)

    def profile(self, entity_id: str) -> BotProfile:
        """The profile that plays ``entity_id``."""
        return self.entities.get(entity_id, self.default)


class Scenario(_Strict):
    """A designed exercise, ready to be run any number of times."""

    id: str = Field(pattern=SLUG_PATTERN)
    title: str = Field(min_length=1, max_length=300)
    description: str = ""
    objectives: list[str] = Field(default_factory=list)
    participants: list[Participant] = Field(min_length=1)
    timeline: list[Inject] = Field(min_length=1)
    bots: Bots = Field(default_factory=Bots)

    @model_validator(mode="after")
    def _unique_ids(self) -> Scenario:
        seen: set[str] = set()
        for inject in self.timeline:
            if inject.id in seen:
                raise ValueError(f"inject id {inject.id!r} is used twice")
            seen.add(inject.id)
        return self

    @property
    def ends_at(self) -> float:
        """Exercise second at which the last inject has fired and every expectation expired."""
        return max(inject.ends_at for inject in self.timeline)

    def participant_ids(self, registry: list[Entity]) -> list[str]:
        """The entity ids taking part, resolved against the constituency registry."""
        chosen: list[str] = []
        for entity in registry:
            if any(p.entity == entity.id or p.sector == entity.sector
                   for p in self.participants):
                chosen.append(entity.id)
        return chosen


def check_participants(scenario: Scenario, registry: list[Entity]) -> list[str]:
    """Problems of ``scenario`` against the registry (unknown entity ids, empty sectors)."""
    known = {e.id for e in registry}
    sectors = {e.sector for e in registry}
    problems = [f"participant entity {p.entity!r} is not in the registry"
                for p in scenario.participants if p.entity and p.entity not in known]
    problems += [f"participant sector {p.sector!r} has no entity in the registry"
                 for p in scenario.participants if p.sector and p.sector not in sectors]
    return problems
