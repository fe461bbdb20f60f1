"""Tables of the case system (national incidents), on the case store's MetaData.

A case links alerts (``alerts.case_id``) and entity incident reports (``incidents.case_id``);
everything else of a case lives here: its entities, observables, tasks, timeline, comments.
``alert_events`` records every alert status change (time to acknowledge); ``reminders_sent``
makes deadline reminders idempotent per (incident, stage, deadline) (SECURITY N4).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cases.store.tables import UTC_TS, BigId, metadata

cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("title", String(512), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("classification", String(80), nullable=False),
    Column("severity", String(16), nullable=False, index=True),
    Column("tlp", String(16), nullable=False),
    Column("pap", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("resolution", String(16), nullable=True),
    Column("summary", Text, nullable=True),
    Column("assignee", String(100), nullable=True),
    Column("tags", JSON, nullable=False),
    Column("techniques", JSON, nullable=False),
    Column("template", String(64), nullable=True),
    Column("merged_into", String(36), nullable=True),
    Column("exercise_id", String(64), nullable=True, index=True),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
    Column("closed_at", UTC_TS, nullable=True),
)

case_entities = Table(
    "case_entities",
    metadata,
    Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True),
    Column("entity_id", String(63), primary_key=True, index=True),
)

case_observables = Table(
    "case_observables",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("type", String(16), nullable=False),
    Column("value", String(4096), nullable=False),
    Column("origin", String(64), nullable=False),
    Column("hits", JSON, nullable=False),
    Column("added_at", UTC_TS, nullable=False),
    UniqueConstraint("case_id", "type", "value", name="uq_case_observables_value"),
    Index("ix_case_observables_type_value", "type", "value"),
)

case_tasks = Table(
    "case_tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("owner", String(100), nullable=True),
    Column("due_at", UTC_TS, nullable=True),
    Column("status", String(16), nullable=False),
    Column("notes", Text, nullable=False, default=""),
    Column("created_at", UTC_TS, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
)

case_timeline = Table(
    "case_timeline",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("event_at", UTC_TS, nullable=False),
    Column("recorded_at", UTC_TS, nullable=False),
    Column("kind", String(8), nullable=False, comment="auto | note"),
    Column("action", String(48), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("details", JSON, nullable=False),
)

case_comments = Table(
    "case_comments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("author", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigId, nullable=False, index=True),
    Column("from_status", String(16), nullable=False),
    Column("to_status", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("case_id", String(36), nullable=True),
    Column("actor", String(100), nullable=False),
    Column("at", UTC_TS, nullable=False),
)

reminders_sent = Table(
    "reminders_sent",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("stage", String(24), primary_key=True),
    Column("deadline", UTC_TS, primary_key=True),
    Column("entity_id", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("claimed_at", UTC_TS, nullable=False),
)

__all__ = [
    "alert_events",
    "case_comments",
    "case_entities",
    "case_observables",
    "case_tasks",
    "case_timeline",
    "cases",
    "reminders_sent",
]
