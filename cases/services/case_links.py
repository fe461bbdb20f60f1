"""What a case links to, inside the caller's transaction: alerts, entity incident reports,
entities, observables (copied with their enrichment hits), and the status cascade that lets
an entity see the case status on its own incident (RTIR's lifecycle map)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, RowMapping, insert, select, update

from cases.services import audit, timeline, triage
from cases.services.alert_filter import AlertFilter
from cases.services.case_models import INCIDENT_STATUS_FOR_CASE, case_doc
from cases.store.tables import alerts, entities, incident_observables, incidents
from cases.store.tables_cases import case_entities, case_observables, cases
from pukara.core.errors import Conflict, InvalidInput, NotFound
from pukara.core.schema import utcnow
from pukara.core.taxonomy import TLP

ObservableRow = tuple[str, str, str, list[dict[str, Any]]]


def entity_ids_of(conn: Connection, case_id: str) -> list[str]:
    """The entities involved in a case."""
    query = select(case_entities.c.entity_id).where(case_entities.c.case_id == case_id)
    return sorted(conn.execute(query).scalars())


def snapshot(conn: Connection, case_id: str) -> dict[str, Any]:
    """The case's plain fields now (for before/after audit hashes)."""
    row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().one()
    return case_doc(row, entity_ids_of(conn, case_id))


def add_entities(conn: Connection, case_id: str, ids: Iterable[str]) -> list[str]:
    """Add entities to a case (known entities only); returns the ones newly added."""
    wanted = {i for i in ids if i}
    if not wanted:
        return []
    known = set(conn.execute(select(entities.c.id).where(entities.c.id.in_(wanted))).scalars())
    unknown = sorted(wanted - known)
    if unknown:
        raise InvalidInput(f"no entity {unknown[0]!r}", field="entity")
    new = sorted(wanted - set(entity_ids_of(conn, case_id)))
    if new:
        conn.execute(insert(case_entities), [{"case_id": case_id, "entity_id": e} for e in new])
    return new


def add_observables(conn: Connection, case_id: str, rows: Sequence[ObservableRow]) -> int:
    """Add (type, value, origin, hits) rows not in the case yet; hits of known ones merge."""
    query = select(case_observables.c.id, case_observables.c.type, case_observables.c.value,
                   case_observables.c.hits).where(case_observables.c.case_id == case_id)
    known = {(r.type, r.value): r for r in conn.execute(query)}
    fresh: dict[tuple[str, str], dict[str, Any]] = {}
    now = utcnow()
    for kind, value, origin, hits in rows:
        key = (kind, value)
        if key in known:
            merged = _merge_hits(list(known[key].hits), hits)
            if len(merged) != len(known[key].hits):
                conn.execute(update(case_observables).where(
                    case_observables.c.id == known[key].id).values(hits=merged))
        elif key in fresh:
            fresh[key]["hits"] = _merge_hits(fresh[key]["hits"], hits)
        else:
            fresh[key] = {"case_id": case_id, "type": kind, "value": value, "origin": origin,
                          "hits": list(hits), "added_at": now}
    if fresh:
        conn.execute(insert(case_observables), list(fresh.values()))
    return len(fresh)


def _merge_hits(old: list[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {orjson.dumps(h, option=orjson.OPT_SORT_KEYS) for h in old}
    merged = list(old)
    for hit in new:
        marker = orjson.dumps(hit, option=orjson.OPT_SORT_KEYS)
        if marker not in seen:
            seen.add(marker)
            merged.append(hit)
    return merged


def alert_observables(doc: dict[str, Any], origin: str) -> list[ObservableRow]:
    """The observables of an alert document with the hits on each."""
    hits_by_key: dict[str, list[dict[str, Any]]] = {}
    for hit in doc.get("hits") or []:
        if hit.get("observable") and not hit.get("suppressed"):
            hits_by_key.setdefault(hit["observable"], []).append(hit)
    return [(o["type"], o["value"], origin, hits_by_key.get(f"{o['type']}:{o['value']}", []))
            for o in doc.get("observables") or []]


def raise_tlp(conn: Connection, case: RowMapping, wanted: str, actor: audit.Actor,
              why: str) -> str:
    """Raise the case TLP to ``wanted`` when stricter (never lowers it); audited (J1)."""
    stored = conn.execute(select(cases.c.tlp).where(cases.c.id == case["id"])).scalar_one()
    current, target = TLP(stored), TLP(wanted)
    if target <= current:
        return current.value
    before = snapshot(conn, case["id"])
    conn.execute(update(cases).where(cases.c.id == case["id"]).values(tlp=target.value))
    timeline.record(conn, case["id"], "case.tlp", actor,
                    f"TLP raised {current.value} → {target.value} ({why})")
    audit.append(conn, actor, "case.tlp_change", "case", case["id"], before=before,
                 after=snapshot(conn, case["id"]),
                 details={"from": current.value, "to": target.value, "reason": why})
    return target.value


def link_alerts(conn: Connection, case: RowMapping, ids: Sequence[int], actor: audit.Actor,
                *, status: str) -> list[int]:
    """Put alerts in a case (status ``promoted`` or ``merged``), copy their observables."""
    changed = triage.transition(conn, AlertFilter(ids=tuple(ids)), status, actor,
                                case_id=case["id"])
    if not changed:
        return []
    query = select(alerts.c.id, alerts.c.entity_id, alerts.c.tlp, alerts.c.doc)
    rows = [row for part in AlertFilter(ids=tuple(changed)).chunks()
            for row in conn.execute(part.apply(query))]
    observables = [o for r in rows for o in alert_observables(orjson.loads(r.doc),
                                                               f"alert:{r.id}")]
    add_observables(conn, case["id"], observables)
    add_entities(conn, case["id"], {r.entity_id for r in rows if r.entity_id})
    strictest = max((TLP(r.tlp) for r in rows), default=TLP(case["tlp"]))
    raise_tlp(conn, case, strictest.value, actor, "a linked alert is stricter")
    timeline.record(conn, case["id"], "alerts.link", actor,
                    f"{len(changed)} alert(s) linked ({status})",
                    details={"alert_ids": changed[:1000], "count": len(changed)})
    return changed


def link_incident(conn: Connection, case: RowMapping, incident_id: str,
                  actor: audit.Actor) -> None:
    """Link an entity incident report to a case; the entity then sees the case status."""
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
    if row is None:
        raise NotFound(f"no such incident: {incident_id}")
    if row["case_id"] == case["id"]:
        return
    if row["case_id"] is not None:
        raise Conflict(f"incident {row['tracking_number']} is already in another case; "
                       "merge the cases instead", field="incident")
    status = INCIDENT_STATUS_FOR_CASE[case["status"]]
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
        case_id=case["id"], status=status, updated_at=utcnow()))
    observables = conn.execute(
        select(incident_observables.c.type, incident_observables.c.value)
        .where(incident_observables.c.incident_id == incident_id))
    add_observables(conn, case["id"], [(o.type, o.value, f"incident:{row['tracking_number']}",
                                        []) for o in observables])
    add_entities(conn, case["id"], [row["entity_id"]])
    raise_tlp(conn, case, row["tlp"], actor, "a linked incident is stricter")
    timeline.record(conn, case["id"], "incident.link", actor,
                    f"incident {row['tracking_number']} of {row['entity_id']} linked",
                    details={"incident_id": incident_id, "entity_id": row["entity_id"]})
    audit.append(conn, actor, "incident.link", "incident", incident_id,
                 entity_id=row["entity_id"],
                 details={"case_id": case["id"], "status": status})


def cascade_status(conn: Connection, case_id: str, status: str) -> int:
    """Show the case status on every linked incident; returns how many changed."""
    mapped = INCIDENT_STATUS_FOR_CASE[status]
    result = conn.execute(update(incidents).where(
        incidents.c.case_id == case_id, incidents.c.status != mapped
    ).values(status=mapped, updated_at=utcnow()))
    return int(result.rowcount or 0)
