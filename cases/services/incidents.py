"""Incidents reported by entities: submission, stage updates, evidence, TLP, visibility.

The entity of a submission always comes from the principal (SECURITY A4); a staff principal
may submit on behalf of an entity only by naming it in ``report.entity_id``. An entity sees
only its own incidents and gets NotFound, with the same message as for a missing id, on any
other (B1); staff see all, and a staff read of a TLP:RED incident is audited (J1). The first
report is stored as update number 1 (the regime's first stage: early warning, or the
notification where the regime has no early warning); every later stage is a further
immutable, numbered version (N3). Writes run inside the caller's transaction.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cases.services import audit
from cases.services.deadlines import EXERCISE_REGIME, Stage
from cases.services.evidence import (
    SERVE_CONTENT_TYPE,
    EvidenceStore,
    lock_blob,
    sanitize_content_type,
)
from cases.services.evidence import sanitize_filename as clean_filename
from cases.services.identity import Principal
from cases.services.incident_models import (
    MAX_LIMIT,
    OPEN_STATUSES,
    SORTS,
    STATUSES,
    IncidentUpdate,
    add_observables,
    apply_update,
    canonical_id,
    check_not_future,
    incident_row,
    load_views,
    next_tracking_number,
    sort_clauses,
    view_reminders,
)
from cases.store import Store
from cases.store.tables import entities, incident_updates, incidents
from cases.store.tables import evidence as evidence_rows
from pukara.core.config import DeadlineRegime, Settings
from pukara.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TLPViolation
from pukara.core.schema import Attachment, IncidentReport, utcnow
from pukara.core.taxonomy import TLP

NOT_FOUND = "no such incident"


class DuplicateIncident(Conflict):
    """The entity already reported an incident under this ``external_id`` (H8)."""

    def __init__(self, *, external_id: str, incident_id: str, tracking_number: str) -> None:
        super().__init__(
            f"external_id {external_id!r} was already reported as {tracking_number}",
            field="external_id",
        )
        self.incident_id = incident_id
        self.tracking_number = tracking_number


class IncidentService:
    """The incident rules, over the store and the evidence files."""

    def __init__(self, store: Store, settings: Settings, evidence: EvidenceStore) -> None:
        self.store = store
        self.settings = settings
        self.evidence = evidence

    # -- submission -------------------------------------------------------------------

    def submit(
        self,
        conn: Connection,
        principal: Principal,
        report: IncidentReport,
        *,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a new incident in the caller's write transaction; returns its public view."""
        entity_id, entity_doc = self._submitting_entity(conn, principal, report)
        if report.external_id is not None:
            self._refuse_duplicate(conn, entity_id, report.external_id)
        regime_name, regime = self._regime(entity_doc)
        now = utcnow()
        if report.exercise_id is None:
            check_not_future(report.detected_at, "detected_at", now)
            check_not_future(report.awareness, "awareness_at", now)
        incident_id = str(uuid.uuid4())
        tracking = next_tracking_number(conn, self.settings.tracking_prefix, now.year)
        doc = report.model_dump(mode="json", exclude={"attachments", "raw"})
        doc.update(entity_id=entity_id, deadline_regime=regime.model_dump())
        row = incident_row(report, entity_id, doc)
        row.update(id=incident_id, tracking_number=tracking, created_at=now, updated_at=now,
                   regime=EXERCISE_REGIME if report.exercise_id else regime_name)
        try:
            with conn.begin_nested():
                conn.execute(insert(incidents).values(**row))
        except IntegrityError:
            if report.external_id is not None:
                self._refuse_duplicate(conn, entity_id, report.external_id)
            raise
        first = Stage.EARLY_WARNING if regime.early_warning_hours is not None else (
            Stage.NOTIFICATION)
        self._insert_update(conn, incident_id, 1, stage=first,
                            doc={**doc, "initial": True}, principal=principal)
        add_observables(conn, incident_id, entity_id, report.observables)
        for attachment in report.attachments:
            self._store_attachment(conn, incident_id, entity_id, attachment)
        details: dict[str, Any] = {"tracking_number": tracking, "regime": row["regime"]}
        if principal.entity_id is not None and report.entity_id not in (None, entity_id):
            details["ignored_entity_id"] = report.entity_id
        audit.append(conn, principal.actor(request_id), "incident.submit", "incident",
                     incident_id, entity_id=entity_id, after=doc, details=details)
        return self._view(conn, incident_id)

    def _submitting_entity(
        self, conn: Connection, principal: Principal, report: IncidentReport
    ) -> tuple[str, dict[str, Any]]:
        if principal.is_staff:
            entity_id = report.entity_id
            if entity_id is None:
                raise InvalidInput("staff must name the entity the incident belongs to",
                                   field="entity_id")
        elif principal.entity_id is not None:
            entity_id = principal.entity_id
        else:
            raise PermissionDenied("only an entity or center staff may report incidents")
        doc = conn.execute(select(entities.c.doc).where(entities.c.id == entity_id)).scalar()
        if doc is None:
            raise InvalidInput(f"no entity {entity_id!r}", field="entity_id")
        return entity_id, dict(doc)

    def _refuse_duplicate(self, conn: Connection, entity_id: str, external_id: str) -> None:
        found = conn.execute(
            select(incidents.c.id, incidents.c.tracking_number)
            .where(incidents.c.entity_id == entity_id, incidents.c.external_id == external_id)
        ).first()
        if found is not None:
            raise DuplicateIncident(external_id=external_id, incident_id=found.id,
                                    tracking_number=found.tracking_number)

    def _regime(self, entity_doc: dict[str, Any]) -> tuple[str, DeadlineRegime]:
        """The entity's regime if it names a configured one, else the default regime."""
        name = entity_doc.get("regime")
        if not isinstance(name, str) or name not in self.settings.regimes:
            name = self.settings.default_regime
        return name, self.settings.regime(name)

    def _insert_update(self, conn: Connection, incident_id: str, number: int, *,
                       stage: Stage, doc: dict[str, Any], principal: Principal) -> str:
        update_id = str(uuid.uuid4())
        conn.execute(insert(incident_updates).values(
            id=update_id, incident_id=incident_id, number=number, stage=stage.value, doc=doc,
            created_at=utcnow(), created_by=principal.name))
        return update_id

    def _store_attachment(self, conn: Connection, incident_id: str, entity_id: str,
                          attachment: Attachment) -> dict[str, Any]:
        return self._store_evidence(
            conn, incident_id, entity_id, filename=attachment.filename,
            content_type=attachment.content_type, stream=io.BytesIO(attachment.data),
            max_bytes=self.settings.api.max_evidence_bytes)

    # -- reading ----------------------------------------------------------------------

    def list_for(self, principal: Principal, *, limit: int = 50, offset: int = 0,
                 sort: str = "-created_at", status: str | None = None) -> list[dict[str, Any]]:
        """The incidents ``principal`` may see: an entity its own, staff all."""
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
        if offset < 0:
            raise InvalidInput("offset must not be negative", field="offset")
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        query = select(incidents)
        if not principal.is_staff:
            if principal.entity_id is None:
                return []
            query = query.where(incidents.c.entity_id == principal.entity_id)
        if status is not None:
            query = query.where(incidents.c.status == status)
        query = query.order_by(*sort_clauses(sort)).limit(limit).offset(offset)
        with self.store.read() as conn:
            rows = list(conn.execute(query).mappings())
            return self._views(conn, rows)

    def get(self, principal: Principal, incident_id: str, *,
            request_id: str | None = None) -> dict[str, Any]:
        """One incident; NotFound if it does not exist *for this principal* (B1)."""
        with self.store.read() as conn:
            row = self._visible(conn, principal, incident_id)
            view = self._views(conn, [row])[0]
        if principal.is_staff and row["tlp"] == TLP.RED.value:
            with self.store.write() as conn:
                audit.append(conn, principal.actor(request_id), "incident.read", "incident",
                             row["id"], entity_id=row["entity_id"], details={"tlp": row["tlp"]})
        return view

    def _visible(self, conn: Connection, principal: Principal, incident_id: Any, *,
                 lock: bool = False) -> RowMapping:
        """The incident row if ``principal`` may see it; NotFound otherwise (same message)."""
        canonical = canonical_id(incident_id)
        if canonical is None or not (principal.is_staff or principal.entity_id is not None):
            raise NotFound(NOT_FOUND)
        query = select(incidents).where(incidents.c.id == canonical)
        if not principal.is_staff:
            query = query.where(incidents.c.entity_id == principal.entity_id)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(NOT_FOUND)
        return row

    def _view(self, conn: Connection, incident_id: str) -> dict[str, Any]:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings()
        return self._views(conn, [row.one()])[0]

    def _views(self, conn: Connection, rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
        return load_views(conn, rows, default_regime=self.settings.regime(), now=utcnow())

    def due_reminders(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Stages due soon or overdue of open, real (non-exercise) incidents, each with the
        idempotency key a reminder must be sent under (N4); for the scheduler, not a route."""
        query = (select(incidents)
                 .where(incidents.c.exercise_id.is_(None),
                        incidents.c.status.in_(OPEN_STATUSES))
                 .order_by(incidents.c.created_at, incidents.c.id))
        found: list[dict[str, Any]] = []
        with self.store.read() as conn:
            result = conn.execute(query.execution_options(yield_per=MAX_LIMIT)).mappings()
            for batch in result.partitions():
                for view in load_views(conn, batch, default_regime=self.settings.regime(),
                                       now=now or utcnow()):
                    found.extend(view_reminders(view))
        return found

    # -- stage updates ----------------------------------------------------------------

    def add_update(self, conn: Connection, principal: Principal, incident_id: str,
                   update: IncidentUpdate, *, request_id: str | None = None) -> dict[str, Any]:
        """Add a numbered, immutable stage version; returns the public view."""
        row = self._visible(conn, principal, incident_id, lock=True)
        if update.awareness_at is not None:
            if not update.reason:
                raise InvalidInput("changing awareness_at needs a reason", field="reason")
            check_not_future(update.awareness_at, "awareness_at", utcnow())
        doc = update.model_dump(mode="json", exclude_none=True, exclude={"observables"})
        doc["observables"] = [o.model_dump(mode="json") for o in update.observables]
        if update.stage is Stage.FINAL:
            doc["notification_update_id"] = self._notification_id(conn, row["id"])
        number = conn.execute(select(func.coalesce(func.max(incident_updates.c.number), 0))
                              .where(incident_updates.c.incident_id == row["id"])).scalar_one()
        update_id = self._insert_update(conn, row["id"], number + 1, stage=update.stage,
                                        doc=doc, principal=principal)
        before = row["doc"]
        after, changes = apply_update(row, update, principal)
        conn.execute(_update_incident(row["id"]).values(**changes, doc=after, updated_at=utcnow()))
        add_observables(conn, row["id"], row["entity_id"], update.observables)
        actor = principal.actor(request_id)
        audit.append(conn, actor, "incident.update", "incident", row["id"],
                     entity_id=row["entity_id"], before=before, after=after,
                     details={"stage": update.stage.value, "number": number + 1,
                              "update_id": update_id})
        if update.awareness_at is not None:
            self._audit_awareness(conn, actor, row, after["awareness_changes"][-1])
        return self._view(conn, row["id"])

    def _notification_id(self, conn: Connection, incident_id: str) -> str:
        found = conn.execute(
            select(incident_updates.c.id)
            .where(incident_updates.c.incident_id == incident_id,
                   incident_updates.c.stage == Stage.NOTIFICATION.value)
            .order_by(incident_updates.c.number.desc())
        ).first()
        if found is None:
            raise InvalidInput("a final report needs a notification first: submit the "
                               "notification stage before the final report", field="stage")
        return str(found.id)

    def _audit_awareness(self, conn: Connection, actor: audit.Actor, row: RowMapping,
                         change: dict[str, Any]) -> None:
        audit.append(conn, actor, "incident.awareness_change", "incident", row["id"],
                     entity_id=row["entity_id"], before={"awareness_at": change["from"]},
                     after={"awareness_at": change["to"]}, details=change)

    # -- evidence ---------------------------------------------------------------------

    def add_evidence(self, conn: Connection, principal: Principal, incident_id: str, *,
                     filename: str, content_type: str, stream: BinaryIO, max_bytes: int,
                     request_id: str | None = None) -> dict[str, Any]:
        """Store an evidence file for an incident the principal may see; audited."""
        row = self._visible(conn, principal, incident_id)
        result = self._store_evidence(conn, row["id"], row["entity_id"], filename=filename,
                                      content_type=content_type, stream=stream,
                                      max_bytes=max_bytes)
        audit.append(conn, principal.actor(request_id), "evidence.add", "evidence",
                     result["id"], entity_id=row["entity_id"],
                     details={"incident_id": row["id"], "sha256": result["sha256"],
                              "size": result["size"]})
        return result

    def _store_evidence(self, conn: Connection, incident_id: str, entity_id: str, *,
                        filename: str, content_type: str, stream: BinaryIO,
                        max_bytes: int) -> dict[str, Any]:
        staged = self.evidence.stage(stream, max_bytes=max_bytes)
        try:
            lock_blob(conn, staged.sha256)
            self.evidence.place(staged)
        except BaseException:
            self.evidence.discard(staged)
            raise
        evidence_id = str(uuid.uuid4())
        name = clean_filename(filename)
        conn.execute(insert(evidence_rows).values(
            id=evidence_id, incident_id=incident_id, entity_id=entity_id,
            sha256=staged.sha256, size=staged.size, filename=name,
            declared_type=sanitize_content_type(content_type), created_at=utcnow()))
        return {"id": evidence_id, "sha256": staged.sha256, "size": staged.size,
                "filename": name, "incident_id": incident_id}

    def get_evidence(self, principal: Principal, incident_id: str,
                     evidence_id: str) -> dict[str, Any]:
        """One evidence file's metadata, for an incident the principal may see; NotFound
        otherwise. Serve the bytes of ``EvidenceStore.open(sha256)`` as ``content_type``
        (always octet-stream) with ``Content-Disposition: attachment`` (E4)."""
        with self.store.read() as conn:
            row = self._visible(conn, principal, incident_id)
            found = _evidence_row(conn, row["id"], evidence_id)
        return {"id": found["id"], "incident_id": row["id"], "sha256": found["sha256"],
                "size": found["size"], "filename": found["filename"],
                "declared_type": found["declared_type"], "content_type": SERVE_CONTENT_TYPE}

    def delete_evidence(self, principal: Principal, incident_id: str, evidence_id: str, *,
                        request_id: str | None = None) -> bool:
        """Delete one evidence row; the blob goes only when no row references it (E6).

        Runs its own transactions: the row deletion commits first, then the blob is
        released under the blob lock. Returns True if the blob itself was deleted.
        """
        with self.store.write() as conn:
            row = self._visible(conn, principal, incident_id, lock=True)
            found = _evidence_row(conn, row["id"], evidence_id)
            conn.execute(delete(evidence_rows).where(evidence_rows.c.id == found["id"]))
            audit.append(conn, principal.actor(request_id), "evidence.delete", "evidence",
                         found["id"], entity_id=row["entity_id"],
                         details={"incident_id": row["id"], "sha256": found["sha256"]})
        with self.store.write() as conn:
            return self.evidence.release(conn, found["sha256"])

    # -- TLP --------------------------------------------------------------------------

    def change_tlp(self, conn: Connection, principal: Principal, incident_id: str,
                   tlp: TLP | str, reason: str, *,
                   request_id: str | None = None) -> dict[str, Any]:
        """Raise the TLP (anyone who sees the incident) or lower it (its originator only)."""
        row = self._visible(conn, principal, incident_id, lock=True)
        wanted = tlp if isinstance(tlp, TLP) else TLP.parse(tlp)
        if not reason or not reason.strip():
            raise InvalidInput("a TLP change needs a reason", field="reason")
        current = TLP(row["tlp"])
        if wanted < current and (principal.is_staff
                                 or principal.entity_id != row["tlp_origin"]):
            raise TLPViolation(f"only the originator may lower the TLP of this incident "
                               f"(from {current.value} to {wanted.value})", field="tlp")
        if wanted != current:
            doc = {**row["doc"], "tlp": wanted.value}
            conn.execute(_update_incident(row["id"]).values(tlp=wanted.value, doc=doc,
                                                     updated_at=utcnow()))
            audit.append(conn, principal.actor(request_id), "incident.tlp_change", "incident",
                         row["id"], entity_id=row["entity_id"], before=row["doc"], after=doc,
                         details={"from": current.value, "to": wanted.value,
                                  "reason": reason.strip()})
        return self._view(conn, row["id"])


def _evidence_row(conn: Connection, incident_id: str, evidence_id: Any) -> RowMapping:
    """An evidence row of this incident; NotFound for anything else (B2)."""
    found = conn.execute(select(evidence_rows).where(
        evidence_rows.c.id == canonical_id(evidence_id),
        evidence_rows.c.incident_id == incident_id)).mappings().first()
    if found is None:
        raise NotFound("no such evidence")
    return found


def _update_incident(incident_id: str) -> Any:
    """``UPDATE incidents WHERE id = …``."""
    return update(incidents).where(incidents.c.id == incident_id)
