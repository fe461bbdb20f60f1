"""Baseline: the schema as first released, created from the table metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for metadata in context.config.attributes["metadatas"]:
        metadata.create_all(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for metadata in reversed(context.config.attributes["metadatas"]):
        metadata.drop_all(bind, checkfirst=True)
