"""IntelStore: bulk upsert of indicators, warninglists and source state; expiry and decay.

Writes go in batches through one ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE``
(the SQLite or PostgreSQL dialect's insert). An indicator is *active* until its
``expires_at``, and — when its type has a decay period — until ``last_seen`` (or, when the
source gave no ``last_seen``, the time we last loaded it) plus that period. Inactive
indicators stay stored but stop matching. Every write bumps a version counter so matchers
know when to rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from enrichment.intel import tables as t
from enrichment.intel.sql import COLUMNS, dialect_insert, sqlite_cache, sqlite_row
from enrichment.intel.warninglists import Warninglist
from pukara.core.errors import StoreError
from pukara.core.observables import ObservableType
from pukara.core.schema import Indicator, utcnow

DAY = timedelta(days=1)
#: default decay per type; types not listed never decay (hashes, file names …)
DEFAULT_DECAY: Mapping[ObservableType, timedelta] = {
    ObservableType.IPV4: 90 * DAY,
    ObservableType.IPV6: 90 * DAY,
    ObservableType.CIDR: 180 * DAY,
    ObservableType.URL: 180 * DAY,
    ObservableType.DOMAIN: 365 * DAY,
    ObservableType.HOSTNAME: 365 * DAY,
}
UNIQUE = ("source", "type", "value", "event_uuid")
_UPDATED = (
    "event_info",
    "threat_level",
    "org",
    "tags",
    "tlp",
    "to_ids",
    "last_seen",
    "expires_at",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class StoredIndicator:
    """An active indicator as the matcher needs it."""

    type: str
    value: str
    source: str
    event_uuid: str
    event_info: str | None
    threat_level: int | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceState:
    """What we know about one intel source: its kind, where, and how far it was synced."""

    name: str
    kind: str
    location: str
    last_sync_at: datetime | None
    last_timestamp: int
    loaded: int
    rejected: int


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def indicator_row(indicator: Indicator, now: datetime | None = None) -> dict[str, Any]:
    """The table row of an Indicator."""
    return {
        "type": indicator.type.value,
        "value": indicator.value,
        "source": indicator.source,
        "event_uuid": indicator.event_uuid or "",
        "event_info": indicator.event_info,
        "threat_level": indicator.threat_level,
        "org": indicator.org,
        "tags": list(indicator.tags),
        "tlp": indicator.tlp.value,
        "to_ids": indicator.to_ids,
        "first_seen": indicator.first_seen,
        "last_seen": indicator.last_seen,
        "expires_at": indicator.expires_at,
        "updated_at": now or utcnow(),
    }


class IntelStore:
    """The indicator store on a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        decay: Mapping[ObservableType, timedelta | None] | None = None,
        batch_size: int = 20_000,
    ) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise StoreError(
                f"intel store supports sqlite and postgresql, not {engine.dialect.name}"
            )
        self.engine = engine
        self.decay = dict(DEFAULT_DECAY if decay is None else decay)
        self.batch_size = batch_size

    # -- writes --------------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        return dialect_insert(self.engine, table)

    def _indicator_upsert(self) -> Any:
        stmt = self._insert(t.indicators)
        changes: dict[str, Any] = {name: stmt.excluded[name] for name in _UPDATED}
        changes["first_seen"] = sa.func.coalesce(
            t.indicators.c.first_seen, stmt.excluded.first_seen
        )
        return stmt.on_conflict_do_update(index_elements=list(UNIQUE), set_=changes)

    def upsert(self, indicators: Iterable[Indicator], conn: Connection | None = None) -> int:
        """Insert or update Indicators; returns how many rows were written. With ``conn`` the
        rows go into that connection's transaction (the live pipeline's), else into one of
        their own."""
        now = utcnow()
        return self.upsert_rows((indicator_row(i, now) for i in indicators), conn)

    def upsert_rows(self, rows: Iterable[dict[str, Any]], conn: Connection | None = None) -> int:
        """Insert or update prepared rows (see :func:`indicator_row`) in batches, in ``conn``'s
        transaction when given, else in one of their own."""
        if conn is not None:
            with sqlite_cache(conn):
                return self._upsert_in(conn, rows)
        with self.engine.begin() as own, sqlite_cache(own):
            return self._upsert_in(own, rows)

    def _upsert_in(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> int:
        written = 0
        batch: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        write = self._writer(conn)
        for row in rows:
            batch[(row["source"], row["type"], row["value"], row["event_uuid"])] = row
            if len(batch) >= self.batch_size:
                write(list(batch.values()))
                written += len(batch)
                batch.clear()
        if batch:
            write(list(batch.values()))
            written += len(batch)
        if written:
            self._bump(conn)
        return written

    def _writer(self, conn: Connection) -> Callable[[list[dict[str, Any]]], None]:
        """executemany of the upsert. On SQLite the compiled statement goes straight to the
        driver with values pre-converted (SQLAlchemy's per-row bind processing would double
        the cost of a large load); on PostgreSQL SQLAlchemy's insertmanyvalues is used."""
        stmt = self._indicator_upsert()
        if self.engine.dialect.name != "sqlite":

            def execute(rows: list[dict[str, Any]]) -> None:
                conn.execute(stmt, rows)

            return execute
        compiled = stmt.compile(dialect=self.engine.dialect, column_keys=list(COLUMNS))
        if tuple(compiled.positiontup or ()) != COLUMNS:
            raise StoreError(f"unexpected upsert parameter order {compiled.positiontup}")
        sql = str(compiled)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

        def write(rows: list[dict[str, Any]]) -> None:
            cursor.executemany(sql, [sqlite_row(row) for row in rows])

        return write

    def _bump(self, conn: Connection) -> None:
        stmt = self._insert(t.state).values(name="version", value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"value": t.state.c.value + 1}
        )
        conn.execute(stmt)

    def delete_source(self, source: str) -> int:
        """Remove every indicator of ``source``; returns how many."""
        with self.engine.begin() as conn:
            count = conn.execute(t.indicators.delete().where(t.indicators.c.source == source))
            self._bump(conn)
        return count.rowcount or 0

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete indicators whose ``expires_at`` has passed; returns how many."""
        when = now or utcnow()
        with self.engine.begin() as conn:
            gone = conn.execute(t.indicators.delete().where(t.indicators.c.expires_at <= when))
            if gone.rowcount:
                self._bump(conn)
        return gone.rowcount or 0

    def save_warninglist(self, warninglist: Warninglist) -> None:
        """Store (replace) one warninglist."""
        row = {
            "name": warninglist.name,
            "description": warninglist.description,
            "version": warninglist.version,
            "type": warninglist.type,
            "matching_attributes": list(warninglist.matching_attributes),
            "entries": list(warninglist.entries),
            "updated_at": utcnow(),
        }
        stmt = self._insert(t.warninglists).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=row)
        with self.engine.begin() as conn:
            conn.execute(stmt)
            self._bump(conn)

    def record_source(
        self,
        name: str,
        kind: str,
        *,
        location: str = "",
        last_timestamp: int | None = None,
        loaded: int = 0,
        rejected: int = 0,
    ) -> None:
        """Remember a load or sync of ``name`` (and how far an incremental sync got)."""
        row: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "location": location,
            "last_sync_at": utcnow(),
            "loaded": loaded,
            "rejected": rejected,
        }
        if last_timestamp is not None:
            row["last_timestamp"] = last_timestamp
        stmt = self._insert(t.sources).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=row)
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # -- reads ---------------------------------------------------------------------------
    def version(self) -> int:
        """The write counter; changes whenever indicators or warninglists change."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(t.state.c.value).where(t.state.c.name == "version")
            ).scalar()
        return int(value or 0)

    def source(self, name: str) -> SourceState | None:
        """The recorded state of source ``name``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.sources).where(t.sources.c.name == name)).first()
        if row is None:
            return None
        return SourceState(
            name=row.name,
            kind=row.kind,
            location=row.location,
            last_sync_at=utc(row.last_sync_at),
            last_timestamp=int(row.last_timestamp),
            loaded=row.loaded,
            rejected=row.rejected,
        )

    def warninglists(self) -> list[Warninglist]:
        """Every stored warninglist."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.warninglists).order_by(t.warninglists.c.name))
            return [
                Warninglist(
                    name=r.name,
                    description=r.description,
                    version=int(r.version),
                    type=r.type,
                    matching_attributes=tuple(r.matching_attributes),
                    entries=tuple(r.entries),
                )
                for r in rows
            ]

    def active_clause(self, now: datetime) -> sa.ColumnElement[bool]:
        """SQL for "still matches at ``now``": not expired and, per type, not decayed."""
        c = t.indicators.c
        reference = sa.func.coalesce(c.last_seen, c.updated_at)
        decaying = {k.value: p for k, p in self.decay.items() if p is not None}
        fresh = [
            sa.and_(c.type == kind, reference > now - period) for kind, period in decaying.items()
        ]
        return sa.and_(
            sa.or_(c.expires_at.is_(None), c.expires_at > now),
            sa.or_(c.type.not_in(list(decaying)), *fresh),
        )

    def iter_active(self, now: datetime | None = None) -> Iterator[StoredIndicator]:
        """Stream the indicators that still match: not expired, not decayed.

        The filter runs in SQL and no datetime column is fetched; tags come as JSON text,
        decoded once per distinct value (an event's rows share theirs).
        """
        c = t.indicators.c
        query = sa.select(
            c.type,
            c.value,
            c.source,
            c.event_uuid,
            c.event_info,
            c.threat_level,
            sa.cast(c.tags, sa.Text),
        ).where(self.active_clause(now or utcnow()))
        decoded: dict[str, tuple[str, ...]] = {}
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=50_000).execute(query)
            for kind, value, source, event, info, level, tags in result:
                names = decoded.get(tags)
                if names is None:
                    names = decoded[tags] = tuple(orjson.loads(tags or "[]"))
                yield StoredIndicator(kind, value, source, event, info, level, names)

    def stats(self, now: datetime | None = None) -> dict[str, Any]:
        """Counts: total, active, expired, decayed, by type, by source; warninglists; sources."""
        when = now or utcnow()
        c = t.indicators.c
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t.indicators)).scalar()
            by_type: dict[str, int] = dict(
                conn.execute(sa.select(c.type, sa.func.count()).group_by(c.type)).all()
            )
            by_source: dict[str, int] = dict(
                conn.execute(sa.select(c.source, sa.func.count()).group_by(c.source)).all()
            )
            expired = conn.execute(sa.select(sa.func.count()).where(c.expires_at <= when)).scalar()
            decayed = sum(
                self._decayed(conn, kind, period, when)
                for kind, period in self.decay.items()
                if period is not None
            )
            lists = conn.execute(
                sa.select(t.warninglists.c.name, t.warninglists.c.type, t.warninglists.c.version)
            ).all()
            sources = conn.execute(sa.select(t.sources)).all()
        return {
            "indicators": int(total or 0),
            "active": int(total or 0) - int(expired or 0) - decayed,
            "expired": int(expired or 0),
            "decayed": decayed,
            "by_type": {k: int(v) for k, v in sorted(by_type.items())},
            "by_source": {k: int(v) for k, v in sorted(by_source.items())},
            "warninglists": [{"name": n, "type": ty, "version": int(v)} for n, ty, v in lists],
            "sources": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "location": s.location,
                    "last_sync_at": utc(s.last_sync_at),
                    "last_timestamp": int(s.last_timestamp),
                    "loaded": s.loaded,
                    "rejected": s.rejected,
                }
                for s in sources
            ],
            "version": self.version(),
        }

    @staticmethod
    def _decayed(conn: Connection, kind: ObservableType, period: timedelta, now: datetime) -> int:
        c = t.indicators.c
        reference = sa.func.coalesce(c.last_seen, c.updated_at)
        query = sa.select(sa.func.count()).where(
            c.type == kind.value,
            reference <= now - period,
            sa.or_(c.expires_at.is_(None), c.expires_at > now),
        )
        return int(conn.execute(query).scalar() or 0)
