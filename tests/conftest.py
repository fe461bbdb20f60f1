"""Shared fixtures: where the real samples live, and a throw-away PUKARA_HOME."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: the real public samples (see its MANIFEST.md)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real samples not found at {SHARED_DATA}: clone with ../shared beside it")
    return SHARED_DATA


@pytest.fixture
def pukara_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PUKARA_HOME for one test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PUKARA_HOME", str(home))
    return home


PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh, private schema on the PostgreSQL test server (dropped afterwards).

    ``PUKARA_TEST_PG_URL`` overrides the server; where none answers the test is skipped with
    that reason, never silently.
    """
    import sqlalchemy

    base = os.environ.get("PUKARA_TEST_PG_URL", PG_DEFAULT_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server answers at {base}: {exc.orig}")
    url = sqlalchemy.engine.make_url(base).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
