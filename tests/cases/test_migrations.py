"""The Alembic revisions build exactly the schema the table definitions describe, so a store
upgraded through the migrations and a fresh one created from the metadata are the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect

import cases.store  # noqa: F401 - the case, sharing tables
import playbooks.tables  # noqa: F401 - playbook and notification tables
from cases.store.engine import Store, make_engine
from cases.store.migrate import alembic_config
from cases.store.tables import metadata as case_metadata
from enrichment.intel.tables import metadata as intel_metadata
from playbooks.exercises.tables import metadata as exercise_metadata


def _every_table() -> MetaData:
    merged = MetaData()
    for metadata in (case_metadata, intel_metadata, exercise_metadata):
        for table in metadata.tables.values():
            table.to_metadata(merged)
    return merged


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_empty_matches_the_metadata(backend: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path / 'db.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    command.upgrade(alembic_config(Store(engine, home=tmp_path)), "head")
    expected = _every_table()
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), expected)
    assert differences == []
    assert set(expected.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
