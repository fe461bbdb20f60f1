"""What Elasticsearch holds: one document per alert and per case, their monthly index names
and the index templates that map them.

An alert goes to ``pukara-alerts-YYYY.MM`` by its ``observed_at`` month and a case to
``pukara-cases-YYYY.MM`` by its ``created_at`` month, so a document's index never changes.
Mappings are ``dynamic: strict`` (nothing unmapped sneaks in); every field that is filtered
on is a ``keyword``; text fields carry the words. The ``_id`` is the alert or case id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from cases.services.case_models import iso
from cases.store.tables import alerts
from cases.store.tables_cases import case_entities, case_observables, cases

PREFIX = "pukara"
KEYWORD = {"type": "keyword"}
DATE = {"type": "date"}
TEXT = {"type": "text"}
_COMMON = {
    "id": KEYWORD, "title": {"type": "text", "fields": {"raw": {"type": "keyword",
                                                                "ignore_above": 512}}},
    "classification": KEYWORD, "severity": KEYWORD, "tlp": KEYWORD, "status": KEYWORD,
    "observables": {"type": "keyword", "fields": {"text": TEXT}}, "exercise_id": KEYWORD,
}
ALERT_PROPERTIES = {
    **_COMMON, "fingerprint": KEYWORD, "source": KEYWORD, "entity_id": KEYWORD,
    "signature": TEXT, "observed_at": DATE, "last_seen": DATE, "count": {"type": "integer"},
    "hits": {"type": "integer"}, "case_id": KEYWORD, "case_number": KEYWORD,
}
CASE_PROPERTIES = {
    **_COMMON, "number": KEYWORD, "description": TEXT, "entity_ids": KEYWORD,
    "created_at": DATE,
}


def index_name(kind: str, when: datetime) -> str:
    """``pukara-alerts-2026.06`` for an alert observed in June 2026."""
    return f"{PREFIX}-{kind}s-{when:%Y.%m}"


def pattern(kind: str) -> str:
    """Every monthly index of a kind."""
    return f"{PREFIX}-{kind}s-*"


def templates() -> dict[str, dict[str, Any]]:
    """The index templates by name (``put_index_template`` bodies)."""
    settings = {"number_of_shards": 1, "index.translog.durability": "request"}
    return {
        f"{PREFIX}-{kind}s": {
            "index_patterns": [pattern(kind)], "priority": 200,
            "template": {"settings": settings,
                         "mappings": {"dynamic": "strict", "properties": properties}},
        }
        for kind, properties in (("alert", ALERT_PROPERTIES), ("case", CASE_PROPERTIES))
    }


def alert_documents(conn: Connection, ids: Sequence[int]) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{id: (index, document)}`` for the alerts still in the store."""
    query = (select(alerts, cases.c.number.label("case_number"))
             .select_from(alerts.outerjoin(cases, cases.c.id == alerts.c.case_id))
             .where(alerts.c.id.in_(list(ids))))
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in conn.execute(query):
        doc = orjson.loads(row.doc)
        found[str(row.id)] = (index_name("alert", row.observed_at), {
            "id": str(row.id), "fingerprint": row.fingerprint, "source": row.source,
            "entity_id": row.entity_id, "title": row.title,
            "classification": row.classification, "severity": row.severity, "tlp": row.tlp,
            "status": row.status, "observed_at": iso(row.observed_at),
            "last_seen": iso(row.last_seen), "count": row.count, "hits": row.hit_count,
            "exercise_id": row.exercise_id, "case_id": row.case_id,
            "case_number": row.case_number, "signature": doc.get("signature") or "",
            "observables": [o["value"] for o in doc.get("observables") or []],
        })
    return found


def case_documents(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{id: (index, document)}`` for the cases still in the store."""
    wanted = list(ids)
    entity_rows = conn.execute(select(case_entities).where(case_entities.c.case_id.in_(wanted)))
    entities: dict[str, list[str]] = {}
    for row in entity_rows:
        entities.setdefault(row.case_id, []).append(row.entity_id)
    observable_rows = conn.execute(
        select(case_observables.c.case_id, case_observables.c.value)
        .where(case_observables.c.case_id.in_(wanted)).order_by(case_observables.c.id))
    observables: dict[str, list[str]] = {}
    for row in observable_rows:
        observables.setdefault(row.case_id, []).append(row.value)
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in conn.execute(select(cases).where(cases.c.id.in_(wanted))):
        found[row.id] = (index_name("case", row.created_at), {
            "id": row.id, "number": row.number, "title": row.title,
            "description": row.description, "classification": row.classification,
            "severity": row.severity, "tlp": row.tlp, "status": row.status,
            "entity_ids": sorted(entities.get(row.id, [])),
            "observables": observables.get(row.id, []), "exercise_id": row.exercise_id,
            "created_at": iso(row.created_at),
        })
    return found


def alert_summary(source: dict[str, Any]) -> dict[str, Any]:
    """An alert document in the shape of :func:`cases.services.alerts.summary`."""
    keys = ("fingerprint", "source", "entity_id", "title", "classification", "severity", "tlp",
            "status", "observed_at", "last_seen", "count", "hits", "exercise_id", "case_id")
    return {"id": int(source["id"]), **{k: source.get(k) for k in keys}}


def case_summary(source: dict[str, Any]) -> dict[str, Any]:
    """A case document in the shape of the FTS backend's case results."""
    keys = ("id", "number", "title", "status", "severity", "tlp", "classification",
            "entity_ids", "exercise_id", "created_at")
    return {k: source.get(k) for k in keys}


__all__ = ["alert_documents", "alert_summary", "case_documents", "case_summary", "index_name",
           "pattern", "templates"]
