"""The shapes of a case: what an analyst sends to open or change one, the allowed values,
the row ↔ view mapping, and the look-up of a case by id or tracking number."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, RowMapping, or_, select

from cases.store.tables_cases import cases
from pukara.core.errors import InvalidInput, NotFound
from pukara.core.schema import MAX_TEXT, MAX_TITLE, Classification
from pukara.core.taxonomy import PAP, TLP, Severity

CASE_STATUSES = ("new", "in-progress", "contained", "resolved", "closed")
OPEN_CASE_STATUSES = ("new", "in-progress", "contained")
RESOLUTIONS = ("true-positive", "false-positive", "duplicate", "other")
TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")
#: RTIR-style cascade: the status an entity sees on its incident while linked to a case
INCIDENT_STATUS_FOR_CASE = {
    "new": "open",
    "in-progress": "in-progress",
    "contained": "in-progress",
    "resolved": "resolved",
    "closed": "closed",
}
NOT_FOUND = "no such case"
ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: Mapping[str, Any]) -> ModelT:
    """``model`` built from ``data``; InvalidInput naming the first bad field otherwise."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}", field=where) from None


def check_techniques(values: list[str]) -> list[str]:
    """ATT&CK technique ids ``T1234`` or ``T1234.001``, upper-cased, de-duplicated."""
    seen: dict[str, None] = {}
    for value in values:
        technique = value.strip().upper()
        if not TECHNIQUE.match(technique):
            raise InvalidInput(f"{value!r} is not an ATT&CK technique id (T1234 or T1234.001)",
                               field="techniques")
        seen[technique] = None
    return list(seen)


def check_classification(value: str) -> str:
    """``class/type`` checked against the pinned RSIT taxonomy."""
    return str(Classification.parse(value))


def _tags(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def parse_tlp(value: Any) -> Any:
    """A TLP label in any accepted spelling (``TLP:AMBER``, ``white`` …) → TLP."""
    return TLP.parse(value) if isinstance(value, str) else value


def parse_pap(value: Any) -> Any:
    """A PAP label in any accepted spelling → PAP."""
    return PAP.parse(value) if isinstance(value, str) else value


def parse_severity(value: Any) -> Any:
    """A severity name or TheHive's 1–4 number → Severity."""
    return Severity.parse(value) if isinstance(value, str | int) else value


class CaseDraft(BaseModel):
    """A new case as an analyst, a template or a rule describes it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    description: str = Field(default="", max_length=MAX_TEXT)
    entity_ids: list[str] = Field(default_factory=list)
    classification: str = "other/undetermined"
    severity: Severity = Severity.MEDIUM
    tlp: TLP = TLP.AMBER
    pap: PAP = PAP.AMBER
    assignee: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)
    template: str | None = None
    exercise_id: str | None = None

    _classification = field_validator("classification")(check_classification)
    _techniques = field_validator("techniques")(check_techniques)
    _clean_tags = field_validator("tags")(_tags)

    _tlp = field_validator("tlp", mode="before")(parse_tlp)
    _pap = field_validator("pap", mode="before")(parse_pap)
    _severity = field_validator("severity", mode="before")(parse_severity)


class CaseChanges(BaseModel):
    """Fields an update may set; None leaves a field as it is. Closing is its own action."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    classification: str | None = None
    severity: Severity | None = None
    tlp: TLP | None = None
    pap: PAP | None = None
    status: str | None = None
    assignee: str | None = Field(default=None, max_length=100)
    tags: list[str] | None = None
    techniques: list[str] | None = None
    add_entities: list[str] = Field(default_factory=list)

    @field_validator("classification")
    @classmethod
    def _classification(cls, value: str | None) -> str | None:
        return None if value is None else check_classification(value)

    @field_validator("techniques")
    @classmethod
    def _techniques(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_techniques(value)

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _tags(value)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value == "closed":
            raise InvalidInput("close a case with `close` (resolution and summary)",
                               field="status")
        if value not in CASE_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(CASE_STATUSES)}",
                               field="status")
        return value

    _tlp = field_validator("tlp", mode="before")(parse_tlp)
    _pap = field_validator("pap", mode="before")(parse_pap)
    _severity = field_validator("severity", mode="before")(parse_severity)


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a Z, or None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def case_doc(row: Mapping[Any, Any], entity_ids: list[str]) -> dict[str, Any]:
    """The plain fields of a case (also what before/after audit hashes are taken of)."""
    return {
        "id": row["id"], "number": row["number"], "title": row["title"],
        "description": row["description"], "classification": row["classification"],
        "severity": row["severity"], "tlp": row["tlp"], "pap": row["pap"],
        "status": row["status"], "resolution": row["resolution"], "summary": row["summary"],
        "assignee": row["assignee"], "tags": list(row["tags"]),
        "techniques": list(row["techniques"]), "template": row["template"],
        "merged_into": row["merged_into"], "exercise_id": row["exercise_id"],
        "entity_ids": sorted(entity_ids), "created_by": row["created_by"],
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
        "closed_at": iso(row["closed_at"]),
    }


def find_case(conn: Connection, ref: str, *, lock: bool = False) -> RowMapping:
    """The case row named by its id or its tracking number; NotFound otherwise."""
    ref = str(ref).strip()
    clauses = [cases.c.number == ref.upper()]
    with contextlib.suppress(ValueError):
        clauses.append(cases.c.id == str(uuid.UUID(ref)))
    query = select(cases).where(or_(*clauses))
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"{NOT_FOUND}: {ref}")
    return row
