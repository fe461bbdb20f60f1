"""Fixtures for the case store tests: a private PostgreSQL schema per test.

``pg_url`` is a SQLAlchemy URL whose connections use a freshly created, uniquely named
schema (``search_path`` set through the libpq ``options`` parameter), dropped afterwards.
The server is ``$PUKARA_TEST_PG_URL`` or the local one (127.0.0.1:5432, db ``test``, user
``postgres``, trust auth); the test is skipped with the reason when none answers.
``pg_module_url`` is the same with one schema per test module, for suites that reset the
tables between tests instead of paying for a schema each time.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _conninfo(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def _private_schema() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    base = os.environ.get("PUKARA_TEST_PG_URL", DEFAULT_PG_URL)
    schema = f"pukara_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_conninfo(base), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {make_url(base).host}: {exc}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        url = make_url(base)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL bound to a new empty schema (dropped after the test)."""
    with _private_schema() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """Like ``pg_url`` but one schema for a whole test module (reset it between tests)."""
    with _private_schema() as url:
        yield url
