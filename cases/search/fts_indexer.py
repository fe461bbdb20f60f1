"""The lagging FTS5 indexer for alerts: indexing is off the alert write path.

Bulk ingest writes plain upserts into ``alerts``; no trigger indexes a new row. A watermark,
the highest alert id already in ``alerts_fts`` (one row of ``alerts_fts_watermark``), splits
the table in two: every alert with ``id <= watermark`` is indexed, none above it is.
:func:`index_pending` indexes the rows above it in id order (one INSERT … SELECT from the
``alerts_fts_source`` view) and moves it, inside the caller's write transaction; SQLite
writers are serialised, so no row below the new watermark can still be uncommitted.

The update and delete triggers stay, but touch only indexed rows: an external-content FTS5
``'delete'`` for a row that was never indexed corrupts the index, and a row changed before it
is indexed is indexed later with its new values. Deleting the alert with the highest id lets
SQLite hand that id out again, so the delete trigger also lowers the watermark to the highest
id left (``min(watermark, max(id))``: the rows still there keep their side of the line).

Callers that query ``alerts_fts`` catch up first: :func:`catch_up` is a cheap read
(``max(id) > watermark``) and only when rows are pending takes write transactions of at most
:data:`BATCH` rows each, until the rows stored before the call are indexed.
``FtsSearch.search`` does this itself, the analyst API and the TUI call it before a paged
query with words or observables, and the server's background loop calls it every pass so the
lag stays small. A full-text query also keeps to ``id <= watermark``
(:data:`INDEXED_ONLY`), so a row that arrives between the catch-up and the query is left out
rather than wrongly matched by a negated word.

SQLite only: PostgreSQL has no FTS here and every function is a no-op on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection

from pukara.core.errors import StoreError

if TYPE_CHECKING:
    from cases.store import Store

#: rows per write transaction in :func:`catch_up` (keeps the write lock short)
BATCH = 20_000
WATERMARK_TABLE = "alerts_fts_watermark"
#: the SQL condition a full-text alert query adds: only rows the index already holds
INDEXED_ONLY = f"alerts.id <= (SELECT watermark FROM {WATERMARK_TABLE} WHERE id = 1)"
ALERT_COLUMNS = "title, observables, signature, classification, entity"
ALERT_OBSERVABLES = ("(SELECT group_concat(json_extract(j.value, '$.value'), ' ') "
                     "FROM json_each({row}.doc, '$.observables') AS j)")
ALERT_SOURCE_VIEW = (
    "CREATE VIEW IF NOT EXISTS alerts_fts_source AS SELECT alerts.id AS rid, alerts.title, "
    f"{ALERT_OBSERVABLES.format(row='alerts')} AS observables, "
    "coalesce(json_extract(alerts.doc, '$.signature'), '') AS signature, "
    "alerts.classification, coalesce(alerts.entity_id, '') AS entity FROM alerts")
#: the insert trigger of the synchronous design (before the watermark), dropped on install
LEGACY_INSERT_TRIGGER = "alerts_fts_ai"
_WATERMARK = f"(SELECT watermark FROM {WATERMARK_TABLE} WHERE id = 1)"
_NEWEST = "(SELECT coalesce(max(id), 0) FROM alerts)"


def _alert_values(row: str) -> str:
    return (f"{row}.id, {row}.title, {ALERT_OBSERVABLES.format(row=row)}, "
            f"coalesce(json_extract({row}.doc, '$.signature'), ''), {row}.classification, "
            f"coalesce({row}.entity_id, '')")


def _alert_triggers() -> dict[str, str]:
    """Name → CREATE statement, as ``sqlite_master.sql`` keeps it (to spot an old one)."""
    insert = f"INSERT INTO alerts_fts(rowid, {ALERT_COLUMNS}) SELECT {_alert_values('new')}"
    delete = (f"INSERT INTO alerts_fts(alerts_fts, rowid, {ALERT_COLUMNS}) "
              f"SELECT 'delete', {_alert_values('old')}")
    lower = (f"UPDATE {WATERMARK_TABLE} SET watermark = min(watermark, {_NEWEST}) "
             f"WHERE id = 1")
    return {
        "alerts_fts_ad": (f"CREATE TRIGGER alerts_fts_ad AFTER DELETE ON alerts BEGIN "
                          f"{delete} WHERE old.id <= {_WATERMARK}; {lower}; END"),
        "alerts_fts_au": ("CREATE TRIGGER alerts_fts_au AFTER UPDATE OF title, "
                          "classification, doc, entity_id ON alerts "
                          f"WHEN old.id <= {_WATERMARK} BEGIN {delete}; {insert}; END"),
    }


def install_indexer(conn: Connection) -> bool:
    """Watermark table and update/delete triggers; drops the old insert trigger.

    Returns False when the index's state is unknown and must be rebuilt. Upgrading a store
    indexed by the old insert trigger is exact without a rebuild: every row there is indexed,
    so the watermark starts at ``max(id)``. An insert trigger found beside an existing
    watermark (an older build ran on the store since) means rows above the watermark may be
    indexed already: unknown.
    """
    legacy = bool(conn.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (LEGACY_INSERT_TRIGGER,)).scalar_one())
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {WATERMARK_TABLE} (id INTEGER PRIMARY KEY "
                         "CHECK (id = 1), watermark INTEGER NOT NULL)")
    had_watermark = bool(conn.exec_driver_sql(
        f"SELECT count(*) FROM {WATERMARK_TABLE}").scalar_one())
    if legacy:
        conn.exec_driver_sql(f"DROP TRIGGER {LEGACY_INSERT_TRIGGER}")
    if not had_watermark:
        conn.exec_driver_sql(f"INSERT INTO {WATERMARK_TABLE} (id, watermark) VALUES (1, {_NEWEST})")
    present: dict[str, str] = {row.name: row.sql for row in conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN "
        "('alerts_fts_ad', 'alerts_fts_au')")}
    for name, statement in _alert_triggers().items():
        if present.get(name) != statement:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
            conn.exec_driver_sql(statement)
    if had_watermark:
        return not legacy
    return legacy


def mark_all_indexed(conn: Connection) -> None:
    """Set the watermark to ``max(id)`` (after a full rebuild indexed every alert)."""
    conn.exec_driver_sql(f"UPDATE {WATERMARK_TABLE} SET watermark = {_NEWEST} WHERE id = 1")


def watermark(conn: Connection) -> int:
    """The highest alert id the index holds (every lower id is indexed too)."""
    return int(conn.exec_driver_sql(f"SELECT {_WATERMARK}").scalar_one())


def pending_until(conn: Connection) -> int | None:
    """The newest alert id when some alerts are not indexed yet, else None (one cheap read)."""
    newest, mark = conn.exec_driver_sql(f"SELECT {_NEWEST}, {_WATERMARK}").one()
    return int(newest) if newest > mark else None


def index_pending(conn: Connection, limit: int | None = None) -> int:
    """Index the alerts above the watermark in id order (at most ``limit``), move it past
    them; returns how many. Call it inside a write transaction (``Store.write()``)."""
    if conn.dialect.name != "sqlite":
        return 0
    if not (conn.in_transaction() and conn.get_execution_options().get("pukara_write")):
        raise StoreError("index_pending must run inside a write transaction (Store.write())")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    mark = watermark(conn)
    if limit is None:
        upper = conn.exec_driver_sql("SELECT max(id) FROM alerts").scalar_one()
    else:
        upper = conn.exec_driver_sql(
            "SELECT max(id) FROM (SELECT id FROM alerts WHERE id > ? ORDER BY id LIMIT ?)",
            (mark, limit)).scalar_one()
    if upper is None or upper <= mark:
        return 0
    indexed = conn.exec_driver_sql(
        f"INSERT INTO alerts_fts(rowid, {ALERT_COLUMNS}) SELECT rid, {ALERT_COLUMNS} "
        "FROM alerts_fts_source WHERE rid > ? AND rid <= ? ORDER BY rid", (mark, upper)).rowcount
    conn.exec_driver_sql(f"UPDATE {WATERMARK_TABLE} SET watermark = ? WHERE id = 1", (upper,))
    return int(indexed)


def catch_up(store: Store, *, batch: int = BATCH, most: int | None = None) -> int:
    """Index every alert stored before the call (at most ``most`` of them when given),
    ``batch`` rows per write transaction; returns how many. Only reads when nothing is
    pending; a no-op off SQLite."""
    if store.dialect != "sqlite":
        return 0
    with store.read() as conn:
        until = pending_until(conn)
    done = 0
    while until is not None and (most is None or done < most):
        step = batch if most is None else min(batch, most - done)
        with store.write() as conn:
            count = index_pending(conn, step)
            if count == 0 or watermark(conn) >= until:
                until = None
        done += count
    return done


__all__ = ["ALERT_COLUMNS", "ALERT_OBSERVABLES", "ALERT_SOURCE_VIEW", "BATCH", "INDEXED_ONLY",
           "LEGACY_INSERT_TRIGGER", "WATERMARK_TABLE", "catch_up", "index_pending",
           "install_indexer", "mark_all_indexed", "pending_until", "watermark"]
