"""Tables of playbook runs and notifications, on the case store's MetaData.

``playbook_runs`` is one run of a playbook (its definition frozen as JSON at start, so a
library edit never changes a run under way); ``playbook_steps`` holds each step's state with
its timestamps, attempts, persisted next-attempt time, error and output. ``outbox`` holds
every notification until delivered (state, lease, attempts, next attempt; ``message_id`` is
the idempotency key receivers dedupe on); ``inbox_messages`` is the entity API inbox.

The case layer must not import this package (layers point down), so :func:`ensure_tables`
creates these tables on an existing store; it is idempotent.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cases.store.tables import UTC_TS, BigId, metadata

playbook_runs = Table(
    "playbook_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True),
    Column("playbook_id", String(63), nullable=False),
    Column("playbook_version", Integer, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True,
           comment="running | done | failed | cancelled"),
    Column("started_by", String(100), nullable=False),
    Column("started_at", UTC_TS, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
    Column("finished_at", UTC_TS, nullable=True),
    UniqueConstraint("case_id", "playbook_id", name="uq_playbook_runs_case_playbook"),
)

playbook_steps = Table(
    "playbook_steps",
    metadata,
    Column("run_id", String(36), ForeignKey("playbook_runs.id"), primary_key=True),
    Column("step_id", String(63), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(24), nullable=False, index=True,
           comment="pending | running | waiting | done | failed | skipped"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTC_TS, nullable=True),
    Column("task_id", String(36), nullable=True),
    Column("error", Text, nullable=True),
    Column("output", JSON, nullable=False),
    Column("decided_by", String(100), nullable=True),
    Column("created_at", UTC_TS, nullable=False),
    Column("started_at", UTC_TS, nullable=True),
    Column("finished_at", UTC_TS, nullable=True),
    Column("updated_at", UTC_TS, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("dedupe_key", String(300), nullable=False, unique=True),
    Column("kind", String(48), nullable=False),
    Column("channel", String(16), nullable=False, comment="email | webhook | inbox"),
    Column("recipient", String(320), nullable=False, index=True),
    Column("entity_id", String(63), nullable=True, index=True),
    Column("case_id", String(36), nullable=True),
    Column("language", String(8), nullable=False),
    Column("subject", String(998), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False,
           comment="pending | sending | sent | dead | capped"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTC_TS, nullable=False),
    Column("lease_until", UTC_TS, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTC_TS, nullable=False),
    Column("sent_at", UTC_TS, nullable=True),
    Index("ix_outbox_due", "state", "next_attempt_at"),
)

inbox_messages = Table(
    "inbox_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("entity_id", String(63), nullable=False, index=True),
    Column("kind", String(48), nullable=False),
    Column("case_id", String(36), nullable=True),
    Column("subject", String(998), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("read_at", UTC_TS, nullable=True),
)

TABLES = (playbook_runs, playbook_steps, outbox, inbox_messages)


def ensure_tables(engine: Engine) -> None:
    """Create the playbook and notification tables where missing (idempotent)."""
    metadata.create_all(engine, tables=list(TABLES), checkfirst=True)


__all__ = ["TABLES", "ensure_tables", "inbox_messages", "outbox", "playbook_runs",
           "playbook_steps"]
