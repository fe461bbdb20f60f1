"""Cases (national incidents): open, read, change, close, and promote alerts into them.

A case has a tracking number ``CASE-<year>-<6 digits>`` from the ``sequences`` table, and
status new → in-progress → contained → resolved → closed; closing needs a resolution
(true-positive, false-positive, duplicate, other) and a summary, and a closed case changes
only by ``reopen``. Every change writes a timeline entry and an audit entry with before and
after hashes (SECURITY J1) in the same transaction. Cases are staff business: an entity
principal is refused here and sees only the status cascaded onto its own incidents.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cases.services import audit, case_links, timeline
from cases.services.alert_filter import AlertFilter
from cases.services.alerts import summary
from cases.services.case_models import (
    OPEN_CASE_STATUSES,
    RESOLUTIONS,
    CaseChanges,
    CaseDraft,
    case_doc,
    find_case,
    iso,
    validated,
)
from cases.services.identity import Principal
from cases.services.tasks import add_task, tasks_of
from cases.services.templates import TemplateLibrary
from cases.store import Store
from cases.store.tables import alerts, evidence, incidents
from cases.store.tables import sequences as sequence_rows
from cases.store.tables_cases import case_entities, case_observables, cases
from pukara.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pukara.core.schema import utcnow
from pukara.core.taxonomy import TLP, Severity

MAX_LIST = 1000


def require_staff(principal: Principal | None) -> None:
    """Cases are for center staff (None = the local operator)."""
    if principal is not None and not principal.is_staff:
        raise PermissionDenied("cases are for center staff")


def next_case_number(conn: Connection, year: int) -> str:
    """``CASE-<year>-<6 digits>``: one counter per year, bumped in this transaction."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(sequence_rows).values(name=f"case:{year}", value=1)
        .on_conflict_do_update(index_elements=[sequence_rows.c.name],
                               set_={"value": sequence_rows.c.value + 1})
        .returning(sequence_rows.c.value)
    )
    return f"CASE-{year}-{conn.execute(statement).scalar_one():06d}"


def create_case(conn: Connection, draft: CaseDraft, actor: audit.Actor,
                templates: TemplateLibrary | None = None) -> RowMapping:
    """Insert a case (and its template tasks) inside ``conn``; returns the stored row."""
    now = utcnow()
    template = None
    if draft.template:
        template = (templates or TemplateLibrary()).get(draft.template)
    case_id = str(uuid.uuid4())
    conn.execute(insert(cases).values(
        id=case_id, number=next_case_number(conn, now.year), title=draft.title,
        description=draft.description, classification=draft.classification,
        severity=draft.severity.value, tlp=draft.tlp.value, pap=draft.pap.value,
        status="new", resolution=None, summary=None, assignee=draft.assignee,
        tags=draft.tags, techniques=draft.techniques, template=draft.template,
        merged_into=None, exercise_id=draft.exercise_id, created_by=actor.name,
        created_at=now, updated_at=now, closed_at=None))
    case_links.add_entities(conn, case_id, draft.entity_ids)
    row = find_case(conn, case_id)
    timeline.record(conn, case_id, "case.open", actor, f"case {row['number']} opened",
                    details={"template": draft.template})
    audit.append(conn, actor, "case.create", "case", case_id,
                 after=case_links.snapshot(conn, case_id))
    if template is not None:
        for spec in template.tasks:
            due = now + timedelta(hours=spec.due_hours) if spec.due_hours else None
            add_task(conn, case_id, spec.title, actor, owner=spec.owner, due_at=due,
                     notes=spec.notes)
    return row


def draft_from_alerts(rows: Sequence[Any], title: str | None = None) -> CaseDraft:
    """A case draft from alert rows: the first title, the strictest severity and TLP."""
    first = rows[0]
    severity = max((Severity(r.severity) for r in rows), default=Severity.MEDIUM)
    tlp = max((TLP(r.tlp) for r in rows), default=TLP.AMBER)
    exercise = next((r.exercise_id for r in rows if r.exercise_id), None)
    return CaseDraft(title=title or first.title, classification=first.classification,
                     severity=severity, tlp=tlp,
                     entity_ids=sorted({r.entity_id for r in rows if r.entity_id}),
                     exercise_id=exercise)


class CaseService:
    """The case rules over the store."""

    def __init__(self, store: Store, templates: TemplateLibrary | None = None) -> None:
        self.store = store
        self.templates = templates or TemplateLibrary()

    # -- opening --------------------------------------------------------------------

    def create(self, data: Mapping[str, Any] | CaseDraft, actor: audit.Actor, *,
               principal: Principal | None = None) -> dict[str, Any]:
        """Open a case; with ``template`` its defaults fill every field not given."""
        require_staff(principal)
        draft = data if isinstance(data, CaseDraft) else validated(CaseDraft, data)
        if draft.template:
            explicit = draft.model_fields_set if isinstance(data, CaseDraft) else set(data)
            draft = self.templates.get(draft.template).apply(draft, explicit)
        with self.store.write() as conn:
            row = create_case(conn, draft, actor, self.templates)
            return self._view(conn, row["id"])

    def promote(self, selection: AlertFilter, actor: audit.Actor, *, case_ref: str | None = None,
                title: str | None = None) -> dict[str, Any]:
        """Put the selected alerts in a new case (promoted) or in ``case_ref`` (merged)."""
        with self.store.write() as conn:
            rows = sorted((row for part in selection.chunks()
                           for row in conn.execute(part.apply(select(alerts)))),
                          key=lambda row: row.id)
            if not rows:
                raise InvalidInput("no alert matches the selection", field="ids")
            if selection.ids:
                self._all_found(selection.ids, rows)
            if case_ref is None:
                case = create_case(conn, draft_from_alerts(rows, title), actor)
                status = "promoted"
            else:
                case = self._open_case(conn, case_ref)
                status = "merged"
            ids = case_links.link_alerts(conn, case, [r.id for r in rows], actor, status=status)
            self._touch(conn, case["id"])
            return {"case_id": case["id"], "number": case["number"], "alert_ids": ids}

    @staticmethod
    def _all_found(ids: Sequence[int], rows: Sequence[Any]) -> None:
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise NotFound(f"no alert {missing[0]}")

    def link_incident(self, case_ref: str, incident_id: str, actor: audit.Actor) -> None:
        """Link an entity incident report to an open case."""
        with self.store.write() as conn:
            case = self._open_case(conn, case_ref)
            case_links.link_incident(conn, case, incident_id, actor)
            self._touch(conn, case["id"])

    # -- reading --------------------------------------------------------------------

    def get(self, case_ref: str, principal: Principal | None = None) -> dict[str, Any]:
        """A case with its links, observables, tasks, timeline, comments and evidence."""
        require_staff(principal)
        with self.store.read() as conn:
            return self._view(conn, find_case(conn, case_ref)["id"])

    def list(self, principal: Principal | None = None, *, status: str | None = None,
             entity_id: str | None = None, include_closed: bool = False,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        """Cases, newest first; closed ones only when asked (or when ``status`` names it)."""
        require_staff(principal)
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be 1..{MAX_LIST}", field="limit")
        query = select(cases).order_by(cases.c.created_at.desc(), cases.c.number.desc())
        if status is not None:
            query = query.where(cases.c.status == status)
        elif not include_closed:
            query = query.where(cases.c.status != "closed")
        if entity_id is not None:
            query = query.where(cases.c.id.in_(select(case_entities.c.case_id).where(
                case_entities.c.entity_id == entity_id)))
        with self.store.read() as conn:
            rows = list(conn.execute(query.limit(limit)).mappings())
            return [self._row_view(conn, r) for r in rows]

    def _row_view(self, conn: Connection, row: RowMapping) -> dict[str, Any]:
        view = case_doc(row, case_links.entity_ids_of(conn, row["id"]))
        view["alerts"] = conn.execute(select(func.count()).select_from(alerts).where(
            alerts.c.case_id == row["id"])).scalar_one()
        view["incidents"] = conn.execute(select(func.count()).select_from(incidents).where(
            incidents.c.case_id == row["id"])).scalar_one()
        return view

    def _view(self, conn: Connection, case_id: str) -> dict[str, Any]:
        """The full view: fields, tasks, alerts, incidents, observables, timeline,
        comments and evidence."""
        row = find_case(conn, case_id)
        view = case_doc(row, case_links.entity_ids_of(conn, case_id))
        view["tasks"] = tasks_of(conn, case_id)
        linked = conn.execute(select(alerts).where(alerts.c.case_id == case_id)
                              .order_by(alerts.c.id)).fetchall()
        view["alerts"] = [summary(r) for r in linked]
        view["incidents"] = self._incidents(conn, case_id)
        view["observables"] = self._observables(conn, case_id)
        view["timeline"] = timeline.entries(conn, case_id)
        view["comments"] = timeline.comments(conn, case_id)
        view["evidence"] = self._evidence(conn, [i["id"] for i in view["incidents"]])
        return view

    @staticmethod
    def _incidents(conn: Connection, case_id: str) -> builtins.list[dict[str, Any]]:
        query = select(incidents.c.id, incidents.c.tracking_number, incidents.c.entity_id,
                       incidents.c.title, incidents.c.classification, incidents.c.status,
                       incidents.c.tlp).where(incidents.c.case_id == case_id)
        return [dict(r) for r in conn.execute(query.order_by(incidents.c.created_at)).mappings()]

    @staticmethod
    def _observables(conn: Connection, case_id: str) -> builtins.list[dict[str, Any]]:
        query = (select(case_observables).where(case_observables.c.case_id == case_id)
                 .order_by(case_observables.c.id))
        return [{"type": r.type, "value": r.value, "origin": r.origin, "hits": r.hits,
                 "added_at": iso(r.added_at)} for r in conn.execute(query)]

    @staticmethod
    def _evidence(conn: Connection, incident_ids: Iterable[str]) -> builtins.list[dict[str, Any]]:
        ids = list(incident_ids)
        if not ids:
            return []
        query = select(evidence).where(evidence.c.incident_id.in_(ids)).order_by(
            evidence.c.created_at)
        return [{"id": r.id, "incident_id": r.incident_id, "entity_id": r.entity_id,
                 "sha256": r.sha256, "size": r.size, "filename": r.filename,
                 "declared_type": r.declared_type, "created_at": iso(r.created_at)}
                for r in conn.execute(query)]

    # -- changing -------------------------------------------------------------------

    def update(self, case_ref: str, data: Mapping[str, Any] | CaseChanges,
               actor: audit.Actor) -> dict[str, Any]:
        """Change fields of an open case; each changed field gets a timeline entry."""
        changes = data if isinstance(data, CaseChanges) else validated(CaseChanges, data)
        with self.store.write() as conn:
            case = self._open_case(conn, case_ref)
            before = case_links.snapshot(conn, case["id"])
            values = self._changed_values(case, changes)
            tlp = values.pop("tlp", None)
            if tlp is not None and TLP(tlp) < TLP(case["tlp"]):
                raise PermissionDenied(
                    f"the TLP of case {case['number']} cannot be lowered from {case['tlp']} "
                    f"to {tlp}: it follows the strictest of its sources (SECURITY B7)",
                    field="tlp")
            new_entities = case_links.add_entities(conn, case["id"], changes.add_entities)
            if values:
                conn.execute(update(cases).where(cases.c.id == case["id"]).values(**values))
            if tlp is not None:
                case_links.raise_tlp(conn, case, tlp, actor, "analyst update")
            for name, value in values.items():
                timeline.record(conn, case["id"], f"case.{name}", actor,
                                f"{name}: {_show(case[name])} → {_show(value)}")
            if new_entities:
                timeline.record(conn, case["id"], "case.entities", actor,
                                f"entities added: {', '.join(new_entities)}")
            if "status" in values:
                case_links.cascade_status(conn, case["id"], values["status"])
            self._touch(conn, case["id"])
            audit.append(conn, actor, "case.update", "case", case["id"], before=before,
                         after=case_links.snapshot(conn, case["id"]),
                         details={"fields": sorted(values), "tlp": tlp,
                                  "entities_added": new_entities})
            return self._view(conn, case["id"])

    @staticmethod
    def _changed_values(case: RowMapping, changes: CaseChanges) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in ("title", "description", "classification", "severity", "tlp", "pap",
                     "status", "assignee", "tags", "techniques"):
            value = getattr(changes, name)
            if value is None:
                continue
            value = value.value if hasattr(value, "value") else value
            if value != case[name]:
                values[name] = value
        return values

    def close(self, case_ref: str, resolution: str, summary_text: str,
              actor: audit.Actor) -> dict[str, Any]:
        """Close a case with a resolution and a summary (both required)."""
        if resolution not in RESOLUTIONS:
            raise InvalidInput(f"resolution must be one of {', '.join(RESOLUTIONS)}",
                               field="resolution")
        if not summary_text or not summary_text.strip():
            raise InvalidInput("closing a case needs a summary", field="summary")
        with self.store.write() as conn:
            case = self._open_case(conn, case_ref, allow_resolved=True)
            self.close_in(conn, case, resolution, summary_text.strip(), actor)
            return self._view(conn, case["id"])

    def close_in(self, conn: Connection, case: RowMapping, resolution: str, text: str,
                  actor: audit.Actor, *, merged_into: str | None = None) -> None:
        """Close ``case`` inside ``conn`` (the merge closes its source this way)."""
        before = case_links.snapshot(conn, case["id"])
        now = utcnow()
        conn.execute(update(cases).where(cases.c.id == case["id"]).values(
            status="closed", resolution=resolution, summary=text, closed_at=now,
            updated_at=now, merged_into=merged_into))
        case_links.cascade_status(conn, case["id"], "closed")
        timeline.record(conn, case["id"], "case.close", actor,
                        f"closed as {resolution}: {text}", details={"resolution": resolution})
        audit.append(conn, actor, "case.close", "case", case["id"], before=before,
                     after=case_links.snapshot(conn, case["id"]),
                     details={"resolution": resolution})

    def reopen(self, case_ref: str, reason: str, actor: audit.Actor) -> dict[str, Any]:
        """Reopen a closed case (not one merged into another) as in-progress."""
        if not reason or not reason.strip():
            raise InvalidInput("reopening a case needs a reason", field="reason")
        with self.store.write() as conn:
            case = find_case(conn, case_ref, lock=True)
            if case["status"] != "closed":
                raise Conflict(f"case {case['number']} is not closed", field="status")
            if case["merged_into"]:
                raise Conflict(f"case {case['number']} was merged into another case",
                               field="status")
            before = case_links.snapshot(conn, case["id"])
            conn.execute(update(cases).where(cases.c.id == case["id"]).values(
                status="in-progress", resolution=None, closed_at=None, updated_at=utcnow()))
            case_links.cascade_status(conn, case["id"], "in-progress")
            timeline.record(conn, case["id"], "case.reopen", actor, f"reopened: {reason}")
            audit.append(conn, actor, "case.reopen", "case", case["id"], before=before,
                         after=case_links.snapshot(conn, case["id"]),
                         details={"reason": reason.strip()})
            return self._view(conn, case["id"])

    def _open_case(self, conn: Connection, case_ref: str, *,
                   allow_resolved: bool = True) -> RowMapping:
        case = find_case(conn, case_ref, lock=True)
        allowed = (*OPEN_CASE_STATUSES, "resolved") if allow_resolved else OPEN_CASE_STATUSES
        if case["status"] not in allowed:
            raise Conflict(f"case {case['number']} is {case['status']}; reopen it first",
                           field="case")
        return case

    @staticmethod
    def _touch(conn: Connection, case_id: str) -> None:
        conn.execute(update(cases).where(cases.c.id == case_id).values(updated_at=utcnow()))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)
