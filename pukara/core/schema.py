"""The shared vocabulary: what collectors produce, enrichment annotates and the store keeps.

All models are pydantic v2. Timestamps are UTC (naive input is read as UTC). Observable
values are normalised on construction, so equal things compare equal everywhere.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, BinaryIO, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType, normalize
from pukara.core.taxonomy import (
    PAP,
    TLP,
    Severity,
    canonical_rsit_type,
    rsit_version,
    validate_classification,
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MAX_TITLE = 512
MAX_TEXT = 100_000


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid", str_strip_whitespace=True)


M = TypeVar("M", bound=BaseModel)
#: the time bucket of :meth:`Alert.fingerprint` when none is given (correlation uses it)
FINGERPRINT_BUCKET = 3600


def construct(cls: type[M], values: dict[str, Any]) -> M:
    """``cls.model_construct(**values)`` for trusted values that name every field.

    pydantic's ``model_construct`` walks every field's aliases and defaults on each call
    (about 8 µs for an Alert); the hot paths (parsers, matching) always pass every field,
    so this only orders them as the model declares them and sets the instance's slots as
    ``model_construct`` does. Anything else (missing or unknown names) goes to
    ``model_construct``. tests/pukara/test_core_schema.py checks both give equal models.
    """
    names = cls.__pydantic_fields__
    if len(values) != len(names) or cls.__pydantic_post_init__:
        return cls.model_construct(**values)
    try:
        ordered = {name: values[name] for name in names}
    except KeyError:
        return cls.model_construct(**values)
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", ordered)
    object.__setattr__(model, "__pydantic_fields_set__", set(ordered))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class Classification(_Model):
    """An RSIT class and type, with the taxonomy version they were checked against."""

    taxonomy: str
    type: str
    version: str = Field(default_factory=rsit_version)

    @model_validator(mode="after")
    def _check(self) -> Classification:
        self.taxonomy, self.type = validate_classification(self.taxonomy, self.type)
        return self

    @classmethod
    def parse(cls, value: str) -> Classification:
        """Parse ``class/type`` (also ``rsit:class="type"`` machine tags)."""
        text = value.strip()
        tag = re.match(r'^rsit:([a-z-]+)="([^"]+)"$', text, re.I)
        if tag:
            taxonomy, type_ = validate_classification(tag.group(1), tag.group(2))
            return cls(taxonomy=taxonomy, type=type_)
        if "/" not in text:
            raise InvalidInput(
                f"classification {value!r} must be '<rsit-class>/<rsit-type>', "
                "e.g. 'malicious-code/infected-system'",
                field="classification",
            )
        taxonomy, type_ = validate_classification(*text.split("/", 1))
        return cls(taxonomy=taxonomy, type=type_)

    @property
    def rsit_type(self) -> str:
        """The current RSIT type (legacy eCSIRT types mapped)."""
        return canonical_rsit_type(self.taxonomy, self.type)

    def __str__(self) -> str:
        return f"{self.taxonomy}/{self.type}"

    @property
    def tag(self) -> str:
        """The MISP machine tag, e.g. ``rsit:malicious-code="infected-system"``."""
        return f'rsit:{self.taxonomy}="{self.rsit_type}"'


UNDETERMINED = ("other", "undetermined")


def undetermined() -> Classification:
    """The classification of a record nobody classified yet."""
    return Classification(taxonomy=UNDETERMINED[0], type=UNDETERMINED[1])


class Observable(_Model):
    """A typed, normalised value: an IP, a domain, a hash …"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ObservableType
    value: str = Field(max_length=4096)
    role: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _normalise(self) -> Observable:
        object.__setattr__(self, "value", normalize(self.type, self.value))
        return self

    @property
    def key(self) -> str:
        """``type:value``, the identity used for matching and dedup."""
        return f"{self.type}:{self.value}"  # a StrEnum formats as its value


class Contact(_Model):
    """A person or mailbox of an entity's CSIRT."""

    name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=64)
    role: str = Field(default="csirt", max_length=64)
    pgp_fingerprint: str | None = Field(default=None, max_length=64)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalize(ObservableType.EMAIL, value)


class Entity(_Model):
    """A constituent: a public entity with its own CSIRT."""

    id: str
    name: str = Field(min_length=1, max_length=300)
    sector: str = Field(min_length=1, max_length=64)
    criticality: int = Field(default=2, ge=1, le=3, description="1 = critical, 3 = low")
    language: Literal["es", "en"] = "es"
    contacts: list[Contact] = Field(default_factory=list)
    cidrs: list[str] = Field(default_factory=list)
    asns: list[int] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    partners: list[str] = Field(default_factory=list, description="entity ids for TLP:AMBER")
    regime: str | None = Field(
        default=None, max_length=32, description="reporting-deadline regime; None = default"
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("entity id must be a slug: a-z, 0-9 and '-', 2 to 63 characters")
        return value

    @field_validator("sector")
    @classmethod
    def _sector(cls, value: str) -> str:
        return value.lower()

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return [normalize(ObservableType.CIDR, v) for v in values]

    @field_validator("asns")
    @classmethod
    def _asns(cls, values: list[int]) -> list[int]:
        return [int(normalize(ObservableType.ASN, str(v))) for v in values]

    @field_validator("domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        return [normalize(ObservableType.DOMAIN, v) for v in values]


class Hit(_Model):
    """Why an alert matters: an indicator or rule it matched."""

    kind: Literal["indicator", "yara", "correlation", "warninglist"]
    observable: str | None = None
    indicator: str | None = None
    indicator_type: str | None = None
    source: str = ""
    event_uuid: str | None = None
    event_info: str | None = None
    threat_level: int | None = None
    rule: str | None = None
    namespace: str | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    suppressed: bool = False


class Attachment(_Model):
    """A file that arrived with a record (e-mail attachment, captured payload)."""

    filename: str = Field(max_length=255)
    content_type: str = "application/octet-stream"
    data: bytes
    sha256: str = ""

    @model_validator(mode="after")
    def _hash(self) -> Attachment:
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        return self


class Flow(_Model):
    """The network 5-tuple of an alert, when it has one."""

    src_ip: str | None = None
    src_port: int | None = Field(default=None, ge=0, le=65535)
    dst_ip: str | None = None
    dst_port: int | None = Field(default=None, ge=0, le=65535)
    proto: str | None = Field(default=None, max_length=16)


class Alert(_Model):
    """One machine alert or observation, normalised from any source."""

    source: str = Field(min_length=1, max_length=64, description="sensor or feed name")
    source_ref: str | None = Field(default=None, max_length=256)
    entity_id: str | None = None
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    description: str = Field(default="", max_length=MAX_TEXT)
    classification: Classification = Field(default_factory=undetermined)
    severity: Severity = Severity.LOW
    tlp: TLP = TLP.AMBER
    observed_at: UtcDateTime = Field(default_factory=utcnow)
    received_at: UtcDateTime = Field(default_factory=utcnow)
    signature: str | None = Field(default=None, max_length=MAX_TITLE)
    signature_id: str | None = Field(default=None, max_length=64)
    flow: Flow | None = None
    observables: list[Observable] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    hits: list[Hit] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
    raw: str | None = Field(default=None, description="the original record, as received")
    exercise_id: str | None = None

    def fingerprint(self, bucket_seconds: int = FINGERPRINT_BUCKET) -> str:
        """Dedup key: source, entity, signature or type, key observables, time bucket."""
        bucket = int(self.observed_at.timestamp()) // max(1, bucket_seconds)
        what = self.signature_id or self.signature or str(self.classification)
        keys = sorted({o.key for o in self.observables if o.role != "context"})
        parts = [self.source, self.entity_id or "-", what, *keys, str(bucket)]
        if self.exercise_id:
            parts.append(f"exercise:{self.exercise_id}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class ContainmentStatus(StrEnum):
    """How far the entity got in handling its incident."""

    NOT_STARTED = "not-started"
    IN_PROGRESS = "in-progress"
    CONTAINED = "contained"
    ERADICATED = "eradicated"
    RECOVERED = "recovered"


class Impact(_Model):
    """What an incident affected, as the entity reports it."""

    services_affected: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    personal_data: bool = False
    people_affected: int | None = Field(default=None, ge=0)
    operational_disruption: bool = False
    cross_border: bool = False
    financial_loss: bool = False


class IncidentReport(_Model):
    """An entity's report of an incident (the first stage; updates come later)."""

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    classification: Classification
    detected_at: UtcDateTime
    occurred_at: UtcDateTime | None = None
    awareness_at: UtcDateTime | None = None
    description: str = Field(default="", max_length=MAX_TEXT)
    severity: Severity = Severity.MEDIUM
    tlp: TLP = TLP.AMBER
    pap: PAP = PAP.AMBER
    observables: list[Observable] = Field(default_factory=list, max_length=10_000)
    impact: Impact = Field(default_factory=Impact)
    containment: ContainmentStatus = ContainmentStatus.NOT_STARTED
    external_id: str | None = Field(default=None, max_length=128)
    reporter: str | None = Field(default=None, max_length=200)
    attachments: list[Attachment] = Field(default_factory=list)
    source: str = Field(default="api", max_length=64)
    entity_id: str | None = None
    raw: str | None = None
    exercise_id: str | None = None

    @field_validator("classification", mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return Classification.parse(value) if isinstance(value, str) else value

    @property
    def awareness(self) -> datetime:
        """When the entity became aware: the deadline clocks start here."""
        return self.awareness_at or self.detected_at


class Indicator(_Model):
    """A piece of threat intelligence to match observables against."""

    type: ObservableType
    value: str
    source: str = Field(default="", max_length=128)
    event_uuid: str | None = None
    event_info: str | None = Field(default=None, max_length=MAX_TITLE)
    threat_level: int | None = Field(default=None, ge=1, le=4)
    org: str | None = None
    tags: list[str] = Field(default_factory=list)
    tlp: TLP = TLP.GREEN
    to_ids: bool = True
    first_seen: UtcDateTime | None = None
    last_seen: UtcDateTime | None = None
    expires_at: UtcDateTime | None = None

    @model_validator(mode="after")
    def _normalise(self) -> Indicator:
        self.value = normalize(self.type, self.value)
        return self


class ParseFailure(_Model):
    """One record a parser could not read: where, why, and the raw text. Yielded, not raised."""

    source: str
    line: int | None = None
    record: int | None = None
    raw: str = ""
    reason: str

    @field_validator("raw")
    @classmethod
    def _truncate(cls, value: str) -> str:
        return value if len(value) <= 2048 else value[:2048] + "…"


Record = Alert | IncidentReport | Indicator | ParseFailure


@dataclass
class RawReport:
    """Bytes as a source received them, with where they came from. Parsers stream ``stream``."""

    stream: BinaryIO
    source: str
    filename: str = ""
    entity_id: str | None = None
    format: str | None = None
    exercise_id: str | None = None
    received_at: datetime = field(default_factory=utcnow)
    metadata: dict[str, Any] = field(default_factory=dict)


class IngestError(_Model):
    """One rejected record in an ingest summary."""

    source: str
    line: int | None = None
    record: int | None = None
    error: str


class IngestResult(_Model):
    """What an ingest did: the CLI's and the API's ``{accepted, duplicates, rejected, errors}``."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    errors: list[IngestError] = Field(default_factory=list)

    def add(self, other: IngestResult, max_errors: int = 1000) -> None:
        """Fold another result into this one, keeping at most ``max_errors`` errors."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.skipped += other.skipped
        room = max(0, max_errors - len(self.errors))
        self.errors.extend(other.errors[:room])
