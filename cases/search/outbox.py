"""The persistent outbox that feeds Elasticsearch (SECURITY I4, I5).

A row names an alert or a case that changed; it is written in the same transaction as the
change, so a committed write always has its row and a rolled-back one never does.
:func:`install_outbox_triggers` makes the store fill it by itself (SQLite triggers or
PostgreSQL trigger functions: every insert and every indexed-field update of alerts and
cases, and changes of a case's entities or observables); a writer may also call
:func:`enqueue` inside its own transaction. A worker
drains the rows oldest first and deletes them only after Elasticsearch accepted them
(at least once). :func:`lag` is what the UI shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from cases.store.tables_sharing import search_outbox
from pukara.core.errors import InvalidInput
from pukara.core.schema import utcnow

KINDS = ("alert", "case")
OPS = ("create", "index")
MAX_ATTEMPTS = 10
_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
_ALERT_FIELDS = "status, case_id, count, last_seen, title, classification, severity, tlp, doc"


def enqueue(conn: Connection, kind: str, ids: Iterable[Any], op: str = "create") -> int:
    """Queue alerts or cases for indexing inside the caller's transaction; returns how many."""
    if kind not in KINDS or op not in OPS:
        raise InvalidInput(f"outbox kind must be {KINDS} and op {OPS}", field="kind")
    now = utcnow()
    rows = [{"kind": kind, "object_id": str(i), "op": op, "enqueued_at": now, "attempts": 0}
            for i in ids]
    if rows:
        conn.execute(insert(search_outbox), rows)
    return len(rows)


def _row(kind: str, object_id: str, op: str) -> str:
    return (f"INSERT INTO search_outbox (kind, object_id, op, enqueued_at, attempts) "
            f"VALUES ('{kind}', {object_id}, '{op}', {_NOW}, 0)")


def _trigger(name: str, when: str, statement: str) -> str:
    return f"CREATE TRIGGER IF NOT EXISTS {name} {when} BEGIN {statement}; END"


_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION pukara_outbox_{name}() RETURNS trigger AS $$ BEGIN "
    "IF TG_OP = 'DELETE' THEN INSERT INTO search_outbox (kind, object_id, op, enqueued_at, "
    "attempts) VALUES ('{kind}', OLD.{column}::text, 'index', now(), 0); ELSE "
    "INSERT INTO search_outbox (kind, object_id, op, enqueued_at, attempts) VALUES ('{kind}', "
    "NEW.{column}::text, CASE WHEN TG_OP = 'INSERT' AND TG_TABLE_NAME IN ('alerts', 'cases') "
    "THEN 'create' ELSE 'index' END, now(), 0); END IF; RETURN NULL; END; $$ "
    "LANGUAGE plpgsql"
)
_PG_TRIGGERS = (
    ("alerts", f"INSERT OR UPDATE OF {_ALERT_FIELDS}", "alert"),
    ("cases", "INSERT OR UPDATE", "case"),
    ("case_entities", "INSERT OR DELETE", "case_link"),
    ("case_observables", "INSERT OR DELETE", "case_link"),
)


def _install_postgresql(conn: Connection) -> None:
    for name, kind, column in (("alert", "alert", "id"), ("case", "case", "id"),
                               ("case_link", "case", "case_id")):
        conn.exec_driver_sql(_PG_FUNCTION.format(name=name, kind=kind, column=column))
    for table, events, function in _PG_TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS pukara_outbox ON {table}")
        conn.exec_driver_sql(f"CREATE TRIGGER pukara_outbox AFTER {events} ON {table} "
                             f"FOR EACH ROW EXECUTE FUNCTION pukara_outbox_{function}()")


def install_outbox_triggers(conn: Connection) -> bool:
    """Let the store fill the outbox in every writing transaction (idempotent): SQLite
    triggers, or PL/pgSQL trigger functions on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        _install_postgresql(conn)
        return True
    if conn.dialect.name != "sqlite":
        return False
    statements = [
        _trigger("outbox_alert_ai", "AFTER INSERT ON alerts", _row("alert", "new.id", "create")),
        _trigger("outbox_alert_au", f"AFTER UPDATE OF {_ALERT_FIELDS} ON alerts",
                 _row("alert", "new.id", "index")),
        _trigger("outbox_case_ai", "AFTER INSERT ON cases", _row("case", "new.id", "create")),
        _trigger("outbox_case_au", "AFTER UPDATE ON cases", _row("case", "new.id", "index")),
    ]
    for table in ("case_entities", "case_observables"):
        for event, ref in (("INSERT", "new"), ("DELETE", "old")):
            statements.append(_trigger(f"outbox_{table}_{event[0].lower()}",
                                       f"AFTER {event} ON {table}",
                                       _row("case", f"{ref}.case_id", "index")))
    for statement in statements:
        conn.exec_driver_sql(statement)
    return True


@dataclass(frozen=True)
class Entry:
    """One queued change."""

    seq: int
    kind: str
    object_id: str
    op: str
    attempts: int


def pending(conn: Connection, limit: int) -> list[Entry]:
    """The oldest ``limit`` live entries (dead letters excluded), in order."""
    query = (select(search_outbox).where(search_outbox.c.attempts < MAX_ATTEMPTS)
             .order_by(search_outbox.c.seq).limit(limit))
    return [Entry(r.seq, r.kind, r.object_id, r.op, r.attempts) for r in conn.execute(query)]


def acknowledge(conn: Connection, seqs: Sequence[int]) -> None:
    """Delete delivered entries."""
    for start in range(0, len(seqs), 500):
        conn.execute(delete(search_outbox).where(search_outbox.c.seq.in_(seqs[start:start + 500])))


def record_failure(conn: Connection, seqs: Sequence[int], error: str) -> None:
    """Count one more failed attempt on entries (at MAX_ATTEMPTS they become dead letters)."""
    for start in range(0, len(seqs), 500):
        conn.execute(update(search_outbox)
                     .where(search_outbox.c.seq.in_(seqs[start:start + 500]))
                     .values(attempts=search_outbox.c.attempts + 1, last_error=error[:500]))


def lag(conn: Connection, now: datetime | None = None) -> dict[str, Any]:
    """How far the index is behind: pending entries, the oldest one's age, dead letters."""
    live = search_outbox.c.attempts < MAX_ATTEMPTS
    count, oldest = conn.execute(select(func.count(), func.min(search_outbox.c.enqueued_at))
                                 .where(live)).one()
    dead = conn.execute(select(func.count()).select_from(search_outbox)
                        .where(search_outbox.c.attempts >= MAX_ATTEMPTS)).scalar_one()
    seconds = None
    if oldest is not None:
        seconds = max(0.0, ((now or utcnow()) - oldest).total_seconds())
    return {"pending": int(count), "oldest_at": oldest.isoformat() if oldest else None,
            "lag_seconds": seconds, "dead": int(dead)}


__all__ = ["MAX_ATTEMPTS", "Entry", "acknowledge", "enqueue", "install_outbox_triggers", "lag",
           "pending", "record_failure"]
