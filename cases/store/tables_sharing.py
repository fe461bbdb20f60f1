"""Tables of sharing and search, on the case store's MetaData.

``observable_marks`` lets an analyst make one observable of a case stricter than its source
(source protection: this IP is TLP:RED); a mark only ever raises the TLP. ``advisories`` and
``advisory_recipients`` hold published advisories and who they are addressed to, with read
receipts. ``search_outbox`` is the persistent queue that feeds Elasticsearch: filled in the
transaction of the store write, drained at least once, in order (SECURITY I4, I5).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table, Text

from cases.store.tables import UTC_TS, BigId, metadata

observable_marks = Table(
    "observable_marks",
    metadata,
    Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True),
    Column("type", String(16), primary_key=True),
    Column("value", String(4096), primary_key=True),
    Column("tlp", String(16), nullable=False),
    Column("marked_by", String(100), nullable=False),
    Column("marked_at", UTC_TS, nullable=False),
)

advisories = Table(
    "advisories",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("title", String(512), nullable=False),
    Column("summary", Text, nullable=False),
    Column("tlp", String(16), nullable=False),
    Column("indicators", JSON, nullable=False),
    Column("recommendations", JSON, nullable=False),
    Column("sectors", JSON, nullable=False),
    Column("addressed", Boolean, nullable=False, comment="true: only the recipient rows"),
    Column("created_by", String(100), nullable=False),
    Column("published_at", UTC_TS, nullable=False, index=True),
)

advisory_recipients = Table(
    "advisory_recipients",
    metadata,
    Column("advisory_id", String(36), ForeignKey("advisories.id"), primary_key=True),
    Column("entity_id", String(63), primary_key=True, index=True),
    Column("addressed", Boolean, nullable=False),
    Column("read_at", UTC_TS, nullable=True),
)

search_outbox = Table(
    "search_outbox",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False, comment="alert | case"),
    Column("object_id", String(64), nullable=False),
    Column("op", String(8), nullable=False, comment="create | index"),
    Column("enqueued_at", UTC_TS, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500), nullable=True),
)

__all__ = ["advisories", "advisory_recipients", "observable_marks", "search_outbox"]
