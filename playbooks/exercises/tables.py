"""The exercise engine's own tables (its schedule state lives here, never in a job store).

APScheduler runs with its in-memory job store only; every job is rebuilt from these rows on
start, so nothing pickled is ever read back (SECURITY M4). Own MetaData: the case layer never
imports this package, :func:`ensure_tables` creates the tables on an existing store.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from cases.store.tables import UTC_TS

metadata = MetaData()

exercises = Table(
    "exercises", metadata,
    Column("id", String(64), primary_key=True),
    Column("scenario_id", String(63), nullable=False),
    Column("title", String(300), nullable=False),
    Column("scenario", JSON, nullable=False, comment="the scenario, frozen at creation"),
    Column("participants", JSON, nullable=False),
    Column("bots", JSON, nullable=False, comment="entity ids played by bots"),
    Column("status", String(16), nullable=False),
    Column("speed", Float, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("started_at", UTC_TS, nullable=True),
    Column("paused_at", UTC_TS, nullable=True),
    Column("paused_seconds", Float, nullable=False, default=0.0),
    Column("ended_at", UTC_TS, nullable=True),
)

exercise_pauses = Table(
    "exercise_pauses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exercise_id", String(64), nullable=False, index=True),
    Column("paused_at", UTC_TS, nullable=False),
    Column("resumed_at", UTC_TS, nullable=True),
    Column("exercise_seconds", Float, nullable=False),
)

exercise_injects = Table(
    "exercise_injects", metadata,
    Column("exercise_id", String(64), primary_key=True),
    Column("inject_id", String(63), primary_key=True),
    Column("offset_seconds", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False, comment="pending|running|fired|missed|failed"),
    Column("fired_at", UTC_TS, nullable=True),
    Column("exercise_seconds", Float, nullable=True, comment="exercise time it fired at"),
    Column("lateness_seconds", Float, nullable=True, comment="wall seconds after its slot"),
    Column("duration_seconds", Float, nullable=True, comment="wall seconds it ran"),
    Column("result", JSON, nullable=True),
)

exercise_manual_scores = Table(
    "exercise_manual_scores", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exercise_id", String(64), nullable=False, index=True),
    Column("entity_id", String(63), nullable=False),
    Column("points", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("scored_by", String(100), nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

exercise_lessons = Table(
    "exercise_lessons", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exercise_id", String(64), nullable=False, index=True),
    Column("author", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

exercise_messages = Table(
    "exercise_messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exercise_id", String(64), nullable=False, index=True),
    Column("inject_id", String(63), nullable=False),
    Column("entity_id", String(63), nullable=False, index=True),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
)

exercise_tokens = Table(
    "exercise_participants", metadata,
    Column("token_id", Integer, primary_key=True),
    Column("exercise_id", String(64), nullable=False, index=True),
    Column("entity_id", String(63), nullable=False),
)

exercise_leader = Table(
    "exercise_leader", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", UTC_TS, nullable=False),
)

OWN_TABLES = (exercise_pauses, exercise_injects, exercise_manual_scores, exercise_lessons,
              exercise_messages, exercise_tokens)


def ensure_tables(engine: Engine) -> None:
    """Create the exercise tables where missing (idempotent)."""
    metadata.create_all(engine, checkfirst=True)
