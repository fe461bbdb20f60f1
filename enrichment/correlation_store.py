"""Correlation's tables: read the last window back into memory, append sighting snapshots,
upsert campaign rows (on SQLite with pre-converted values straight to the driver)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from enrichment.correlation_journal import Campaigns, Journal
from enrichment.correlation_model import (
    COUNT,
    FIRST,
    LAST,
    MAX_FINGERPRINTS,
    PRINTS,
    SAVED,
    Campaign,
    Sighting,
    Sightings,
    find,
    put,
)
from enrichment.intel import tables as t
from enrichment.intel.sql import append, dialect_insert, executemany
from enrichment.intel.store import utc
from pukara.core.schema import utcnow

SIGHTING_COLUMNS = (
    "exercise_id",
    "observable_key",
    "entity_id",
    "first_seen",
    "last_seen",
    "count",
    "fingerprints",
)
#: a real pair's first snapshot: seen once (first_seen = last_seen, count 1)
FRESH_SIGHTING = (
    'INSERT INTO "intel_sightings" (exercise_id, observable_key, entity_id, first_seen, '
    "last_seen, count, fingerprints) VALUES ('', ?1, ?2, ?3, ?3, 1, ?4)"
)
CAMPAIGN_UPDATES = ("entity_ids", "first_seen", "last_seen", "alert_fingerprints", "updated_at")


def read_state(engine: Engine, window: timedelta) -> tuple[Sightings, Campaigns]:
    """The sightings of the last window (before the newest one), merged, and the campaigns."""
    s = t.sightings.c
    with engine.connect() as conn:
        newest = utc(conn.execute(sa.select(sa.func.max(s.last_seen))).scalar())
        rows = (
            []
            if newest is None
            else conn.execute(sa.select(t.sightings).where(s.last_seen >= newest - window)).all()
        )
        stored = conn.execute(sa.select(t.campaigns)).all()
    sightings: Sightings = {}
    for row in rows:
        _merge(sightings, row._mapping)
    campaigns: Campaigns = {}
    for row in stored:
        campaigns.setdefault(row.exercise_id or "", {})[row.observable_key] = campaign_of(row)
    return sightings, campaigns


def _merge(sightings: Sightings, data: Any) -> None:
    """Fold one stored snapshot into memory (several per pair may exist)."""
    by_key = sightings.setdefault(data["exercise_id"], {})
    key, entity = data["observable_key"], data["entity_id"]
    first, last = utc(data["first_seen"]) or utcnow(), utc(data["last_seen"]) or utcnow()
    count, prints = int(data["count"]), tuple(data["fingerprints"])
    known = find(by_key.get(key), entity)
    if known is not None:
        first, last = min(known[FIRST], first), max(known[LAST], last)
        count = max(known[COUNT], count)
        prints = tuple(dict.fromkeys([*known[PRINTS], *prints]))[-MAX_FINGERPRINTS:]
    put(by_key, key, (entity, first, last, count, prints, last, 0))


def campaign_of(row: Any) -> Campaign:
    """A stored campaign row as a Campaign (saved as it is)."""
    campaign = Campaign(
        key=row.key,
        observable=row.observable_key,
        exercise_id=row.exercise_id or None,
        entity_ids=list(row.entity_ids),
        first_seen=utc(row.first_seen) or utcnow(),
        last_seen=utc(row.last_seen) or utcnow(),
        alert_fingerprints=list(row.alert_fingerprints),
    )
    campaign.saved_last_seen = campaign.last_seen
    return campaign


def save_sightings(conn: Connection, journal: Journal, flush_every: timedelta) -> None:
    """Append through ``conn`` a snapshot of each pair the staged batch made due (new, never
    written, or last written ``flush_every`` or more before) or forced (unsaved sightings of
    a new or grown campaign, not due). Their sightings already say saved: the batch set
    that when it staged them."""
    records, latest = journal.sightings, journal.latest
    forced = [((*records[i][:3], None), latest[i]) for i in journal.forced
              if not _due(records[i][3], latest[i], flush_every)]  # None: written below
    native = conn.dialect.name == "sqlite"
    fresh: list[tuple[str, str, str, str]] = []  # real, seen once: 4 parameters, not 7
    other: list[tuple[Any, ...]] = []
    when: Any = None  # the pairs of one alert share their last time and fingerprints
    when_text = prints_text = ""
    prints_of: tuple[str, ...] | None = None
    for (exercise, key, entity, before), now in chain(zip(records, latest, strict=True), forced):
        _, first, last, count, prints, _saved, _ref = now
        if before is not None and (saved := before[SAVED]) is not None and (
            last - saved < flush_every
        ):  # not due
            continue
        if not native:
            other.append((exercise, key, entity, first, last, count, list(prints)))
            continue
        if last is not when:
            when, when_text = last, sql_time(last)
        if prints is not prints_of:
            prints_of, prints_text = prints, orjson.dumps(prints).decode()
        if count == 1 and first is last and not exercise:
            fresh.append((key, entity, when_text, prints_text))
        else:
            other.append((exercise, key, entity, when_text if first is last else sql_time(first),
                          when_text, count, prints_text))
    if fresh:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(FRESH_SIGHTING, fresh)
    append(conn, t.sightings, SIGHTING_COLUMNS, other)


def _due(before: Sighting | None, now: Sighting, flush_every: timedelta) -> bool:
    """Whether a batch that found ``before`` and left ``now`` writes the pair's row."""
    saved = None if before is None else before[SAVED]
    return saved is None or now[LAST] - saved >= flush_every


def sql_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (UTC, no offset): what
    :func:`~enrichment.intel.sql.sqlite_time` returns, without its cache (the times here
    are new), several times faster."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def save_campaigns(conn: Connection, changed: list[Campaign]) -> None:
    """Upsert the rows of ``changed`` through ``conn`` and mark them saved."""
    if not changed:
        return
    now = utcnow()
    rows = [
        {
            "key": c.key,
            "exercise_id": c.exercise_id or "",
            "observable_key": c.observable,
            "entity_ids": c.entity_ids,
            "first_seen": c.first_seen,
            "last_seen": c.last_seen,
            "alert_fingerprints": c.alert_fingerprints,
            "updated_at": now,
        }
        for c in changed
    ]
    stmt = dialect_insert(conn.engine, t.campaigns)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={n: stmt.excluded[n] for n in CAMPAIGN_UPDATES}
    )
    executemany(conn, stmt, rows)
    for campaign in changed:
        campaign.saved_last_seen = campaign.last_seen
