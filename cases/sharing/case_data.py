"""Everything an export needs about one case, read once, with each observable's own TLP.

An observable's TLP is the strictest of the linked sources (alerts, entity incident reports)
that carry it, raised further by an analyst's mark (``observable_marks``); an observable no
source carries (added by hand) takes the case's TLP. Marks only ever raise the TLP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from cases.services import audit, case_links, timeline
from cases.services.case_models import find_case
from cases.services.cases import CaseService
from cases.services.identity import Principal
from cases.sharing.tlp_policy import Subject
from cases.store import Store
from cases.store.tables import alerts, entities, incident_observables, incidents
from cases.store.tables_cases import case_observables
from cases.store.tables_sharing import observable_marks
from pukara.core.errors import InvalidInput, NotFound, TLPViolation
from pukara.core.schema import utcnow
from pukara.core.taxonomy import TLP


@dataclass
class ExportObservable:
    """One observable of a case as it would leave the platform."""

    type: str
    value: str
    tlp: TLP
    origin: str
    hits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CaseExport:
    """A case view (``CaseService.get``), its sharing subject and its observables."""

    case: dict[str, Any]
    subject: Subject
    observables: list[ExportObservable]
    entity_names: dict[str, str]

    @property
    def tlp(self) -> TLP:
        """The TLP of the case as a whole."""
        return self.subject.tlp


def load_case(store: Store, case_ref: str, principal: Principal | None = None) -> CaseExport:
    """Read a case and everything an export needs (staff only, like the case view)."""
    view = CaseService(store).get(case_ref, principal)
    with store.read() as conn:
        source_tlps = _source_tlps(conn, view["id"])
        marks = _marks(conn, view["id"])
        partners, names = _entities(conn, view["entity_ids"])
    case_tlp = TLP(view["tlp"])
    observables = []
    for item in view["observables"]:
        key = (item["type"], item["value"])
        tlp = source_tlps.get(key, case_tlp)
        if key in marks and marks[key] > tlp:
            tlp = marks[key]
        observables.append(ExportObservable(item["type"], item["value"], tlp, item["origin"],
                                            list(item["hits"] or [])))
    subject = Subject.of(case_tlp, view["entity_ids"], partners=partners,
                         exercise_id=view["exercise_id"])
    return CaseExport(view, subject, observables, names)


def _stricter(found: dict[tuple[str, str], TLP], key: tuple[str, str], tlp: TLP) -> None:
    if key not in found or tlp > found[key]:
        found[key] = tlp


def _source_tlps(conn: Connection, case_id: str) -> dict[tuple[str, str], TLP]:
    found: dict[tuple[str, str], TLP] = {}
    rows = conn.execute(select(alerts.c.id, alerts.c.tlp, alerts.c.doc)
                        .where(alerts.c.case_id == case_id))
    for row in rows:
        for kind, value, _origin, _hits in case_links.alert_observables(
                orjson.loads(row.doc), ""):
            _stricter(found, (kind, value), TLP(row.tlp))
    linked = conn.execute(
        select(incident_observables.c.type, incident_observables.c.value, incidents.c.tlp)
        .select_from(incident_observables.join(
            incidents, incidents.c.id == incident_observables.c.incident_id))
        .where(incidents.c.case_id == case_id))
    for row in linked:
        _stricter(found, (row.type, row.value), TLP(row.tlp))
    return found


def _marks(conn: Connection, case_id: str) -> dict[tuple[str, str], TLP]:
    query = select(observable_marks).where(observable_marks.c.case_id == case_id)
    return {(r.type, r.value): TLP(r.tlp) for r in conn.execute(query)}


def _entities(conn: Connection, ids: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    if not ids:
        return {}, {}
    rows = conn.execute(select(entities.c.id, entities.c.name, entities.c.doc)
                        .where(entities.c.id.in_(ids)))
    partners: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for row in rows:
        partners[row.id] = list((row.doc or {}).get("partners") or [])
        names[row.id] = row.name
    return partners, names


def mark_observable(store: Store, case_ref: str, observable: tuple[str, str], tlp: TLP | str,
                    actor: audit.Actor) -> TLP:
    """Make one observable of a case stricter (never laxer); audited and on the timeline."""
    wanted = TLP.parse(tlp) if isinstance(tlp, str) else tlp
    kind, value = observable
    with store.write() as conn:
        case = find_case(conn, case_ref)
        held = conn.execute(select(case_observables.c.id).where(
            case_observables.c.case_id == case["id"], case_observables.c.type == kind,
            case_observables.c.value == value)).first()
        if held is None:
            raise NotFound(f"case {case['number']} has no observable {kind} {value}")
        query = select(observable_marks.c.tlp).where(
            observable_marks.c.case_id == case["id"], observable_marks.c.type == kind,
            observable_marks.c.value == value)
        current = conn.execute(query).scalar()
        if current is not None and TLP(current) >= wanted:
            raise InvalidInput(f"{kind} {value} is already marked TLP:{current.upper()}; a "
                               "mark only raises the TLP", field="tlp")
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        row = {"case_id": case["id"], "type": kind, "value": value, "tlp": wanted.value,
               "marked_by": actor.name, "marked_at": utcnow()}
        statement = dialect.insert(observable_marks).values(**row)
        conn.execute(statement.on_conflict_do_update(
            index_elements=["case_id", "type", "value"],
            set_={"tlp": wanted.value, "marked_by": actor.name, "marked_at": row["marked_at"]}))
        timeline.record(conn, case["id"], "observable.tlp", actor,
                        f"observable {kind} marked TLP:{wanted.value.upper()}")
        audit.append(conn, actor, "observable.tlp_change", "case", case["id"],
                     details={"type": kind, "from": current, "to": wanted.value})
    return wanted




@contextmanager
def audited_refusal(store: Store, actor: audit.Actor, export: CaseExport, target: str,
                    recipient: str | None = None) -> Iterator[None]:
    """Record a share the TLP policy refused (target, TLP, recipient, reason), then re-raise."""
    try:
        yield
    except TLPViolation as exc:
        with store.write() as conn:
            audit.append(conn, actor, "case.share.refused", "case", export.case["id"],
                         details={"target": target, "tlp": export.tlp.value,
                                  "recipient": recipient, "reason": exc.message})
        raise


def record_share(store: Store, actor: audit.Actor, export: CaseExport, target: str, *,
                 recipient: str | None = None, details: dict[str, Any] | None = None) -> None:
    """One audit entry for a share or an export, with target, TLP and recipient (J1)."""
    with store.write() as conn:
        audit.append(conn, actor, f"case.share.{target}", "case", export.case["id"],
                     details={"target": target, "tlp": export.tlp.value,
                              "recipient": recipient, **(details or {})})


__all__ = ["CaseExport", "ExportObservable", "audited_refusal", "load_case", "mark_observable",
           "record_share"]
