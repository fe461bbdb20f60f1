"""The audit log's hash chain: tampering is detected and named; appends stay linear."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import exc, select

from cases.services import audit
from cases.store.engine import Store, make_engine
from cases.store.tables import audit_log
from pukara.core.errors import AuditChainBroken


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    opened = Store(make_engine(url), home=tmp_path).open()
    yield opened
    opened.close()


def _append(store: Store, n: int) -> None:
    for i in range(n):
        with store.write() as conn:
            audit.append(conn, audit.Actor("ana"), "case.update", "case", f"c{i}",
                          entity_id="minsa", before={"v": i}, after={"v": i + 1})


def _drop_guards(store: Store) -> None:
    """Simulate an attacker with raw database access: the append-only triggers removed."""
    with store.write() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")


def test_chain_verifies_and_records_before_after_hashes(store: Store) -> None:
    _append(store, 5)
    with store.read() as conn:
        assert audit.verify(conn) == 5
        row = conn.execute(select(audit_log).where(audit_log.c.seq == 3)).one()
    assert row.before_hash == audit.digest({"v": 2})
    assert row.after_hash == audit.digest({"v": 3})
    assert row.prev_hash != audit.GENESIS


def test_application_cannot_update_or_delete_audit_rows(store: Store) -> None:
    _append(store, 2)
    with pytest.raises(exc.DBAPIError, match="append-only"), store.write() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    with pytest.raises(exc.DBAPIError, match="append-only"), store.write() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log WHERE seq = 2")


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3),
        ("UPDATE audit_log SET object_id = 'c9' WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 5", 5),
    ],
)
def test_edit_or_delete_names_first_bad_entry(store: Store, tamper: str, first_bad: int) -> None:
    _append(store, 5)
    _drop_guards(store)
    with store.write() as conn:
        conn.exec_driver_sql(tamper)
    with store.read() as conn, pytest.raises(AuditChainBroken) as caught:
        audit.verify(conn)
    assert caught.value.index == first_bad


def test_reordered_entries_are_detected(store: Store) -> None:
    _append(store, 4)
    _drop_guards(store)
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET seq = 100 WHERE seq = 2")
        conn.exec_driver_sql("UPDATE audit_log SET seq = 2 WHERE seq = 3")
        conn.exec_driver_sql("UPDATE audit_log SET seq = 3 WHERE seq = 100")
    with store.read() as conn, pytest.raises(AuditChainBroken) as caught:
        audit.verify(conn)
    assert caught.value.index == 2


def test_concurrent_writers_form_one_linear_chain(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(10):
                with store.write() as conn:
                    audit.append(conn, audit.Actor(f"w{worker}"), "x", "case", f"{worker}-{i}")
        except BaseException as failure:
            errors.append(failure)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.read() as conn:
        assert audit.verify(conn) == 100
        seqs = list(conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq)).scalars())
    assert seqs == list(range(1, 101))


def test_entry_rolls_back_with_its_business_change(store: Store) -> None:
    _append(store, 1)
    with pytest.raises(RuntimeError), store.write() as conn:
        audit.append(conn, audit.Actor("ana"), "case.close", "case", "c1")
        raise RuntimeError("business change failed")
    with store.read() as conn:
        assert audit.verify(conn) == 1


def test_details_refuse_secret_fields(store: Store) -> None:
    with pytest.raises(ValueError, match="secrets"), store.write() as conn:
        audit.append(conn, audit.Actor("ana"), "x", "token", details={"token": "pk_abc"})
