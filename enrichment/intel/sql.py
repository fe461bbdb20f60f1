"""SQL helpers shared by the intel store and correlation: the dialect's upsert, and a fast
SQLite ``executemany`` that hands pre-converted values straight to the driver.

SQLAlchemy's per-row bind processing (datetimes, JSON) would double the cost of a
million-row load on SQLite; values are converted here the way SQLAlchemy stores them
(datetimes as UTC ``YYYY-MM-DD HH:MM:SS.ffffff``, JSON as text), so SQLAlchemy reads them
back unchanged. PostgreSQL goes through SQLAlchemy (insertmanyvalues).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: the indicator columns, in the order of the compiled upsert's parameters
COLUMNS = (
    "type",
    "value",
    "source",
    "event_uuid",
    "event_info",
    "threat_level",
    "org",
    "tags",
    "tlp",
    "to_ids",
    "first_seen",
    "last_seen",
    "expires_at",
    "updated_at",
)


#: page cache for a bulk write (KiB, as SQLite's negative cache_size): the unique index of
#: a million indicators is ~200 MB and random inserts thrash the default 2 MB cache
BULK_CACHE_KIB = 256 * 1024


@contextmanager
def sqlite_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache on this connection while the block runs (no-op elsewhere)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    before = cursor.execute("PRAGMA cache_size").fetchone()[0]
    cursor.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA cache_size = {int(before)}")


@lru_cache(maxsize=4096)
def sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (UTC, no offset)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _time(value: datetime | None) -> str | None:
    return None if value is None else sqlite_time(value)


def sqlite_row(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as the SQLite driver takes it, in COLUMNS order."""
    return (
        row["type"],
        row["value"],
        row["source"],
        row["event_uuid"],
        row["event_info"],
        row["threat_level"],
        row["org"],
        orjson.dumps(row["tags"]).decode(),
        row["tlp"],
        1 if row["to_ids"] else 0,
        _time(row["first_seen"]),
        _time(row["last_seen"]),
        _time(row["expires_at"]),
        _time(row["updated_at"]),
    )


def _sqlite_value(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return int(value)
    return value


def executemany(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(stmt, rows)``; on SQLite straight to the driver, values pre-converted
    (datetimes as SQLAlchemy stores them, JSON as text), without per-row bind processing."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(stmt, rows)
        return
    names = list(rows[0])
    compiled = stmt.compile(dialect=conn.dialect, column_keys=names)
    order = list(compiled.positiontup or ())
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(str(compiled), [tuple(_sqlite_value(r[n]) for n in order) for r in rows])


def append(
    conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Plain INSERT of ``rows`` (tuples in ``columns`` order). On SQLite the values must
    already be driver values (see :func:`sqlite_time`); elsewhere they go through SQLAlchemy."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)


def dialect_insert(engine: Engine, table: sa.Table) -> Any:
    """The dialect's INSERT (it has ``on_conflict_do_update``): PostgreSQL or SQLite."""
    from sqlalchemy.dialects import postgresql, sqlite

    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
