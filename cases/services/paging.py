"""Read-only queries for paged views that the services do not offer one by one: a page with
a (capped) total, case sorting and offsets, top indicators hit, due-soon deadlines, entity
roll-ups. Shared by the analyst API and the TUI's local client. Each is one SQLAlchemy Core
SELECT on a connection from ``Store.read()``; nothing here writes. Pages are
``{"items", "total", "total_capped"}`` documents."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Select, case, func, select

from cases.search.fts import alert_select, case_select
from cases.search.query import SearchQuery
from cases.services.alerts import SORTS, summary
from cases.services.case_models import OPEN_CASE_STATUSES, case_doc
from cases.services.picture import CLOSED_INCIDENT_STATUSES, PictureService
from cases.store.tables import alerts, incidents
from cases.store.tables_cases import case_entities, cases
from pukara.core.errors import InvalidInput

#: alert list orders (the alert service's names)
ALERT_SORTS = ("-observed_at", "observed_at", "-last_seen", "-count", "-id", "id")
#: case list orders
CASE_SORTS = ("-created_at", "created_at", "-updated_at", "severity", "number")
#: a total above this is reported as "at least" (total_capped)
COUNT_CAP = 10_000
#: the largest page a list route returns
MAX_PAGE = 1000
#: how many of the newest alerts the "top indicators hit" panel looks at
RECENT_HITS_WINDOW = 20_000
_SEVERITY_RANK = case({"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4},
                      value=cases.c.severity, else_=5)
_CASE_ORDERS: dict[str, tuple[Any, ...]] = {
    "-created_at": (cases.c.created_at.desc(), cases.c.number.desc()),
    "created_at": (cases.c.created_at.asc(), cases.c.number.asc()),
    "-updated_at": (cases.c.updated_at.desc(), cases.c.number.desc()),
    "severity": (_SEVERITY_RANK, cases.c.created_at.desc()),
    "number": (cases.c.number.asc(),),
}


def capped_count(conn: Connection, statement: Select[Any], key: Any) -> tuple[int, bool]:
    """How many rows ``statement`` yields, counting at most COUNT_CAP + 1 of them."""
    window = statement.order_by(None).with_only_columns(key).limit(COUNT_CAP + 1).subquery()
    total = int(conn.execute(select(func.count()).select_from(window)).scalar_one())
    return min(total, COUNT_CAP), total > COUNT_CAP


def alert_page(conn: Connection, query: SearchQuery, sort: str, offset: int,
               limit: int) -> dict[str, Any]:
    """One page of alerts matching ``query`` in ``sort`` order, and the (capped) total."""
    if sort not in ALERT_SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(ALERT_SORTS)}", field="sort")
    statement = alert_select(conn, query, None)
    ordered = statement.order_by(None).order_by(SORTS[sort], alerts.c.id.desc())
    rows = [summary(r) for r in conn.execute(ordered.limit(limit).offset(offset))]
    total, capped = capped_count(conn, statement, alerts.c.id)
    return {"items": rows, "total": total, "total_capped": capped}


def case_page(conn: Connection, query: SearchQuery, *, status: str | None,
              include_closed: bool, sort: str, offset: int, limit: int) -> dict[str, Any]:
    """One page of cases with their entities and linked-alert counts."""
    if sort not in CASE_SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(CASE_SORTS)}", field="sort")
    statement = case_select(conn, query)
    if status is not None:
        statement = statement.where(cases.c.status == status)
    elif not include_closed and not query.values("status"):
        statement = statement.where(cases.c.status != "closed")
    ordered = statement.order_by(None).order_by(*_CASE_ORDERS[sort])
    found = list(conn.execute(ordered.limit(limit).offset(offset)).mappings())
    ids = [r["id"] for r in found]
    links = _entities_of(conn, ids)
    counts = _alert_counts(conn, ids)
    rows = [{**case_doc(r, links.get(r["id"], [])), "alerts": counts.get(r["id"], 0)}
            for r in found]
    total, capped = capped_count(conn, statement, cases.c.id)
    return {"items": rows, "total": total, "total_capped": capped}


def _entities_of(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if ids:
        query = select(case_entities).where(case_entities.c.case_id.in_(ids)).order_by(
            case_entities.c.entity_id)
        for row in conn.execute(query):
            found.setdefault(row.case_id, []).append(row.entity_id)
    return found


def _alert_counts(conn: Connection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    query = (select(alerts.c.case_id, func.count()).where(alerts.c.case_id.in_(ids))
             .group_by(alerts.c.case_id))
    return {case_id: int(n) for case_id, n in conn.execute(query)}


def top_indicators(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """Indicators hit most among the newest RECENT_HITS_WINDOW real alerts."""
    newest = conn.execute(select(func.max(alerts.c.id))).scalar_one() or 0
    query = select(alerts.c.doc, alerts.c.count).where(
        alerts.c.id > newest - RECENT_HITS_WINDOW, alerts.c.hit_count > 0,
        alerts.c.exercise_id.is_(None))
    counts: Counter[tuple[str, str]] = Counter()
    for doc, repeats in conn.execute(query):
        for hit in orjson.loads(doc).get("hits", []):
            if not hit.get("suppressed"):
                counts[(str(hit.get("indicator")), str(hit.get("source", "")))] += repeats
    return [{"indicator": ind, "source": src, "alerts": n}
            for (ind, src), n in counts.most_common(limit)]


def deadline_lists(picture: PictureService, conn: Connection,
                   now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Open real incidents with a stage due soon, and with a stage overdue."""
    due_soon: list[dict[str, Any]] = []
    overdue: list[dict[str, Any]] = []
    for clock in picture.clocks(conn, now, open_only=True):
        for target, state in ((due_soon, "due-soon"), (overdue, "overdue")):
            stages = sorted(s for s, v in clock.states.items() if v == state)
            if stages:
                times = [t for t in (clock.deadlines[s] for s in stages) if t is not None]
                deadline = min(times, default=None)
                target.append({"tracking_number": clock.tracking_number,
                               "entity_id": clock.entity_id, "stages": stages,
                               "deadline": deadline.isoformat() if deadline else None})
    return {"due_soon": due_soon, "overdue": overdue}


def open_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Per entity: open cases and open incidents."""
    open_cases = conn.execute(
        select(case_entities.c.entity_id, func.count()).join(
            cases, cases.c.id == case_entities.c.case_id)
        .where(cases.c.status.in_((*OPEN_CASE_STATUSES, "resolved")))
        .group_by(case_entities.c.entity_id))
    open_incidents = conn.execute(
        select(incidents.c.entity_id, func.count())
        .where(incidents.c.status.not_in(CLOSED_INCIDENT_STATUSES))
        .group_by(incidents.c.entity_id))
    return {"cases": {k: int(v) for k, v in open_cases},
            "incidents": {k: int(v) for k, v in open_incidents}}


def entity_incidents(conn: Connection, entity_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Open incidents of one entity, newest first."""
    query = (select(incidents.c.tracking_number, incidents.c.title, incidents.c.status,
                    incidents.c.severity, incidents.c.classification, incidents.c.case_id,
                    incidents.c.created_at)
             .where(incidents.c.entity_id == entity_id,
                    incidents.c.status.not_in(CLOSED_INCIDENT_STATUSES))
             .order_by(incidents.c.created_at.desc()).limit(limit))
    return [{**dict(r), "created_at": r["created_at"].isoformat()}
            for r in conn.execute(query).mappings()]
