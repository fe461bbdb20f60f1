"""Request bodies of the entity API.

:class:`IncidentSubmission` is :class:`pukara.core.schema.IncidentReport` without the fields
the server owns (:data:`SERVER_OWNED`): the entity comes from the token, the source is the
API, the raw original is the request body, and exercises never arrive through this route.
``extra="forbid"`` turns any attempt to set those — or ``created_by``, ``stored_path``,
``sha256``, ``tlp_origin``, ``role``, ``token``, ``is_exercise`` … — into a 422 naming the
field (SECURITY B3, A4).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pukara.core.schema import (
    MAX_TEXT,
    MAX_TITLE,
    Classification,
    ContainmentStatus,
    Impact,
    IncidentReport,
    Observable,
    UtcDateTime,
)
from pukara.core.taxonomy import PAP, TLP, Severity

#: IncidentReport fields a client may not set
SERVER_OWNED = frozenset({"entity_id", "source", "raw", "exercise_id", "attachments"})


class IncidentSubmission(BaseModel):
    """What an entity sends to ``POST /api/v1/incidents``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    classification: str = Field(
        max_length=160, description="'<rsit-class>/<rsit-type>', e.g. 'malicious-code/ransomware'")
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

    @field_validator("classification")
    @classmethod
    def _known_classification(cls, value: str) -> str:
        return str(Classification.parse(value))

    def to_report(self, entity_id: str, raw: str) -> IncidentReport:
        """The IncidentReport to store: the entity from the token, the body as ``raw``."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        fields["classification"] = Classification.parse(self.classification)
        return IncidentReport(**fields, entity_id=entity_id, source="api", raw=raw)
