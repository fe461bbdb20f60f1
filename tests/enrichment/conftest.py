"""Fixtures for the enrichment tests: a fresh SQLite database with the intel tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from enrichment.intel.store import IntelStore
from enrichment.intel.tables import metadata


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """A SQLite engine on a temporary file with the intel tables created."""
    created = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    metadata.create_all(created)
    yield created
    created.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> IntelStore:
    """An IntelStore on the temporary database."""
    return IntelStore(engine)


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    """The lead's PostgreSQL (127.0.0.1:5432/test), in a throw-away schema."""
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    probe = sa.create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with probe.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432/test: {exc.orig}")
    schema = f"intel_test_{uuid.uuid4().hex[:8]}"
    with probe.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = probe.execution_options(schema_translate_map={None: schema})
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        with probe.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        probe.dispose()
