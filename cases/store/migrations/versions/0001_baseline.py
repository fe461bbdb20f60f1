"""Baseline: every table of the first release (case store, intel, playbooks, exercises).

Rendered once by Alembic's autogenerate from the table definitions and then frozen: later
schema changes are new revisions. A fresh store is created from the metadata and stamped at
head (``cases.store.migrate``); ``tests/cases/test_migrations.py`` checks that upgrading an
empty database through the revisions gives exactly the schema the metadata describes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('advisories',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('indicators', sa.JSON(), nullable=False),
    sa.Column('recommendations', sa.JSON(), nullable=False),
    sa.Column('sectors', sa.JSON(), nullable=False),
    sa.Column('addressed', sa.Boolean(), nullable=False, comment='true: only the recipient rows'),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_advisories')),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_advisories_published_at'), 'advisories', ['published_at'], unique=False)
    op.create_table('alert_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('case_id', sa.String(length=36), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_events'))
    )
    op.create_index(op.f('ix_alert_events_alert_id'), 'alert_events', ['alert_id'], unique=False)
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('source_ref', sa.String(length=256), nullable=True),
    sa.Column('entity_id', sa.String(length=63), nullable=True),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('classification', sa.String(length=80), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('hit_count', sa.Integer(), nullable=False),
    sa.Column('exercise_id', sa.String(length=64), nullable=True),
    sa.Column('case_id', sa.String(length=36), nullable=True),
    sa.Column('doc', sa.Text(), nullable=False, comment='the Alert as JSON text'),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('fingerprint')
    )
    op.create_index(op.f('ix_alerts_case_id'), 'alerts', ['case_id'], unique=False)
    op.create_index(op.f('ix_alerts_entity_id'), 'alerts', ['entity_id'], unique=False)
    op.create_index(op.f('ix_alerts_exercise_id'), 'alerts', ['exercise_id'], unique=False)
    op.create_index(op.f('ix_alerts_observed_at'), 'alerts', ['observed_at'], unique=False)
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('before_hash', sa.String(length=64), nullable=True),
    sa.Column('after_hash', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_entity_id'), 'audit_log', ['entity_id'], unique=False)
    op.create_table('cases',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('classification', sa.String(length=80), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('pap', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('assignee', sa.String(length=100), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('techniques', sa.JSON(), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=True),
    sa.Column('merged_into', sa.String(length=36), nullable=True),
    sa.Column('exercise_id', sa.String(length=64), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('number')
    )
    op.create_index(op.f('ix_cases_exercise_id'), 'cases', ['exercise_id'], unique=False)
    op.create_index(op.f('ix_cases_severity'), 'cases', ['severity'], unique=False)
    op.create_index(op.f('ix_cases_status'), 'cases', ['status'], unique=False)
    op.create_table('entities',
    sa.Column('id', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('sector', sa.String(length=64), nullable=False),
    sa.Column('criticality', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entities'))
    )
    op.create_index(op.f('ix_entities_sector'), 'entities', ['sector'], unique=False)
    op.create_table('exercise_injects',
    sa.Column('exercise_id', sa.String(length=64), nullable=False),
    sa.Column('inject_id', sa.String(length=63), nullable=False),
    sa.Column('offset_seconds', sa.Float(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False, comment='pending|running|fired|missed|failed'),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exercise_seconds', sa.Float(), nullable=True, comment='exercise time it fired at'),
    sa.Column('lateness_seconds', sa.Float(), nullable=True, comment='wall seconds after its slot'),
    sa.Column('duration_seconds', sa.Float(), nullable=True, comment='wall seconds it ran'),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('exercise_id', 'inject_id')
    )
    op.create_table('exercise_leader',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('holder', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('exercise_lessons',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('exercise_id', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_exercise_lessons_exercise_id'), 'exercise_lessons', ['exercise_id'], unique=False)
    op.create_table('exercise_manual_scores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('exercise_id', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('scored_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_exercise_manual_scores_exercise_id'), 'exercise_manual_scores', ['exercise_id'], unique=False)
    op.create_table('exercise_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('exercise_id', sa.String(length=64), nullable=False),
    sa.Column('inject_id', sa.String(length=63), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_exercise_messages_entity_id'), 'exercise_messages', ['entity_id'], unique=False)
    op.create_index(op.f('ix_exercise_messages_exercise_id'), 'exercise_messages', ['exercise_id'], unique=False)
    op.create_table('exercise_participants',
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('exercise_id', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('token_id')
    )
    op.create_index(op.f('ix_exercise_participants_exercise_id'), 'exercise_participants', ['exercise_id'], unique=False)
    op.create_table('exercise_pauses',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('exercise_id', sa.String(length=64), nullable=False),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exercise_seconds', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_exercise_pauses_exercise_id'), 'exercise_pauses', ['exercise_id'], unique=False)
    op.create_table('exercises',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('scenario_id', sa.String(length=63), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('scenario', sa.JSON(), nullable=False, comment='the scenario, frozen at creation'),
    sa.Column('participants', sa.JSON(), nullable=False),
    sa.Column('bots', sa.JSON(), nullable=False, comment='entity ids played by bots'),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('speed', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_seconds', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('idempotency_keys',
    sa.Column('principal', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('principal', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_index(op.f('ix_idempotency_keys_expires_at'), 'idempotency_keys', ['expires_at'], unique=False)
    op.create_table('inbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=True),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_messages')),
    sa.UniqueConstraint('message_id')
    )
    op.create_index(op.f('ix_inbox_messages_entity_id'), 'inbox_messages', ['entity_id'], unique=False)
    op.create_table('intel_campaigns',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('exercise_id', sa.String(length=64), server_default='', nullable=False),
    sa.Column('observable_key', sa.Text(), nullable=False),
    sa.Column('entity_ids', sa.JSON(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('alert_fingerprints', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('intel_indicators',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('event_uuid', sa.String(length=64), server_default='', nullable=False),
    sa.Column('event_info', sa.Text(), nullable=True),
    sa.Column('threat_level', sa.SmallInteger(), nullable=True),
    sa.Column('org', sa.String(length=256), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('to_ids', sa.Boolean(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'type', 'value', 'event_uuid', name='uq_intel_indicator')
    )
    op.create_table('intel_sightings',
    sa.Column('exercise_id', sa.String(length=64), server_default='', nullable=False),
    sa.Column('observable_key', sa.Text(), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), server_default='1', nullable=False),
    sa.Column('fingerprints', sa.JSON(), nullable=False)
    )
    op.create_table('intel_sources',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('location', sa.Text(), server_default='', nullable=False),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_timestamp', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('loaded', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rejected', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('intel_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('intel_warninglists',
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('version', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('matching_attributes', sa.JSON(), nullable=False),
    sa.Column('entries', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('dedupe_key', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False, comment='email | webhook | inbox'),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=True),
    sa.Column('case_id', sa.String(length=36), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False, comment='pending | sending | sent | dead | capped'),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedupe_key'),
    sa.UniqueConstraint('message_id')
    )
    op.create_index('ix_outbox_due', 'outbox', ['state', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_outbox_entity_id'), 'outbox', ['entity_id'], unique=False)
    op.create_index(op.f('ix_outbox_recipient'), 'outbox', ['recipient'], unique=False)
    op.create_table('reminders_sent',
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('incident_id', 'stage', 'deadline', name=op.f('pk_reminders_sent'))
    )
    op.create_table('search_outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False, comment='alert | case'),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('op', sa.String(length=8), nullable=False, comment='create | index'),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_search_outbox'))
    )
    op.create_table('sequences',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_sequences'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name')
    )
    op.create_table('advisory_recipients',
    sa.Column('advisory_id', sa.String(length=36), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('addressed', sa.Boolean(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['advisory_id'], ['advisories.id'], name=op.f('fk_advisory_recipients_advisory_id_advisories')),
    sa.PrimaryKeyConstraint('advisory_id', 'entity_id', name=op.f('pk_advisory_recipients'))
    )
    op.create_index(op.f('ix_advisory_recipients_entity_id'), 'advisory_recipients', ['entity_id'], unique=False)
    op.create_table('case_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_comments_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_comments'))
    )
    op.create_index(op.f('ix_case_comments_case_id'), 'case_comments', ['case_id'], unique=False)
    op.create_table('case_entities',
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_entities_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', 'entity_id', name=op.f('pk_case_entities'))
    )
    op.create_index(op.f('ix_case_entities_entity_id'), 'case_entities', ['entity_id'], unique=False)
    op.create_table('case_observables',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=4096), nullable=False),
    sa.Column('origin', sa.String(length=64), nullable=False),
    sa.Column('hits', sa.JSON(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_observables_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_observables')),
    sa.UniqueConstraint('case_id', 'type', 'value', name='uq_case_observables_value')
    )
    op.create_index(op.f('ix_case_observables_case_id'), 'case_observables', ['case_id'], unique=False)
    op.create_index('ix_case_observables_type_value', 'case_observables', ['type', 'value'], unique=False)
    op.create_table('case_tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_tasks_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_tasks'))
    )
    op.create_index(op.f('ix_case_tasks_case_id'), 'case_tasks', ['case_id'], unique=False)
    op.create_table('case_timeline',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False, comment='auto | note'),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_timeline_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_timeline'))
    )
    op.create_index(op.f('ix_case_timeline_case_id'), 'case_timeline', ['case_id'], unique=False)
    op.create_table('incidents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tracking_number', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('classification', sa.String(length=80), nullable=False),
    sa.Column('taxonomy_version', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('tlp_origin', sa.String(length=63), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('regime', sa.String(length=32), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('awareness_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('exercise_id', sa.String(length=64), nullable=True),
    sa.Column('case_id', sa.String(length=36), nullable=True),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_incidents_entity_id_entities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('entity_id', 'external_id', name='uq_incidents_entity_external'),
    sa.UniqueConstraint('tracking_number')
    )
    op.create_index(op.f('ix_incidents_case_id'), 'incidents', ['case_id'], unique=False)
    op.create_index(op.f('ix_incidents_entity_id'), 'incidents', ['entity_id'], unique=False)
    op.create_index(op.f('ix_incidents_exercise_id'), 'incidents', ['exercise_id'], unique=False)
    op.create_table('observable_marks',
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=4096), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('marked_by', sa.String(length=100), nullable=False),
    sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_observable_marks_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', 'type', 'value', name=op.f('pk_observable_marks'))
    )
    op.create_table('playbook_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('playbook_id', sa.String(length=63), nullable=False),
    sa.Column('playbook_version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False, comment='running | done | failed | cancelled'),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_playbook_runs_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_playbook_runs')),
    sa.UniqueConstraint('case_id', 'playbook_id', name='uq_playbook_runs_case_playbook')
    )
    op.create_index(op.f('ix_playbook_runs_case_id'), 'playbook_runs', ['case_id'], unique=False)
    op.create_index(op.f('ix_playbook_runs_state'), 'playbook_runs', ['state'], unique=False)
    op.create_table('tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=8), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['entity_id'], ['entities.id'], name=op.f('fk_tokens_entity_id_entities')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tokens')),
    sa.UniqueConstraint('hash')
    )
    op.create_index(op.f('ix_tokens_entity_id'), 'tokens', ['entity_id'], unique=False)
    op.create_index(op.f('ix_tokens_user_id'), 'tokens', ['user_id'], unique=False)
    op.create_table('evidence',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('declared_type', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_evidence_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    op.create_index(op.f('ix_evidence_entity_id'), 'evidence', ['entity_id'], unique=False)
    op.create_index(op.f('ix_evidence_incident_id'), 'evidence', ['incident_id'], unique=False)
    op.create_index(op.f('ix_evidence_sha256'), 'evidence', ['sha256'], unique=False)
    op.create_table('incident_observables',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('entity_id', sa.String(length=63), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=4096), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_observables_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_observables'))
    )
    op.create_index(op.f('ix_incident_observables_incident_id'), 'incident_observables', ['incident_id'], unique=False)
    op.create_index('ix_incident_observables_value', 'incident_observables', ['type', 'value'], unique=False)
    op.create_table('incident_updates',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_updates_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_updates')),
    sa.UniqueConstraint('incident_id', 'number', name='uq_incident_updates_number')
    )
    op.create_index(op.f('ix_incident_updates_incident_id'), 'incident_updates', ['incident_id'], unique=False)
    op.create_table('playbook_steps',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('step_id', sa.String(length=63), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False, comment='pending | running | waiting | done | failed | skipped'),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('task_id', sa.String(length=36), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('output', sa.JSON(), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['playbook_runs.id'], name=op.f('fk_playbook_steps_run_id_playbook_runs')),
    sa.PrimaryKeyConstraint('run_id', 'step_id', name=op.f('pk_playbook_steps'))
    )
    op.create_index(op.f('ix_playbook_steps_state'), 'playbook_steps', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_playbook_steps_state'), table_name='playbook_steps')
    op.drop_table('playbook_steps')
    op.drop_index(op.f('ix_incident_updates_incident_id'), table_name='incident_updates')
    op.drop_table('incident_updates')
    op.drop_index('ix_incident_observables_value', table_name='incident_observables')
    op.drop_index(op.f('ix_incident_observables_incident_id'), table_name='incident_observables')
    op.drop_table('incident_observables')
    op.drop_index(op.f('ix_evidence_sha256'), table_name='evidence')
    op.drop_index(op.f('ix_evidence_incident_id'), table_name='evidence')
    op.drop_index(op.f('ix_evidence_entity_id'), table_name='evidence')
    op.drop_table('evidence')
    op.drop_index(op.f('ix_tokens_user_id'), table_name='tokens')
    op.drop_index(op.f('ix_tokens_entity_id'), table_name='tokens')
    op.drop_table('tokens')
    op.drop_index(op.f('ix_playbook_runs_state'), table_name='playbook_runs')
    op.drop_index(op.f('ix_playbook_runs_case_id'), table_name='playbook_runs')
    op.drop_table('playbook_runs')
    op.drop_table('observable_marks')
    op.drop_index(op.f('ix_incidents_exercise_id'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_entity_id'), table_name='incidents')
    op.drop_index(op.f('ix_incidents_case_id'), table_name='incidents')
    op.drop_table('incidents')
    op.drop_index(op.f('ix_case_timeline_case_id'), table_name='case_timeline')
    op.drop_table('case_timeline')
    op.drop_index(op.f('ix_case_tasks_case_id'), table_name='case_tasks')
    op.drop_table('case_tasks')
    op.drop_index('ix_case_observables_type_value', table_name='case_observables')
    op.drop_index(op.f('ix_case_observables_case_id'), table_name='case_observables')
    op.drop_table('case_observables')
    op.drop_index(op.f('ix_case_entities_entity_id'), table_name='case_entities')
    op.drop_table('case_entities')
    op.drop_index(op.f('ix_case_comments_case_id'), table_name='case_comments')
    op.drop_table('case_comments')
    op.drop_index(op.f('ix_advisory_recipients_entity_id'), table_name='advisory_recipients')
    op.drop_table('advisory_recipients')
    op.drop_table('users')
    op.drop_table('sequences')
    op.drop_table('search_outbox')
    op.drop_table('reminders_sent')
    op.drop_index(op.f('ix_outbox_recipient'), table_name='outbox')
    op.drop_index(op.f('ix_outbox_entity_id'), table_name='outbox')
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('intel_warninglists')
    op.drop_table('intel_state')
    op.drop_table('intel_sources')
    op.drop_table('intel_sightings')
    op.drop_table('intel_indicators')
    op.drop_table('intel_campaigns')
    op.drop_index(op.f('ix_inbox_messages_entity_id'), table_name='inbox_messages')
    op.drop_table('inbox_messages')
    op.drop_index(op.f('ix_idempotency_keys_expires_at'), table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_table('exercises')
    op.drop_index(op.f('ix_exercise_pauses_exercise_id'), table_name='exercise_pauses')
    op.drop_table('exercise_pauses')
    op.drop_index(op.f('ix_exercise_participants_exercise_id'), table_name='exercise_participants')
    op.drop_table('exercise_participants')
    op.drop_index(op.f('ix_exercise_messages_exercise_id'), table_name='exercise_messages')
    op.drop_index(op.f('ix_exercise_messages_entity_id'), table_name='exercise_messages')
    op.drop_table('exercise_messages')
    op.drop_index(op.f('ix_exercise_manual_scores_exercise_id'), table_name='exercise_manual_scores')
    op.drop_table('exercise_manual_scores')
    op.drop_index(op.f('ix_exercise_lessons_exercise_id'), table_name='exercise_lessons')
    op.drop_table('exercise_lessons')
    op.drop_table('exercise_leader')
    op.drop_table('exercise_injects')
    op.drop_index(op.f('ix_entities_sector'), table_name='entities')
    op.drop_table('entities')
    op.drop_index(op.f('ix_cases_status'), table_name='cases')
    op.drop_index(op.f('ix_cases_severity'), table_name='cases')
    op.drop_index(op.f('ix_cases_exercise_id'), table_name='cases')
    op.drop_table('cases')
    op.drop_index(op.f('ix_audit_log_entity_id'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('audit_head')
    op.drop_index(op.f('ix_alerts_observed_at'), table_name='alerts')
    op.drop_index(op.f('ix_alerts_exercise_id'), table_name='alerts')
    op.drop_index(op.f('ix_alerts_entity_id'), table_name='alerts')
    op.drop_index(op.f('ix_alerts_case_id'), table_name='alerts')
    op.drop_table('alerts')
    op.drop_index(op.f('ix_alert_events_alert_id'), table_name='alert_events')
    op.drop_table('alert_events')
    op.drop_index(op.f('ix_advisories_published_at'), table_name='advisories')
    op.drop_table('advisories')
