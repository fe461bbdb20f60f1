"""Tables of the case store (SQLAlchemy Core). One MetaData; enrichment keeps its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)



class UtcTimestamp(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_TS = UtcTimestamp()
BigId = BigInteger().with_variant(Integer, "sqlite")

entities = Table(
    "entities",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("sector", String(64), nullable=False, index=True),
    Column("criticality", Integer, nullable=False),
    Column("language", String(8), nullable=False),
    Column("doc", JSON, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTC_TS, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("entity_id", String(63), ForeignKey("entities.id"), nullable=True, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True, index=True),
    Column("created_at", UTC_TS, nullable=False),
    Column("expires_at", UTC_TS, nullable=True),
    Column("revoked_at", UTC_TS, nullable=True),
    Column("last_used_at", UTC_TS, nullable=True),
)

sequences = Table(
    "sequences",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tracking_number", String(32), nullable=False, unique=True),
    Column("entity_id", String(63), ForeignKey("entities.id"), nullable=False, index=True),
    Column("title", String(512), nullable=False),
    Column("classification", String(80), nullable=False),
    Column("taxonomy_version", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("tlp", String(16), nullable=False),
    Column("tlp_origin", String(63), nullable=False),
    Column("status", String(24), nullable=False),
    Column("regime", String(32), nullable=False),
    Column("detected_at", UTC_TS, nullable=False),
    Column("awareness_at", UTC_TS, nullable=False),
    Column("external_id", String(128), nullable=True),
    Column("exercise_id", String(64), nullable=True, index=True),
    Column("case_id", String(36), nullable=True, index=True),
    Column("doc", JSON, nullable=False),
    Column("raw", Text, nullable=True),
    Column("created_at", UTC_TS, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
    UniqueConstraint("entity_id", "external_id", name="uq_incidents_entity_external"),
)

incident_updates = Table(
    "incident_updates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("stage", String(24), nullable=False),
    Column("doc", JSON, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("created_by", String(100), nullable=False),
    UniqueConstraint("incident_id", "number", name="uq_incident_updates_number"),
)

incident_observables = Table(
    "incident_observables",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", String(36), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("entity_id", String(63), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", String(4096), nullable=False),
    Index("ix_incident_observables_value", "type", "value"),
)

evidence = Table(
    "evidence",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("entity_id", String(63), nullable=False, index=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("filename", String(255), nullable=False),
    Column("declared_type", String(128), nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("source", String(64), nullable=False),
    Column("source_ref", String(256), nullable=True),
    Column("entity_id", String(63), nullable=True, index=True),
    Column("title", String(512), nullable=False),
    Column("classification", String(80), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("tlp", String(16), nullable=False),
    Column("status", String(16), nullable=False, default="new"),
    Column("observed_at", UTC_TS, nullable=False, index=True),
    Column("first_seen", UTC_TS, nullable=False),
    Column("last_seen", UTC_TS, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("hit_count", Integer, nullable=False, default=0),
    Column("exercise_id", String(64), nullable=True, index=True),
    Column("case_id", String(36), nullable=True, index=True),
    Column("doc", Text, nullable=False, comment="the Alert as JSON text"),
    Column("raw", Text, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(80), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(12), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Column("created_at", UTC_TS, nullable=False),
    Column("expires_at", UTC_TS, nullable=False, index=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=False),
    Column("at", UTC_TS, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("entity_id", String(63), nullable=True, index=True),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("before_hash", String(64), nullable=True),
    Column("after_hash", String(64), nullable=True),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
