"""The facts of a case a playbook sees: the fields conditions read and actions use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from cases.services.case_links import entity_ids_of
from cases.services.case_models import find_case
from cases.store.tables import alerts, entities, evidence, incidents
from cases.store.tables_cases import case_observables


def case_facts(conn: Connection, case_ref: str) -> dict[str, Any]:
    """Fields of a case (see :data:`playbooks.condition.CASE_FIELDS`) plus id and number."""
    row = find_case(conn, case_ref)
    case_id = row["id"]
    entity_ids = entity_ids_of(conn, case_id)
    sectors = sorted(set(conn.execute(select(entities.c.sector).where(
        entities.c.id.in_(entity_ids))).scalars())) if entity_ids else []
    incident_ids = list(conn.execute(select(incidents.c.id).where(
        incidents.c.case_id == case_id)).scalars())
    evidence_count = conn.execute(select(func.count()).select_from(evidence).where(
        evidence.c.incident_id.in_(incident_ids))).scalar_one() if incident_ids else 0
    types = sorted(set(conn.execute(select(case_observables.c.type).where(
        case_observables.c.case_id == case_id)).scalars()))
    return {
        "id": case_id, "number": row["number"], "title": row["title"],
        "severity": row["severity"], "tlp": row["tlp"], "pap": row["pap"],
        "classification": row["classification"], "status": row["status"],
        "tags": list(row["tags"] or []), "entities": entity_ids, "sectors": sectors,
        "observable_types": types,
        "alerts": conn.execute(select(func.count()).select_from(alerts).where(
            alerts.c.case_id == case_id)).scalar_one(),
        "incidents": len(incident_ids), "incident_ids": incident_ids,
        "evidence": int(evidence_count),
    }
