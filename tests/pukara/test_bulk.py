"""The bulk path (pukara.bulk): worker processes parse and enrich, this process correlates and
writes. It must store exactly what the in-process Alert path stores, on real EVE samples."""

from __future__ import annotations

import io
import multiprocessing
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from cases.services.alerts import COLUMNS
from cases.store.tables import alerts
from collectors.parsers import base
from enrichment.intel import tables as intel_tables
from enrichment.intel.store import IntelStore
from pukara import bulk
from pukara.core.config import load_settings
from pukara.core.observables import ObservableType
from pukara.core.schema import Indicator, IngestResult, RawReport
from pukara.wiring import Services, build_services

MUNTAHA = "suricata/Muntaha-Ghafoor-eve.json"
CHANNELS = ("minsa", "sunat", "reniec")  # three entities report the same sensor file
RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _services(home: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> Services:
    monkeypatch.setenv("PUKARA_HOME", str(home))
    monkeypatch.setenv("PUKARA_INGEST_WORKERS", str(workers))
    built = build_services(load_settings())
    from pukara.core.schema import Entity

    built.identity.upsert_entities(Entity(id=e, name=e.upper(), sector="government")
                                   for e in CHANNELS)
    IntelStore(built.store.engine).upsert([Indicator(
        type=ObservableType.IPV4, value="34.95.113.255", source="test-feed",
        event_uuid="5a1f0000-0000-4000-8000-000000000001", event_info="test event",
        threat_level=1)])
    return built


def _report(path: Path, entity: str | None = None, fmt: str = "suricata") -> RawReport:
    return RawReport(stream=io.BytesIO(path.read_bytes()), source="file", filename=path.name,
                     entity_id=entity, format=fmt, received_at=RECEIVED)


def _stored(built: Services) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    with built.store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(alerts).order_by(alerts.c.id))]
        campaigns = sorted(
            (c.key, c.observable_key, tuple(c.entity_ids), len(c.alert_fingerprints))
            for c in conn.execute(select(intel_tables.campaigns)))
    for row in rows:
        row.pop("id")
        row["doc"] = orjson.loads(row["doc"])
        if row["source"] == "correlation":  # campaign alerts: received when the batch ran
            row["doc"].pop("received_at")
        for hit in row["doc"]["hits"]:
            hit.pop("matched_at", None)
    return rows, campaigns


def test_bulk_rows_equal_the_alert_path(tmp_path: Path, shared_data: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    sample = shared_data / MUNTAHA
    reference = _services(tmp_path / "reference", monkeypatch, workers=1)
    for entity in CHANNELS:
        with reference.store.write() as conn:
            reference.pipeline.ingest_in(_report(sample, entity), conn)
    expected = _stored(reference)
    reference.close()

    monkeypatch.setattr(bulk, "CHUNK_BYTES", 16 * 1024)  # ~50 chunks: many forked tasks
    parallel = _services(tmp_path / "parallel", monkeypatch, workers=2)
    results = [parallel.pipeline.ingest(_report(sample, entity)) for entity in CHANNELS]
    got = _stored(parallel)
    parallel.close()

    assert got == expected
    rows, campaigns = got
    assert [r.accepted + r.duplicates for r in results] == [1345 - 0 - results[0].skipped] * 3
    assert len(campaigns) > 0 and all(c[2] == tuple(sorted(CHANNELS)) for c in campaigns)
    hit_ips = {h["observable"] for r in rows for h in r["doc"]["hits"] if h["kind"] == "indicator"}
    assert hit_ips == {"ipv4:34.95.113.255"}
    assert any(h["kind"] == "correlation" for r in rows for h in r["doc"]["hits"])


def test_forked_workers_do_the_parsing(pukara_home: Path, shared_data: Path) -> None:
    built = build_services(load_settings())
    local = built.pipeline.enrichers[0].local()  # type: ignore[attr-defined]
    children: set[int] = set()
    niceness: set[int] = set()
    parsed = 0
    for chunk in bulk.parse_chunks(_report(shared_data / MUNTAHA), "suricata", local,
                                   workers=2, bucket_seconds=3600, correlate=False,
                                   chunk_bytes=32 * 1024):
        for child in multiprocessing.active_children():
            children.add(child.pid)
            niceness.add(os.getpriority(os.PRIO_PROCESS, child.pid))
        parsed += len(chunk.rows) + chunk.skipped
    built.close()
    assert len(children) == 2
    # the workers yield the CPU to this process, the serial stage that keeps them fed
    assert niceness == {os.getpriority(os.PRIO_PROCESS, 0) + bulk.WORKER_NICE}
    assert parsed == 1345
    assert not multiprocessing.active_children()


def test_failures_keep_their_file_line_numbers(pukara_home: Path, shared_data: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (shared_data / MUNTAHA).read_bytes().splitlines(keepends=True)[:300]
    bad = {7: b"not json\n", 150: b"[1, 2]\n", 151: b"\n", 299: b'{"event_type": 5}\n'}
    body = b"".join(bad.get(n, line) for n, line in enumerate(lines, start=1))
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 2048)
    monkeypatch.setenv("PUKARA_INGEST_WORKERS", "2")
    built = build_services(load_settings())
    result = built.pipeline.ingest(RawReport(stream=io.BytesIO(body), source="file",
                                             filename="eve.json", format="suricata"))
    built.close()
    assert [(e.source, e.line) for e in result.errors] == [
        ("eve.json", 7), ("eve.json", 150), ("eve.json", 299)]
    assert result.rejected == 3
    assert result.accepted + result.duplicates + result.skipped == 300 - 4


def test_an_overlong_line_is_cut_like_the_line_reader_cuts_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 64)
    monkeypatch.setattr(bulk, "MAX_LINE_BYTES", 64)
    body = b'{"a": 1}\n' + b"x" * 500 + b"\n" + b'{"b": 2}\n' + b"y" * 30
    whole = list(base.iter_lines(RawReport(stream=io.BytesIO(body), source="t")))
    stream = io.BytesIO(body)
    chunks = []
    while chunk := bulk.read_chunk(stream, 12):
        chunks.append(chunk)
    rebuilt = list(base.iter_lines(RawReport(stream=io.BytesIO(b"".join(chunks)), source="t")))
    assert rebuilt == whole
    assert [len(line) for _, line in whole] == [8, 65, 8, 30]
    assert all(c.endswith(b"\n") for c in chunks[:-1])


def test_a_small_report_stays_in_this_process(pukara_home: Path, shared_data: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUKARA_INGEST_WORKERS", "2")
    built = build_services(load_settings())
    started: list[int] = []
    monkeypatch.setattr(bulk.multiprocessing, "get_context",
                        lambda *a: started.append(1) or multiprocessing.get_context(*a))
    result: IngestResult = built.pipeline.ingest(
        _report(shared_data / "suricata/mkhairin-eve.json"))
    built.close()
    assert started == []
    assert result.accepted > 0 and result.rejected == 0


def test_a_dead_worker_stops_the_ingest_with_a_clear_error(
        pukara_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pukara.core.errors import PukaraError

    real = bulk.work_chunk

    def dies_on_a_late_chunk(job: Any, data: bytes, first_line: int,
                             sent: bulk.Sent) -> bulk.Parsed:
        if first_line > 1000 and os.getpid() != parent:  # only in a forked worker
            os._exit(9)  # as the OOM killer would
        return real(job, data, first_line, sent)

    parent = os.getpid()
    monkeypatch.setattr(bulk, "work_chunk", dies_on_a_late_chunk)
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 16 * 1024)
    monkeypatch.setenv("PUKARA_INGEST_WORKERS", "2")
    built = build_services(load_settings())
    with pytest.raises(PukaraError, match=re.escape("Muntaha-Ghafoor-eve.json: an ingest worker")):
        built.pipeline.ingest(_report(shared_data / MUNTAHA), batch_size=100)
    stored = built.alerts.count()
    built.close()
    assert stored > 0  # the batches committed before the worker died stay
    assert not multiprocessing.active_children()


def test_repeats_come_compact_with_the_same_correlation_input(
        pukara_home: Path, shared_data: Path) -> None:
    # the real sample repeats a few alerts (same signature, addresses, hour) over and over
    built = build_services(load_settings())
    local = built.pipeline.enrichers[0].local()  # type: ignore[attr-defined]
    runs = {}
    for compact in (True, False):
        runs[compact] = list(bulk.parse_chunks(
            _report(shared_data / MUNTAHA, "minsa"), "suricata", local, workers=2,
            bucket_seconds=3600, correlate=True, compact_repeats=compact,
            chunk_bytes=16 * 1024))
    built.close()
    compact_rows = [row for chunk in runs[True] for row in chunk.rows]
    full_rows = [row for chunk in runs[False] for row in chunk.rows]
    assert len(compact_rows) == len(full_rows) == 1345
    sent: set[str] = set()
    repeats = 0
    for row, full in zip(compact_rows, full_rows, strict=True):
        assert row[0] == full[0]
        if len(row) == bulk.REPEAT_WIDTH:  # fingerprint, last seen, count
            assert row[0] in sent and row[1:] == (full[COLUMNS.index("last_seen")], 1)
            repeats += 1
        else:
            assert row == full
            sent.add(row[0])
    # each worker sends a fingerprint in full once (which worker takes a chunk varies)
    assert len(sent) == 56 and repeats >= 1345 - 2 * 56
    # a repeat carries its first alert's keys: the same set (the fingerprint covers every
    # observable they come from), in that alert's order (src and dst may be swapped)
    assert [(*s[:4], frozenset(s[4])) for c in runs[True] for s in c.seen if s] == [
        (*s[:4], frozenset(s[4])) for c in runs[False] for s in c.seen if s]
    assert all(s is not None for c in runs[True] for s in c.seen)


def test_a_repeat_row_of_no_stored_alert_fails_the_batch(pukara_home: Path) -> None:
    from cases.services.alerts import write_sqlite_rows
    from pukara.core.errors import PukaraError

    built = build_services(load_settings())
    with pytest.raises(PukaraError, match="1 repeat row"), built.store.write() as conn:
        write_sqlite_rows(conn, [("0" * 64, "2026-06-12 07:28:38.000000", 2)], 2)
    assert built.alerts.count() == 0
    built.close()


def test_with_another_thread_running_the_report_is_parsed_in_process(
        pukara_home: Path, shared_data: Path) -> None:
    # a lock that thread holds at a fork would stay held in the worker: no fork then
    import threading

    built = build_services(load_settings())
    local = built.pipeline.enrichers[0].local()  # type: ignore[attr-defined]
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        children: set[int] = set()
        rows = 0
        for chunk in bulk.parse_chunks(_report(shared_data / MUNTAHA), "suricata", local,
                                       workers=2, bucket_seconds=3600, correlate=False,
                                       chunk_bytes=32 * 1024):
            children.update(p.pid for p in multiprocessing.active_children())
            rows += len(chunk.rows)
    finally:
        stop.set()
        other.join()
        built.close()
    assert children == set()
    assert rows == 1345


def test_events_a_fingerprint_ignores_cannot_grow_what_a_worker_remembers(
        pukara_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # hostile or odd input: one real alert repeated with a different rule revision each time
    # (a mutation of the real line) gives one fingerprint but a new event every line
    line = next(raw for raw in (shared_data / MUNTAHA).read_bytes().splitlines()
                if b'"event_type":"alert"' in raw.replace(b" ", b""))
    event = orjson.loads(line)
    lines = []
    for revision in range(60):
        event["alert"]["rev"] = revision
        lines.append(orjson.dumps(event))
    monkeypatch.setattr(bulk, "MAX_EMITTED", 16)
    built = build_services(load_settings())
    local = built.pipeline.enrichers[0].local()  # type: ignore[attr-defined]
    job = bulk._Job(type(bulk.parser("suricata")), "file", "eve.json", "minsa", None, RECEIVED,
                    local, 3600, True, True)
    sent = bulk.Sent()
    rows = []
    for start in range(0, 60, 10):  # six chunks of ten lines
        chunk = b"\n".join(lines[start:start + 10]) + b"\n"
        rows.extend(bulk.work_chunk(job, chunk, start + 1, sent).rows)
        assert len(sent.events) <= 16 + 10  # the bound, plus at most one chunk past it
    built.close()
    assert len({row[0] for row in rows}) == 1 and len(rows) == 60
    assert sum(len(row) != bulk.REPEAT_WIDTH for row in rows) >= 2  # sent again after a reset
