"""Merging two cases, and finding similar cases by shared observables.

``merge(target, source)`` keeps all history: the source's alerts, incidents, tasks, timeline
entries, comments and observables move to the target; its entities, tags and techniques are
added; the target takes the stricter severity and TLP. The source is closed as ``duplicate``
with ``merged_into`` pointing at the target, and both timelines say so.

"Similar cases" is a staff-only view (SECURITY B4): it names other cases sharing observables,
so an entity principal is refused outright — nothing of it reaches entities.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, select, update
from sqlalchemy.orm import aliased

from cases.services import audit, case_links, timeline
from cases.services.case_models import OPEN_CASE_STATUSES, find_case
from cases.services.cases import CaseService
from cases.services.identity import Principal
from cases.store import Store
from cases.store.tables import alerts, incidents
from cases.store.tables_cases import (
    case_comments,
    case_observables,
    case_tasks,
    case_timeline,
    cases,
)
from pukara.core.errors import Conflict, PermissionDenied
from pukara.core.schema import utcnow
from pukara.core.taxonomy import Severity

MAX_SIMILAR = 50


def _move_children(conn: Connection, target: str, source: str) -> dict[str, int]:
    moved: dict[str, int] = {}
    for name, table in (("alerts", alerts), ("incidents", incidents), ("tasks", case_tasks),
                        ("timeline", case_timeline), ("comments", case_comments)):
        result = conn.execute(update(table).where(table.c.case_id == source)
                              .values(case_id=target))
        moved[name] = int(result.rowcount or 0)
    rows = conn.execute(select(case_observables).where(case_observables.c.case_id == source))
    observables = [(r.type, r.value, r.origin, list(r.hits)) for r in rows]
    case_links.add_observables(conn, target, observables)
    conn.execute(delete(case_observables).where(case_observables.c.case_id == source))
    moved["observables"] = len(observables)
    return moved


def _union_fields(conn: Connection, target: RowMapping, source: RowMapping) -> None:
    severity = max(Severity(target["severity"]), Severity(source["severity"]))
    conn.execute(update(cases).where(cases.c.id == target["id"]).values(
        severity=severity.value,
        tags=list(dict.fromkeys([*target["tags"], *source["tags"]])),
        techniques=list(dict.fromkeys([*target["techniques"], *source["techniques"]])),
        updated_at=utcnow()))
    case_links.add_entities(conn, target["id"], case_links.entity_ids_of(conn, source["id"]))


class CaseMergeService:
    """Merge cases; list similar ones."""

    def __init__(self, store: Store, cases_service: CaseService) -> None:
        self.store = store
        self.cases = cases_service

    def merge(self, target_ref: str, source_ref: str, actor: audit.Actor) -> dict[str, Any]:
        """Merge ``source`` into ``target``; returns the target's full view."""
        with self.store.write() as conn:
            target = find_case(conn, target_ref, lock=True)
            source = find_case(conn, source_ref, lock=True)
            self._check(target, source)
            before_target = case_links.snapshot(conn, target["id"])
            before_source = case_links.snapshot(conn, source["id"])
            moved = _move_children(conn, target["id"], source["id"])
            _union_fields(conn, target, source)
            case_links.raise_tlp(conn, target, source["tlp"], actor,
                                 f"merged {source['number']}")
            case_links.cascade_status(conn, target["id"], target["status"])
            timeline.record(conn, target["id"], "case.merge", actor,
                            f"case {source['number']} merged into this case",
                            details={"source": source["id"], "moved": moved})
            timeline.record(conn, source["id"], "case.merged", actor,
                            f"merged into case {target['number']}",
                            details={"target": target["id"], "moved": moved})
            self.cases.close_in(conn, source, "duplicate",
                                 f"merged into {target['number']}", actor,
                                 merged_into=target["id"])
            audit.append(conn, actor, "case.merge", "case", target["id"],
                         before=before_target, after=case_links.snapshot(conn, target["id"]),
                         details={"source": source["id"], "moved": moved})
            audit.append(conn, actor, "case.merged_into", "case", source["id"],
                         before=before_source, after=case_links.snapshot(conn, source["id"]),
                         details={"target": target["id"]})
        return self.cases.get(target["id"])

    @staticmethod
    def _check(target: RowMapping, source: RowMapping) -> None:
        if target["id"] == source["id"]:
            raise Conflict("a case cannot be merged into itself", field="source")
        for role, row in (("target", target), ("source", source)):
            if row["status"] not in (*OPEN_CASE_STATUSES, "resolved"):
                raise Conflict(f"the {role} case {row['number']} is {row['status']}",
                               field=role)
        if (target["exercise_id"] or None) != (source["exercise_id"] or None):
            raise Conflict("exercise and real cases are never merged", field="source")

    def similar(self, case_ref: str, principal: Principal | None = None) -> list[dict[str, Any]]:
        """Other cases sharing observables with this one, most shared first (staff only)."""
        if principal is not None and not principal.is_staff:
            raise PermissionDenied("similar cases are for center staff")
        mine, other = aliased(case_observables), aliased(case_observables)
        with self.store.read() as conn:
            case = find_case(conn, case_ref)
            shared = (
                select(other.c.case_id, func.count().label("shared"))
                .join(mine, (mine.c.type == other.c.type) & (mine.c.value == other.c.value))
                .where(mine.c.case_id == case["id"], other.c.case_id != case["id"])
                .group_by(other.c.case_id).subquery()
            )
            query = (
                select(cases.c.id, cases.c.number, cases.c.title, cases.c.status,
                       cases.c.severity, shared.c.shared)
                .join(shared, shared.c.case_id == cases.c.id)
                .order_by(shared.c.shared.desc(), cases.c.number).limit(MAX_SIMILAR)
            )
            if case["exercise_id"] is None:
                query = query.where(cases.c.exercise_id.is_(None))
            else:
                query = query.where(cases.c.exercise_id == case["exercise_id"])
            rows = list(conn.execute(query).mappings())
            return [{**dict(r), "observables": self._shared_values(conn, case["id"], r["id"])}
                    for r in rows]

    @staticmethod
    def _shared_values(conn: Connection, case_id: str, other_id: str) -> list[str]:
        mine, other = aliased(case_observables), aliased(case_observables)
        query = (select(other.c.type, other.c.value)
                 .join(mine, (mine.c.type == other.c.type) & (mine.c.value == other.c.value))
                 .where(mine.c.case_id == case_id, other.c.case_id == other_id)
                 .order_by(other.c.id).limit(10))
        return [f"{r.type}:{r.value}" for r in conn.execute(query)]
