"""Alert triage: the life cycle, bulk actions by filter, and groups of similar alerts.

Life cycle (TheHive's alert model with RTIR's explicit reopen)::

    new ──▶ acknowledged ──▶ promoted (a new case) | merged (into an existing case)
     │            │
     └────────────┴──────▶ dismissed (false-positive | duplicate | out-of-scope | other)
                                 └──▶ new  (reopen; the only way out of dismissed)

An action names its alerts by an :class:`AlertFilter`; it is all or nothing: one alert in a
state the action cannot leave refuses the whole action (Conflict naming it), alerts already
in the target state are left alone. Each action writes one ``alert_events`` row per alert
and one audit entry with before/after hashes of the (id, status) pairs (SECURITY J1).

A *group* is the alerts of one fingerprint family — source, signature (or classification
when there is none), entity — sharing their key observable (the first ``src`` observable,
else the first one), whose times chain within ``window`` of each other. An analyst triages
the group; acting on it acts on all its alerts in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.store import Store
from cases.store.tables import alerts
from cases.store.tables_cases import alert_events
from pukara.core.errors import Conflict, InvalidInput, NotFound
from pukara.core.schema import utcnow
from pukara.core.taxonomy import Severity

DISMISS_REASONS = ("false-positive", "duplicate", "out-of-scope", "other")
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "promoted", "merged", "dismissed"}),
    "acknowledged": frozenset({"promoted", "merged", "dismissed"}),
    "dismissed": frozenset({"new"}),
    "promoted": frozenset(),
    "merged": frozenset(),
}
OPEN_STATUSES = ("new", "acknowledged")
DEFAULT_WINDOW = timedelta(hours=1)
MAX_GROUP_SCAN = 200_000


@dataclass
class Group:
    """Similar alerts triaged together."""

    key: str
    title: str
    source: str
    signature: str
    classification: str
    entity_id: str | None
    observable: str | None
    first_seen: datetime
    last_seen: datetime
    severity: str
    alert_ids: list[int] = field(default_factory=list)
    events: int = 0
    hits: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI and the API)."""
        return {
            "key": self.key, "title": self.title, "source": self.source,
            "signature": self.signature, "classification": self.classification,
            "entity_id": self.entity_id, "observable": self.observable,
            "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
            "severity": self.severity, "alerts": len(self.alert_ids), "events": self.events,
            "hits": self.hits, "statuses": self.statuses, "alert_ids": self.alert_ids,
        }


def transition(
    conn: Connection,
    selection: AlertFilter,
    to: str,
    actor: audit.Actor,
    *,
    reason: str | None = None,
    case_id: str | None = None,
) -> list[int]:
    """Move the selected alerts to ``to`` inside ``conn``; returns the ids that changed."""
    _check_target(to, reason)
    query = select(alerts.c.id, alerts.c.status, alerts.c.case_id)
    rows = [row for part in selection.chunks() for row in conn.execute(part.apply(query))]
    if selection.ids:
        missing = sorted(set(selection.ids) - {r.id for r in rows})
        if missing:
            raise NotFound(f"no alert {missing[0]}")
    changing = [r for r in rows if not _already(r, to, case_id)]
    for row in changing:
        if to not in TRANSITIONS[row.status]:
            raise Conflict(_refusal(row, to), field="status")
    ids = [r.id for r in changing]
    if not ids:
        return []
    values: dict[str, Any] = {"status": to}
    if case_id is not None or to in ("promoted", "merged"):
        values["case_id"] = case_id
    if to == "new":
        values["case_id"] = None
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        conn.execute(update(alerts).where(alerts.c.id.in_(chunk)).values(**values))
    now = utcnow()
    conn.execute(insert(alert_events), [
        {"alert_id": r.id, "from_status": r.status, "to_status": to, "reason": reason,
         "case_id": case_id, "actor": actor.name, "at": now} for r in changing])
    audit.append(conn, actor, f"alert.{to}", "alert", str(ids[0]) if len(ids) == 1 else None,
                 before=[[r.id, r.status] for r in changing], after=[[i, to] for i in ids],
                 details=_details(ids, reason, case_id))
    return ids


def _check_target(to: str, reason: str | None) -> None:
    if to not in TRANSITIONS:
        raise InvalidInput(f"status must be one of {', '.join(TRANSITIONS)}", field="status")
    if to == "dismissed" and reason not in DISMISS_REASONS:
        raise InvalidInput(f"a dismissal needs a reason: one of {', '.join(DISMISS_REASONS)}",
                           field="reason")


def _already(row: Any, to: str, case_id: str | None) -> bool:
    """True when the alert is in the target state already (for a case: that case)."""
    if to in ("promoted", "merged"):
        return row.status in ("promoted", "merged") and row.case_id == case_id
    return bool(row.status == to)


def _refusal(row: Any, to: str) -> str:
    if row.status in ("promoted", "merged"):
        return (f"alert {row.id} is already in case {row.case_id}; merge the cases instead "
                f"of moving the alert")
    hint = " (reopen it first)" if row.status == "dismissed" else ""
    return f"alert {row.id} is {row.status} and cannot become {to}{hint}"


def _details(ids: Sequence[int], reason: str | None, case_id: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"count": len(ids), "ids": list(ids)}
    if reason:
        details["reason"] = reason
    if case_id:
        details["case_id"] = case_id
    return details


def _family(doc: dict[str, Any]) -> tuple[str, str | None]:
    """(signature or classification, key observable) of an alert document."""
    observables = doc.get("observables") or []
    key = next((o for o in observables if o.get("role") == "src"), None)
    if key is None:
        key = next((o for o in observables if o.get("role") != "context"), None)
    signature = doc.get("signature") or doc.get("title") or ""
    return signature, None if key is None else f"{key['type']}:{key['value']}"


def _new_group(row: Any, signature: str, observable: str | None) -> Group:
    ident = "\x1f".join([row.source, signature, row.classification, row.entity_id or "",
                         observable or "", str(row.id)])
    return Group(key=hashlib.sha256(ident.encode()).hexdigest()[:16], title=row.title,
                 source=row.source, signature=signature, classification=row.classification,
                 entity_id=row.entity_id, observable=observable, first_seen=row.first_seen,
                 last_seen=row.last_seen, severity=row.severity)


def _add(group: Group, row: Any) -> None:
    group.alert_ids.append(row.id)
    group.events += row.count
    group.hits += row.hit_count
    group.last_seen = max(group.last_seen, row.last_seen)
    if Severity(row.severity) > Severity(group.severity):
        group.severity = row.severity
    group.statuses[row.status] = group.statuses.get(row.status, 0) + 1


def group_rows(rows: Sequence[Any], window: timedelta = DEFAULT_WINDOW) -> list[Group]:
    """Fold alert rows (ordered by time) into groups; largest groups first."""
    open_groups: dict[tuple[Any, ...], Group] = {}
    done: list[Group] = []
    for row in rows:
        signature, observable = _family(orjson.loads(row.doc))
        family = (row.source, signature, row.classification, row.entity_id, observable)
        group = open_groups.get(family)
        if group is not None and row.first_seen - group.last_seen > window:
            done.append(group)
            group = None
        if group is None:
            group = open_groups[family] = _new_group(row, signature, observable)
        _add(group, row)
    done.extend(open_groups.values())
    done.sort(key=lambda g: (-g.events, -len(g.alert_ids), g.first_seen, g.key))
    return done


class TriageService:
    """Acknowledge, dismiss, reopen alerts and their groups."""

    def __init__(self, store: Store, *, window: timedelta = DEFAULT_WINDOW) -> None:
        self.store = store
        self.window = window

    def apply(self, selection: AlertFilter, to: str, actor: audit.Actor, *,
              reason: str | None = None) -> list[int]:
        """Move every alert the filter selects to ``to`` in one transaction."""
        if to in ("promoted", "merged"):
            raise InvalidInput("promote alerts through the case service", field="status")
        with self.store.write() as conn:
            return transition(conn, selection, to, actor, reason=reason)

    def acknowledge(self, selection: AlertFilter, actor: audit.Actor) -> list[int]:
        """new → acknowledged."""
        return self.apply(selection, "acknowledged", actor)

    def dismiss(self, selection: AlertFilter, reason: str, actor: audit.Actor) -> list[int]:
        """→ dismissed with a reason."""
        return self.apply(selection, "dismissed", actor, reason=reason)

    def reopen(self, selection: AlertFilter, actor: audit.Actor) -> list[int]:
        """dismissed → new."""
        return self.apply(selection, "new", actor)

    def groups(self, selection: AlertFilter | None = None) -> list[Group]:
        """Groups of the selected alerts (default: the open queue, new and acknowledged)."""
        selection = selection or AlertFilter(statuses=OPEN_STATUSES)
        with self.store.read() as conn:
            return self.groups_in(conn, selection)

    def groups_in(self, conn: Connection, selection: AlertFilter) -> list[Group]:
        """:meth:`groups` inside the caller's transaction."""
        columns = (alerts.c.id, alerts.c.source, alerts.c.title, alerts.c.classification,
                   alerts.c.entity_id, alerts.c.severity, alerts.c.status, alerts.c.first_seen,
                   alerts.c.last_seen, alerts.c.count, alerts.c.hit_count, alerts.c.doc)
        query = selection.apply(select(*columns)).order_by(alerts.c.first_seen, alerts.c.id)
        rows = list(conn.execute(query.limit(MAX_GROUP_SCAN)))
        return group_rows(rows, self.window)

    def group(self, conn: Connection, key: str, selection: AlertFilter | None = None) -> Group:
        """The group named ``key`` (as listed by :meth:`groups` with the same filter)."""
        selection = selection or AlertFilter(statuses=OPEN_STATUSES)
        for group in self.groups_in(conn, selection):
            if group.key == key:
                return group
        raise NotFound(f"no alert group {key!r} in the current queue")

    def act_on_group(self, key: str, to: str, actor: audit.Actor, *, reason: str | None = None,
                     selection: AlertFilter | None = None) -> list[int]:
        """Apply one action to every alert of a group, in one transaction."""
        if to in ("promoted", "merged"):
            raise InvalidInput("promote a group through the case service", field="status")
        with self.store.write() as conn:
            group = self.group(conn, key, selection)
            return transition(conn, AlertFilter(ids=tuple(group.alert_ids)), to, actor,
                              reason=reason)
