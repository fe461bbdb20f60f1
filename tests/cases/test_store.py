"""The store: pragmas enforced, unclean stops checked, schema stamped, both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, inspect

from cases.store.engine import Store, make_engine
from pukara.core.errors import StoreError


def _sqlite_store(tmp_path: Path) -> Store:
    return Store(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), home=tmp_path)


def test_sqlite_store_runs_with_safe_pragmas(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path).open()
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    store.close()


def test_store_refuses_to_start_with_unsafe_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    @event.listens_for(engine, "connect")
    def _weaken(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    with pytest.raises(StoreError, match="synchronous"):
        Store(engine, home=tmp_path).open()


def test_fresh_store_is_stamped_at_alembic_head_and_reopens(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path).open()
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    tables = set(inspect(store.engine).get_table_names())
    assert {"alerts", "incidents", "audit_log", "tokens", "entities", "intel_indicators"} <= tables
    store.close()
    assert not (tmp_path / ".store-open").exists()
    _sqlite_store(tmp_path).open().close()


def test_unclean_stop_triggers_integrity_check(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path).open()
    store.engine.dispose()
    assert (tmp_path / ".store-open").exists(), "an open store leaves its marker"
    checked: list[str] = []
    reopened = _sqlite_store(tmp_path)

    @event.listens_for(reopened.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        checked.append(statement)

    reopened.open().close()
    assert "PRAGMA integrity_check" in checked


def test_write_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path).open()
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO sequences (name, value) VALUES ('x', 1)"
        )
        raise RuntimeError("crash before commit")
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sequences").scalar() == 0
    store.close()


@pytest.mark.postgres
def test_postgresql_store_creates_schema_and_guards_audit(pg_url: str) -> None:
    store = Store(make_engine(pg_url)).open()
    tables = set(inspect(store.engine).get_table_names())
    assert {"alerts", "incidents", "audit_log", "intel_indicators"} <= tables
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
    store.open()
    store.close()


def test_database_files_are_private(tmp_path: Path) -> None:
    import stat

    store = _sqlite_store(tmp_path).open()
    with store.write() as conn:
        conn.exec_driver_sql("INSERT INTO sequences (name, value) VALUES ('p', 1)")
    for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm"):
        path = tmp_path / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert (tmp_path / "db.sqlite").exists()
    store.close()
