"""``purge``: remove every record of one run (ENDEX), in one transaction, audited.

Gone afterwards: the run's alerts (and their events), its incidents (updates, observables,
evidence rows, reminders), its cases with everything hanging off them (tasks, timeline,
comments, links, playbook runs, notifications), the correlation campaigns and sightings it
caused, the indicators its ``intel`` injects published, its messages, scores, lessons and
clock, and its participant tokens are revoked. Dependent tables are found from the schema's
foreign keys and ``case_id`` / ``incident_id`` / ``alert_id`` columns, so tables added later
are covered. The audit log keeps its entries (it is append-only); the purge adds one.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

from sqlalchemy import Column, Connection, Table, delete, select

from cases.services import audit
from cases.store import Store
from cases.store.tables import alerts, incidents
from cases.store.tables import metadata as case_metadata
from cases.store.tables_cases import cases
from enrichment.intel.store import IntelStore
from enrichment.intel.tables import metadata as intel_metadata
from playbooks.exercises import runs
from playbooks.exercises.injects.intel import source_name
from playbooks.exercises.participants import revoke_tokens
from playbooks.exercises.tables import OWN_TABLES, exercises

REFERENCE_COLUMNS = {"cases": "case_id", "incidents": "incident_id", "alerts": "alert_id"}


def _all_tables() -> list[Table]:
    with contextlib.suppress(ImportError):  # playbook/notification tables join on import
        importlib.import_module("playbooks.tables")
    return [t for md in (case_metadata, intel_metadata) for t in md.sorted_tables]


def _children(parent: Table) -> list[tuple[Table, Column[Any], Column[Any]]]:
    """(child table, its column, the parent column) for every table pointing at ``parent``."""
    found = []
    for table in _all_tables():
        if table is parent:
            continue
        for column in table.columns:
            targets = [fk.column for fk in column.foreign_keys if fk.column.table is parent]
            if targets:
                found.append((table, column, targets[0]))
            elif column.name == REFERENCE_COLUMNS.get(parent.name) and not column.foreign_keys:
                found.append((table, column, parent.c.id))
    return found


def _delete(conn: Connection, table: Table, where: Any, counts: dict[str, int]) -> None:
    """Delete the rows of ``table`` matching ``where`` and, first, every row depending on them."""
    for child, column, parent_column in _children(table):
        _delete(conn, child, column.in_(select(parent_column).where(where)), counts)
    removed = conn.execute(delete(table).where(where)).rowcount
    if removed:
        name = str(table.name)
        counts[name] = counts.get(name, 0) + removed


def purge(store: Store, exercise_id: str, actor: audit.Actor) -> dict[str, int]:
    """Remove every record of ``exercise_id``; returns rows removed per table."""
    counts: dict[str, int] = {}
    with store.write() as conn:
        runs.row(conn, exercise_id)
        counts["participant_credentials_revoked"] = revoke_tokens(conn, exercise_id)
        _delete(conn, alerts, alerts.c.exercise_id == exercise_id, counts)
        _delete(conn, incidents, incidents.c.exercise_id == exercise_id, counts)
        _delete(conn, cases, cases.c.exercise_id == exercise_id, counts)
        for table in intel_metadata.sorted_tables:
            if "exercise_id" in table.c:
                _delete(conn, table, table.c.exercise_id == exercise_id, counts)
        for table in OWN_TABLES:
            _delete(conn, table, table.c.exercise_id == exercise_id, counts)
        _delete(conn, exercises, exercises.c.id == exercise_id, counts)
        audit.append(conn, actor, "exercise.purge", "exercise", exercise_id, details=counts)
    indicators = IntelStore(store.engine).delete_source(source_name(exercise_id))
    if indicators:
        counts["intel_indicators"] = indicators
    return counts


__all__ = ["purge"]
