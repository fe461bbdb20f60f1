"""Alembic environment: runs against the Store's engine handed in by cases.store.migrate."""

from __future__ import annotations

from alembic import context

config = context.config
engine = config.attributes["engine"]
target_metadata = config.attributes["metadatas"]

with engine.connect() as connection:
    connection.execution_options(pukara_write=True)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
