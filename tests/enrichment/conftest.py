"""Fixtures for the enrichment tests: a fresh SQLite database with the intel tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from enrichment.intel.store import IntelStore
from enrichment.intel.tables import metadata


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    """A SQLite engine on a temporary file with the intel tables created."""
    created = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    metadata.create_all(created)
    yield created
    created.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> IntelStore:
    """An IntelStore on the temporary database."""
    return IntelStore(engine)
