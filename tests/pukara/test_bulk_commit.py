"""The bulk path commits batch k in a thread while batch k+1 is staged.

A commit that fails (here for real: a deferred foreign-key violation that SQLite reports
only at COMMIT) must leave the store and the correlation memory as after batch k-1, with
batch k+1's staging discarded first: ingesting the report again then gives what a clean
run gives. Real Suricata EVE (the Muntaha sample), three entities, as in test_bulk.py.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collectors.parsers.suricata import SuricataEveParser
from pukara.core.schema import Alert, RawReport
from tests.pukara.test_bulk import CHANNELS, MUNTAHA, RECEIVED, _services, _stored

BATCH = 100
FAILING_BATCH = 5


def _report(data: bytes, entity: str) -> RawReport:
    return RawReport(stream=io.BytesIO(data), source="file", filename="eve.json",
                     entity_id=entity, format="suricata", received_at=RECEIVED)


def _first_alert_lines(data: bytes, alerts: int) -> bytes:
    """The report up to its ``alerts``-th alert line (the batches committed before the fault)."""
    kept: list[bytes] = []
    for line in data.splitlines(keepends=True):
        kept.append(line)
        parsed = list(SuricataEveParser().parse(_report(line, "minsa")))
        alerts -= sum(isinstance(r, Alert) for r in parsed)
        if alerts == 0:
            return b"".join(kept)
    raise AssertionError("the sample is shorter than that")


def _memory(built: Any) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    """The correlation sightings in memory: (entity, first, last, count, fingerprints) by
    (exercise, key, entity); the batch-relative bookkeeping (saved, ref) left out."""
    correlation = built.pipeline.enrichers[0].correlation
    found = {}
    for exercise, by_key in correlation._sightings.items():
        for key, value in by_key.items():
            for sighting in value.values() if isinstance(value, dict) else (value,):
                entity, first, last, count, prints = sighting[:5]
                found[exercise, key, entity] = (first, last, count, frozenset(prints))
    return found


def test_a_failed_commit_while_the_next_batch_is_staged_loses_and_doubles_nothing(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pukara.pipeline as pipeline_module

    data = (shared_data / MUNTAHA).read_bytes()
    entity = CHANNELS[0]
    reference = _services(tmp_path / "reference", monkeypatch, workers=1)
    reference.pipeline.ingest(_report(_first_alert_lines(data, BATCH * (FAILING_BATCH - 1)),
                                      entity), batch_size=BATCH)
    for other in CHANNELS[1:]:
        reference.pipeline.ingest(_report(data, other), batch_size=BATCH)
    reference.pipeline.ingest(_report(data, entity), batch_size=BATCH)
    expected, expected_memory = _stored(reference), _memory(reference)
    reference.close()

    built = _services(tmp_path / "faulty", monkeypatch, workers=1)
    committed_in: set[str] = set()
    sa.event.listen(built.store.engine, "commit",
                    lambda _conn: committed_in.add(threading.current_thread().name))
    real = pipeline_module.alert_store.write_sqlite_rows
    calls = 0

    def fails_at_commit(conn: sa.Connection, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        outcome = real(conn, *args)
        if calls == FAILING_BATCH:  # SQLite checks a deferred foreign key only at COMMIT
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
            conn.exec_driver_sql(
                "INSERT INTO evidence (id, incident_id, entity_id, sha256, size, filename, "
                "declared_type, created_at) VALUES ('e1', 'no-such-incident', 'minsa', "
                "'00', 0, 'x', 'x', '2026-11-23 00:00:00.000000')")
        return outcome

    monkeypatch.setattr(pipeline_module.alert_store, "write_sqlite_rows", fails_at_commit)
    correlation = built.pipeline.enrichers[0].correlation  # type: ignore[attr-defined]
    real_stage, staged = correlation.stage_seen, []

    def counted_stage(seen: Any) -> Any:
        staged.append(len(seen))
        return real_stage(seen)

    monkeypatch.setattr(correlation, "stage_seen", counted_stage)
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
        built.pipeline.ingest(_report(data, entity), batch_size=BATCH)
    # batch k+1 was staged (not written) when batch k's commit failed: both were undone
    assert (calls, len(staged)) == (FAILING_BATCH, FAILING_BATCH + 1)
    monkeypatch.setattr(correlation, "stage_seen", real_stage)
    with built.store.read() as conn:
        stored = conn.execute(sa.text(
            "SELECT sum(count) FROM alerts WHERE source != 'correlation'")).scalar_one()
    assert stored == BATCH * (FAILING_BATCH - 1)
    monkeypatch.setattr(pipeline_module.alert_store, "write_sqlite_rows", real)
    for other in CHANNELS[1:]:
        built.pipeline.ingest(_report(data, other), batch_size=BATCH)
    built.pipeline.ingest(_report(data, entity), batch_size=BATCH)
    got, memory = _stored(built), _memory(built)
    built.close()
    assert got == expected
    assert memory == expected_memory and len(memory) > 50
    assert "pukara-commit" in committed_in  # the batches' commits ran in their thread
