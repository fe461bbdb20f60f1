"""Spool folder source on a real temporary folder.

``deliver`` here is a FAKE of the composition root's pipeline (the seam the spool is given):
it records each call and returns an IngestResult, which is exactly what the real pipeline
hands back. The spool's own behaviour (claiming, moving, recovery) runs for real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from collectors.sources.spool import SpoolSource, is_partial
from pukara.core.schema import IngestError, IngestResult, RawReport


class RecordingDeliver:
    """Fake pipeline: records (entity, filename, bytes) and accepts everything."""

    def __init__(self, result: IngestResult | None = None) -> None:
        self.calls: list[tuple[str | None, str, bytes]] = []
        self.result = result or IngestResult(accepted=1)

    def __call__(self, report: RawReport) -> IngestResult:
        self.calls.append((report.entity_id, report.filename, report.stream.read()))
        return self.result


class SimulatedCrash(BaseException):
    """Stands for the process dying after the claim and before the move."""


def drop(root: Path, entity: str, name: str, data: bytes = b"x") -> Path:
    folder = root / entity
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_each_file_is_delivered_once_and_moved_to_done(tmp_path: Path) -> None:
    drop(tmp_path, "minsa", "alerts.json", b'{"a": 1}\n')
    drop(tmp_path, "minsa", "scan.csv", b"timestamp,ip\n")
    drop(tmp_path, "sunat", "report.eml", b"Subject: x\n\nbody")
    spool = SpoolSource(tmp_path, entities={"minsa", "sunat"})
    deliver = RecordingDeliver()
    first = spool.run_once(deliver)
    assert deliver.calls == [
        ("minsa", "alerts.json", b'{"a": 1}\n'),
        ("minsa", "scan.csv", b"timestamp,ip\n"),
        ("sunat", "report.eml", b"Subject: x\n\nbody"),
    ]
    assert first.delivered == ["minsa/alerts.json", "minsa/scan.csv", "sunat/report.eml"]
    assert first.result.accepted == 3
    assert names(tmp_path / "minsa" / "done") == ["alerts.json", "scan.csv"]
    assert names(tmp_path / "minsa" / ".processing") == []
    second = spool.run_once(deliver)
    assert second.delivered == [] and len(deliver.calls) == 3


def test_partial_files_are_ignored_until_renamed(tmp_path: Path) -> None:
    drop(tmp_path, "minsa", "big.csv.part")
    drop(tmp_path, "minsa", ".upload-in-progress")
    drop(tmp_path, "minsa", "x.tmp")
    spool = SpoolSource(tmp_path, entities={"minsa"})
    deliver = RecordingDeliver()
    assert spool.run_once(deliver).delivered == [] and deliver.calls == []
    (tmp_path / "minsa" / "big.csv.part").rename(tmp_path / "minsa" / "big.csv")
    assert spool.run_once(deliver).delivered == ["minsa/big.csv"]
    assert is_partial("a.tmp") and is_partial(".a") and not is_partial("a.csv")


def test_unknown_entity_folder_goes_to_failed_with_reason(tmp_path: Path) -> None:
    drop(tmp_path, "intruso", "alerts.json")
    drop(tmp_path, "Not_A_Slug", "a.json")
    deliver = RecordingDeliver()
    summary = SpoolSource(tmp_path, entities={"minsa"}).run_once(deliver)
    assert deliver.calls == []
    assert summary.failed == ["Not_A_Slug/a.json", "intruso/alerts.json"]
    reason = (tmp_path / "intruso" / "failed" / "alerts.json.reason.txt").read_text()
    assert reason == "unknown entity 'intruso': no such entity id\n"


def test_failing_delivery_and_all_rejected_go_to_failed(tmp_path: Path) -> None:
    drop(tmp_path, "minsa", "broken.json")

    def exploding(report: RawReport) -> IngestResult:
        raise ValueError("database is locked")

    spool = SpoolSource(tmp_path, entities={"minsa"})
    assert spool.run_once(exploding).failed == ["minsa/broken.json"]
    reason = (tmp_path / "minsa" / "failed" / "broken.json.reason.txt").read_text()
    assert reason == "delivery failed: ValueError: database is locked\n"

    drop(tmp_path, "minsa", "garbage.bin")
    rejected = IngestResult(
        rejected=2, errors=[IngestError(source="garbage.bin", line=1, error="not JSON")]
    )
    spool.run_once(RecordingDeliver(rejected))
    text = (tmp_path / "minsa" / "failed" / "garbage.bin.reason.txt").read_text()
    assert text == "all 2 record(s) rejected: not JSON\n"


def test_same_name_dropped_twice_keeps_both(tmp_path: Path) -> None:
    spool = SpoolSource(tmp_path, entities={"minsa"})
    deliver = RecordingDeliver()
    drop(tmp_path, "minsa", "daily.csv", b"one")
    spool.run_once(deliver)
    drop(tmp_path, "minsa", "daily.csv", b"two")
    spool.run_once(deliver)
    assert names(tmp_path / "minsa" / "done") == ["daily.1.csv", "daily.csv"]
    assert [c[2] for c in deliver.calls] == [b"one", b"two"]


def test_crash_between_claim_and_move_is_redelivered_on_restart(tmp_path: Path) -> None:
    drop(tmp_path, "minsa", "a.json", b"A")
    drop(tmp_path, "minsa", "b.json", b"B")
    calls: list[str] = []

    def crashing(report: RawReport) -> IngestResult:
        calls.append(report.filename)
        if report.filename == "b.json":
            raise SimulatedCrash
        return IngestResult(accepted=1)

    with pytest.raises(SimulatedCrash):
        SpoolSource(tmp_path, entities={"minsa"}).run_once(crashing)
    assert names(tmp_path / "minsa" / ".processing") == ["b.json"]
    assert names(tmp_path / "minsa" / "done") == ["a.json"]

    restarted = SpoolSource(tmp_path, entities={"minsa"})
    deliver = RecordingDeliver(IngestResult(duplicates=1))  # the store saw it before
    summary = restarted.run_once(deliver)
    assert summary.recovered == ["minsa/b.json"]
    assert deliver.calls == [("minsa", "b.json", b"B")]
    assert names(tmp_path / "minsa" / "done") == ["a.json", "b.json"]
    assert calls == ["a.json", "b.json"]


def test_watch_delivers_files_dropped_while_running(tmp_path: Path) -> None:
    (tmp_path / "minsa").mkdir()
    spool = SpoolSource(tmp_path, entities=lambda entity: entity == "minsa")
    deliver = RecordingDeliver()
    stop = threading.Event()
    worker = threading.Thread(target=spool.watch, args=(deliver, stop, 0.05))
    worker.start()
    try:
        drop(tmp_path, "minsa", "late.json", b"L")
        deadline = time.monotonic() + 10
        while not deliver.calls and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join(timeout=5)
    assert not worker.is_alive()
    assert deliver.calls == [("minsa", "late.json", b"L")]
