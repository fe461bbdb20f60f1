"""The shapes around incidents: the stage update an entity sends, the list allow-lists, and
the public view the API and the CLI return (RFC 3339 UTC times)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, case

from cases.services.deadlines import (
    Deadlines,
    Stage,
    compute_deadlines,
    deadline_status,
)
from cases.services.identity import Principal
from cases.store.tables import incidents
from pukara.core.config import DeadlineRegime
from pukara.core.schema import (
    MAX_TEXT,
    ContainmentStatus,
    Impact,
    IncidentReport,
    Observable,
    UtcDateTime,
    utcnow,
)
from pukara.core.taxonomy import Severity

MAX_LIMIT = 500
STATUSES = ("new", "open", "in-progress", "resolved", "closed", "rejected")
_SORT_FIELDS = ("created_at", "updated_at", "awareness_at", "severity", "tracking_number")
SORTS = tuple(f"{sign}{name}" for name in _SORT_FIELDS for sign in ("", "-"))


class IncidentUpdate(BaseModel):
    """A stage report or update an entity adds to its incident; becomes an immutable version.

    ``awareness_at`` moves the start of the regulatory clocks and needs a ``reason``.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    stage: Stage
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    severity: Severity | None = None
    containment: ContainmentStatus | None = None
    impact: Impact | None = None
    observables: list[Observable] = Field(default_factory=list, max_length=10_000)
    significant: bool | None = None
    root_cause: str | None = Field(default=None, max_length=MAX_TEXT)
    mitigations: str | None = Field(default=None, max_length=MAX_TEXT)
    cross_border: bool | None = None
    awareness_at: UtcDateTime | None = None
    reason: str | None = Field(default=None, max_length=2000)


def rfc3339(value: datetime | None) -> str | None:
    """``2026-01-31T23:30:00Z`` (microseconds when present); None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sort_clauses(sort: str) -> list[ColumnElement[Any]]:
    """ORDER BY clauses of an allow-listed ``sort``; severity sorts by rank, not name."""
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    column: ColumnElement[Any]
    if name == "severity":
        column = case({s.value: s.rank for s in Severity}, value=incidents.c.severity, else_=-1)
    else:
        column = incidents.c[name]
    tie = incidents.c.tracking_number
    return [column.desc(), tie.desc()] if descending else [column.asc(), tie.asc()]


def submitted_stages(updates: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """Stage name → when it was first submitted."""
    first: dict[str, datetime] = {}
    for update in sorted(updates, key=lambda u: u["number"]):
        first.setdefault(update["stage"], update["created_at"])
    return first


def incident_deadlines(
    row: Mapping[str, Any], stages: Mapping[str, datetime], default: DeadlineRegime
) -> Deadlines:
    """The deadlines of a stored incident: its snapshot of the regime at submission."""
    params = row["doc"].get("deadline_regime")
    regime = DeadlineRegime.model_validate(params) if params else default
    return compute_deadlines(
        row["awareness_at"],
        regime,
        regime_name=row["regime"],
        notification_submitted_at=stages.get(Stage.NOTIFICATION.value),
        exercise=row["exercise_id"] is not None,
    )


def public_view(
    row: Mapping[Any, Any],
    updates: Sequence[Mapping[Any, Any]],
    evidence: Sequence[Mapping[Any, Any]],
    observables: Sequence[Mapping[Any, Any]],
    *,
    default_regime: DeadlineRegime,
    now: datetime,
) -> dict[str, Any]:
    """What the API returns for an incident."""
    doc = row["doc"]
    stages = submitted_stages(updates)
    deadlines = incident_deadlines(row, stages, default_regime)
    status = deadline_status(deadlines, stages, now, awareness_at=row["awareness_at"])
    return {
        "id": row["id"],
        "tracking_number": row["tracking_number"],
        "entity_id": row["entity_id"],
        "title": row["title"],
        "classification": row["classification"],
        "taxonomy_version": row["taxonomy_version"],
        "severity": row["severity"],
        "tlp": row["tlp"],
        "pap": doc.get("pap"),
        "status": row["status"],
        "detected_at": rfc3339(row["detected_at"]),
        "awareness_at": rfc3339(row["awareness_at"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "deadlines": {
            "regime": deadlines.regime,
            "early_warning": rfc3339(deadlines.early_warning),
            "notification": rfc3339(deadlines.notification),
            "final_report": rfc3339(deadlines.final_report),
        },
        "deadline_status": status,
        "updates": [
            {"number": u["number"], "stage": u["stage"], "created_at": rfc3339(u["created_at"])}
            for u in sorted(updates, key=lambda u: u["number"])
        ],
        "evidence": [
            {"id": e["id"], "sha256": e["sha256"], "size": e["size"], "filename": e["filename"]}
            for e in evidence
        ],
        "case_id": row["case_id"],
        "external_id": row["external_id"],
        "exercise_id": row["exercise_id"],
        "observables": [{"type": o["type"], "value": o["value"]} for o in observables],
        "impact": doc.get("impact", {}),
        "containment": doc.get("containment"),
        "description": doc.get("description", ""),
    }


def canonical_id(value: Any) -> str | None:
    """The canonical UUID string, or None for anything malformed."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def incident_row(report: IncidentReport, entity_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The column values of a new incident (its id, number and times are added by the caller)."""
    return {
        "entity_id": entity_id, "title": report.title,
        "classification": str(report.classification),
        "taxonomy_version": report.classification.version, "severity": report.severity.value,
        "tlp": report.tlp.value, "tlp_origin": entity_id, "status": "new",
        "detected_at": report.detected_at, "awareness_at": report.awareness,
        "external_id": report.external_id, "exercise_id": report.exercise_id, "case_id": None,
        "doc": doc, "raw": report.raw,
    }


def apply_update(row: Mapping[Any, Any], update: IncidentUpdate,
                 principal: Principal) -> tuple[dict[str, Any], dict[str, Any]]:
    """The incident's new current doc and column changes after ``update``."""
    doc = dict(row["doc"])
    changes: dict[str, Any] = {}
    if update.severity is not None:
        doc["severity"] = changes["severity"] = update.severity.value
    if update.containment is not None:
        doc["containment"] = update.containment.value
    if update.impact is not None:
        doc["impact"] = update.impact.model_dump(mode="json")
    for name in ("significant", "cross_border", "root_cause", "mitigations"):
        value = getattr(update, name)
        if value is not None:
            doc[name] = value
    if update.awareness_at is not None:
        old = row["awareness_at"]
        backdated = update.awareness_at < old
        change = {"from": rfc3339(old), "to": rfc3339(update.awareness_at),
                  "reason": update.reason, "by": principal.name, "at": rfc3339(utcnow()),
                  "backdated": backdated}
        doc["awareness_changes"] = [*doc.get("awareness_changes", []), change]
        doc["awareness_at"] = change["to"]
        doc["backdated"] = bool(doc.get("backdated")) or backdated
        changes["awareness_at"] = update.awareness_at
    return doc, changes
