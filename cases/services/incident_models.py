"""The shapes around incidents: the stage update an entity sends, the list allow-lists, and
the public view the API and the CLI return (RFC 3339 UTC times)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Connection, case, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from cases.services.deadlines import (
    Deadlines,
    Stage,
    compute_deadlines,
    deadline_status,
    final_report_plan,
    reminder_key,
)
from cases.services.identity import Principal
from cases.store.tables import evidence as evidence_rows
from cases.store.tables import incident_observables, incident_updates, incidents
from cases.store.tables import sequences as sequence_rows
from pukara.core.config import DeadlineRegime
from pukara.core.errors import InvalidInput
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
CLOCK_SKEW = timedelta(minutes=5)
OPEN_STATUSES = ("new", "open", "in-progress")
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


def check_not_future(value: datetime, field: str, now: datetime) -> None:
    """InvalidInput if ``value`` lies in the future (beyond a small clock skew): a future
    awareness would stretch the regulatory deadlines."""
    if value > now + CLOCK_SKEW:
        raise InvalidInput(f"{field} {rfc3339(value)} is in the future", field=field)


def view_reminders(view: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The clocked stages of an incident view that are due soon or overdue, with their keys."""
    names = {"early-warning": "early_warning", "notification": "notification",
             "final": "final_report", "progress": "progress_report"}
    found = []
    for stage, state in view["deadline_status"].items():
        deadline = view["deadlines"][names[stage]]
        if state in ("due-soon", "overdue") and deadline is not None:
            due = datetime.fromisoformat(deadline)
            found.append({"incident_id": view["id"], "tracking_number": view["tracking_number"],
                          "entity_id": view["entity_id"], "stage": stage, "state": state,
                          "deadline": deadline, "key": reminder_key(view["id"], stage, due)})
    return found


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


HANDLED_STATUSES = ("resolved", "closed")


def _regime_of(row: Mapping[str, Any], default: DeadlineRegime) -> DeadlineRegime:
    params = row["doc"].get("deadline_regime")
    return DeadlineRegime.model_validate(params) if params else default


def _handled_at(row: Mapping[Any, Any]) -> datetime | None:
    """When the incident was handled: its last change once resolved or closed."""
    return row["updated_at"] if row["status"] in HANDLED_STATUSES else None


def incident_deadlines(
    row: Mapping[str, Any], stages: Mapping[str, datetime], default: DeadlineRegime
) -> Deadlines:
    """The deadlines of a stored incident: its snapshot of the regime at submission."""
    regime = _regime_of(row, default)
    return compute_deadlines(
        row["awareness_at"],
        regime,
        regime_name=row["regime"],
        notification_submitted_at=stages.get(Stage.NOTIFICATION.value),
        exercise=row["exercise_id"] is not None,
    )


def load_views(
    conn: Connection,
    rows: Sequence[Mapping[Any, Any]],
    *,
    default_regime: DeadlineRegime,
    now: datetime,
) -> list[dict[str, Any]]:
    """Public views of incident ``rows`` with three child queries in all (no N+1)."""
    ids = [r["id"] for r in rows]
    children: dict[str, dict[str, list[Mapping[Any, Any]]]] = {
        i: {"updates": [], "evidence": [], "observables": []} for i in ids}
    if not ids:
        return []
    for name, table, order in (
        ("updates", incident_updates, incident_updates.c.number),
        ("evidence", evidence_rows, evidence_rows.c.created_at),
        ("observables", incident_observables, incident_observables.c.id),
    ):
        query = select(table).where(table.c.incident_id.in_(ids)).order_by(order)
        for child in conn.execute(query).mappings():
            children[child["incident_id"]][name].append(child)
    return [public_view(r, children[r["id"]]["updates"], children[r["id"]]["evidence"],
                        children[r["id"]]["observables"], default_regime=default_regime,
                        now=now)
            for r in rows]


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
    status: dict[str, Any] = dict(
        deadline_status(deadlines, stages, now, awareness_at=row["awareness_at"]))
    plan = final_report_plan(deadlines, _regime_of(row, default_regime), stages, now,
                             handled_at=_handled_at(row))
    final_report = deadlines.final_report
    if plan.progress is not None:
        status["progress"] = plan.progress
        status["final"] = plan.final or "postponed"
        final_report = plan.final_due or deadlines.final_report
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
            "final_report": rfc3339(final_report),
            **({"progress_report": rfc3339(plan.progress_due)} if plan.progress_due else {}),
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


def next_tracking_number(conn: Connection, prefix: str, year: int) -> str:
    """``INC-<year>-<6 digits>``: one counter row per year, bumped in this transaction."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(sequence_rows)
        .values(name=f"incident:{year}", value=1)
        .on_conflict_do_update(index_elements=[sequence_rows.c.name],
                               set_={"value": sequence_rows.c.value + 1})
        .returning(sequence_rows.c.value)
    )
    value = conn.execute(statement).scalar_one()
    return f"{prefix}-{year}-{value:06d}"


def add_observables(conn: Connection, incident_id: str, entity_id: str,
                    observables: Iterable[Observable]) -> int:
    """One row per (incident, entity, type, value) not stored yet (B5)."""
    known = {(r.type, r.value) for r in conn.execute(
        select(incident_observables.c.type, incident_observables.c.value)
        .where(incident_observables.c.incident_id == incident_id))}
    rows = []
    for observable in observables:
        key = (observable.type.value, observable.value)
        if key not in known:
            known.add(key)
            rows.append({"incident_id": incident_id, "entity_id": entity_id,
                         "type": key[0], "value": key[1]})
    if rows:
        conn.execute(insert(incident_observables), rows)
    return len(rows)
