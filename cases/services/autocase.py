"""Automatic case opening: entity reports (always) and strong alerts (when configured).

An incident report joins an existing *open* case (new, in-progress, contained) when

1. the case has the same RSIT classification and the same entity, and was active within
   ``window`` of the report's awareness time; or
2. the case shares an observable with the report (any entity: a campaign spans entities);

otherwise it opens a new case. Exercise and real data never meet: only cases of the same
exercise (or none) qualify. A TLP:RED report joins only a case whose sole entity is its own,
so nothing of it lands in a case another entity's handlers work on (SECURITY B6).

:func:`attach_incident` runs inside the caller's transaction, right after
``IncidentService.submit`` returns the incident view; :class:`CaseOpeningIncidents` wraps the
incident service so the pipeline and the API get both in one call. :class:`AlertAutoCase` is a
``Pipeline.on_batch`` listener for alerts of severity ≥ ``alert_min_severity`` with
non-suppressed enrichment hits; it is **off by default** (``AutoCaseRules.alerts``) and the
composition root adds it only when configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, RowMapping, select

from cases.services import audit, case_links
from cases.services.case_models import OPEN_CASE_STATUSES, CaseDraft
from cases.services.cases import create_case
from cases.services.identity import Principal
from cases.store import Store
from cases.store.tables import alerts
from cases.store.tables_cases import case_entities, case_observables, cases
from pukara.core.schema import Alert, IncidentReport
from pukara.core.taxonomy import TLP, Severity

AUTOCASE = audit.Actor("autocase")


@dataclass(frozen=True)
class AutoCaseRules:
    """How reports and alerts are gathered into cases."""

    window: timedelta = timedelta(hours=72)
    join_on_observables: bool = True
    alerts: bool = False
    alert_min_severity: Severity = Severity.HIGH


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _open_cases(exercise_id: str | None) -> Any:
    query = select(cases).where(cases.c.status.in_(OPEN_CASE_STATUSES))
    if exercise_id is None:
        return query.where(cases.c.exercise_id.is_(None))
    return query.where(cases.c.exercise_id == exercise_id)


def _only_of(query: Any, entity_id: str) -> Any:
    """``query`` narrowed to cases whose only entity is ``entity_id`` (for TLP:RED)."""
    return query.where(
        cases.c.id.in_(select(case_entities.c.case_id)
                       .where(case_entities.c.entity_id == entity_id)),
        cases.c.id.not_in(select(case_entities.c.case_id)
                          .where(case_entities.c.entity_id != entity_id)))


def _by_classification(conn: Connection, view: Mapping[str, Any],
                       rules: AutoCaseRules) -> RowMapping | None:
    awareness = _parse_time(view.get("awareness_at") or view["detected_at"])
    query = (
        _open_cases(view.get("exercise_id"))
        .where(cases.c.classification == view["classification"],
               cases.c.updated_at >= awareness - rules.window,
               cases.c.id.in_(select(case_entities.c.case_id)
                              .where(case_entities.c.entity_id == view["entity_id"])))
        .order_by(cases.c.updated_at.desc())
    )
    if view.get("tlp") == TLP.RED.value:
        query = _only_of(query, view["entity_id"])
    row: RowMapping | None = conn.execute(query).mappings().first()
    return row


def _by_observables(conn: Connection, observables: Sequence[tuple[str, str]],
                    exercise_id: str | None, only_entity: str | None) -> RowMapping | None:
    if not observables:
        return None
    shared = select(case_observables.c.case_id).where(
        case_observables.c.type.in_({t for t, _ in observables}),
        case_observables.c.value.in_({v for _, v in observables}))
    query = _open_cases(exercise_id).where(cases.c.id.in_(shared))
    if only_entity is not None:
        query = _only_of(query, only_entity)
    wanted = set(observables)
    for row in conn.execute(query.order_by(cases.c.updated_at.desc())).mappings():
        keys = conn.execute(select(case_observables.c.type, case_observables.c.value).where(
            case_observables.c.case_id == row["id"]))
        if wanted & {(k.type, k.value) for k in keys}:
            found: RowMapping = row
            return found
    return None


def find_case_for_incident(conn: Connection, view: Mapping[str, Any],
                           rules: AutoCaseRules) -> RowMapping | None:
    """The open case an incident report joins by rule, or None."""
    found = _by_classification(conn, view, rules)
    if found is not None or not rules.join_on_observables:
        return found
    observables = [(o["type"], o["value"]) for o in view.get("observables") or []]
    only_entity = view["entity_id"] if view.get("tlp") == TLP.RED.value else None
    return _by_observables(conn, observables, view.get("exercise_id"), only_entity)


def attach_incident(conn: Connection, incident_view: Mapping[str, Any],
                    rules: AutoCaseRules | None = None) -> str:
    """Link a just-submitted incident to a case (joined or new); returns the case id."""
    rules = rules or AutoCaseRules()
    case = find_case_for_incident(conn, incident_view, rules)
    if case is None:
        draft = CaseDraft(
            title=incident_view["title"], description=incident_view.get("description") or "",
            entity_ids=[incident_view["entity_id"]],
            classification=incident_view["classification"],
            severity=incident_view["severity"], tlp=incident_view["tlp"],
            pap=incident_view.get("pap") or "amber",
            exercise_id=incident_view.get("exercise_id"))
        case = create_case(conn, draft, AUTOCASE)
    case_links.link_incident(conn, case, incident_view["id"], AUTOCASE)
    return str(case["id"])


class IncidentSubmitter(Protocol):
    """What :class:`CaseOpeningIncidents` wraps (``IncidentService.submit``)."""

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport, *,
               request_id: str | None = None) -> dict[str, Any]:
        """Store one incident report inside ``conn``'s transaction."""
        ...


class CaseOpeningIncidents:
    """An incident sink that submits and then attaches the incident to a case, in the same
    transaction: hand it to the pipeline and the API where the incident service would go."""

    def __init__(self, incidents: IncidentSubmitter, rules: AutoCaseRules | None = None) -> None:
        self.incidents = incidents
        self.rules = rules or AutoCaseRules()

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport, *,
               request_id: str | None = None) -> dict[str, Any]:
        """Submit, open or join a case; the returned view carries the ``case_id``."""
        view = self.incidents.submit(conn, principal, report, request_id=request_id)
        return {**view, "case_id": attach_incident(conn, view, self.rules)}


def _qualifies(alert: Alert, rules: AutoCaseRules) -> bool:
    return alert.severity >= rules.alert_min_severity and any(
        not hit.suppressed and hit.kind != "warninglist" for hit in alert.hits)


class AlertAutoCase:
    """``Pipeline.on_batch`` listener: strong alerts open or join cases (default off)."""

    def __init__(self, store: Store, rules: AutoCaseRules, bucket_seconds: int) -> None:
        self.store = store
        self.rules = rules
        self.bucket_seconds = bucket_seconds

    def __call__(self, batch: list[Alert]) -> None:
        """Handle one committed batch."""
        if not self.rules.alerts:
            return
        fingerprints = list({a.fingerprint(self.bucket_seconds) for a in batch
                             if _qualifies(a, self.rules)})
        if not fingerprints:
            return
        with self.store.write() as conn:
            query = select(alerts).where(alerts.c.fingerprint.in_(fingerprints),
                                         alerts.c.status.in_(("new", "acknowledged")))
            for row in list(conn.execute(query.order_by(alerts.c.id))):
                self.attach_alert(conn, row)

    def attach_alert(self, conn: Connection, row: Any) -> str:
        """Put one stored alert row in a case sharing its observables, or a new case."""
        doc = orjson.loads(row.doc)
        keys = [(o["type"], o["value"]) for o in doc.get("observables") or []
                if o.get("role") != "context"]
        case = _by_observables(conn, keys, row.exercise_id,
                               row.entity_id if row.tlp == TLP.RED.value else None)
        status = "merged"
        if case is None:
            draft = CaseDraft(title=row.title, classification=row.classification,
                              severity=row.severity, tlp=row.tlp,
                              entity_ids=[row.entity_id] if row.entity_id else [],
                              exercise_id=row.exercise_id)
            case = create_case(conn, draft, AUTOCASE)
            status = "promoted"
        case_links.link_alerts(conn, case, [row.id], AUTOCASE, status=status)
        return str(case["id"])


__all__ = ["AUTOCASE", "AlertAutoCase", "AutoCaseRules", "CaseOpeningIncidents",
           "attach_incident", "find_case_for_incident"]
