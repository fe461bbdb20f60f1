"""The intel tables (SQLAlchemy Core) on their own ``metadata``.

The case store includes :data:`metadata` in its migrations; tests call
``metadata.create_all(engine)``. Nullable parts of unique keys use ``""`` (not NULL),
because NULLs never collide in a unique index.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TZ = sa.DateTime(timezone=True)

indicators = sa.Table(
    "intel_indicators",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("event_uuid", sa.String(64), nullable=False, server_default=""),
    sa.Column("event_info", sa.Text),
    sa.Column("threat_level", sa.SmallInteger),
    sa.Column("org", sa.String(256)),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("tlp", sa.String(16), nullable=False),
    sa.Column("to_ids", sa.Boolean, nullable=False),
    sa.Column("first_seen", TZ),
    sa.Column("last_seen", TZ),
    sa.Column("expires_at", TZ),
    sa.Column("updated_at", TZ, nullable=False),
    sa.UniqueConstraint("source", "type", "value", "event_uuid", name="uq_intel_indicator"),
)

sources = sa.Table(
    "intel_sources",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("location", sa.Text, nullable=False, server_default=""),
    sa.Column("last_sync_at", TZ),
    sa.Column("last_timestamp", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("loaded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
)

warninglists = sa.Table(
    "intel_warninglists",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("matching_attributes", sa.JSON, nullable=False),
    sa.Column("entries", sa.JSON, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
)

#: a monotonic counter bumped on every write, so matchers know when to rebuild
state = sa.Table(
    "intel_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

#: who saw what when: an append-only log of (exercise, observable key, entity) snapshots.
#: No index, so a write is an append; the correlation enricher merges the rows of the last
#: window at start-up and ``purge`` drops old ones.
sightings = sa.Table(
    "intel_sightings",
    metadata,
    sa.Column("exercise_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("observable_key", sa.Text, nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("first_seen", TZ, nullable=False),
    sa.Column("last_seen", TZ, nullable=False),
    sa.Column("count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("fingerprints", sa.JSON, nullable=False),
)

campaigns = sa.Table(
    "intel_campaigns",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("exercise_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("observable_key", sa.Text, nullable=False),
    sa.Column("entity_ids", sa.JSON, nullable=False),
    sa.Column("first_seen", TZ, nullable=False),
    sa.Column("last_seen", TZ, nullable=False),
    sa.Column("alert_fingerprints", sa.JSON, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
)
