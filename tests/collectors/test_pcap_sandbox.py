"""PcapParser in its sandbox: same records as in-process, and CPU, memory and wall-clock
limits that end in an ``unparseable`` ParseFailure while the parent goes on. The large
captures here are CONSTRUCTED by repeating a real HTTP request packet.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from collectors.parsers.pcap import PcapParser
from pukara.core.schema import Alert, RawReport, Record
from tests.collectors.test_pcap import VERIFY, failures, parse_bytes, summary
from tests.collectors.test_pcap_hostile import BUG_130, record_offsets


def parse_sandboxed(path: Path, **metadata: Any) -> list[Record]:
    with path.open("rb") as stream:
        report = RawReport(
            stream=stream,
            source="sensor-test",
            filename=path.name,
            metadata={"path": str(path), **metadata},
        )
        return list(PcapParser().parse(report))


def test_sandbox_gives_the_same_records_as_in_process() -> None:
    path = VERIFY / "decode-teredo-01" / "input.pcap"
    inside = [r for r in parse_bytes(path.read_bytes(), path.name) if isinstance(r, Alert)]
    child = parse_sandboxed(path)
    assert [a.title for a in child] == [a.title for a in inside]
    assert [a.observables for a in child] == [a.observables for a in inside]  # type: ignore[union-attr]
    assert [a.attachments for a in child] == [a.attachments for a in inside]  # type: ignore[union-attr]
    assert [a.extra for a in child] == [a.extra for a in inside]  # type: ignore[union-attr]


def many_http_requests(tmp_path: Path, count: int) -> Path:
    """A constructed capture: bug-130's HTTP request packet repeated with new client ports."""
    data = BUG_130.read_bytes()
    offsets = record_offsets(data)
    records = [data[o : o + 16 + struct.unpack_from("<I", data, o + 8)[0]] for o in offsets]
    request = next(r for r in records if b"GET /publication" in r)
    body = bytearray()
    for n in range(count):
        record = bytearray(request)
        struct.pack_into("!H", record, 16 + 14 + 20, 1024 + n % 60000)
        body += record
    path = tmp_path / "many-requests.pcap"
    path.write_bytes(data[:24] + bytes(body))
    return path


def test_sandbox_cpu_limit_keeps_what_was_read(tmp_path: Path) -> None:
    path = many_http_requests(tmp_path, 60_000)
    records = parse_sandboxed(path, sandbox_cpu_seconds=1, max_http_sessions=100)
    (failure,) = failures(records)
    assert failure.reason == "unparseable: cpu limit (1 s)"
    assert 0 < summary(records)["packets"] < 60_000


def test_sandbox_memory_limit(tmp_path: Path) -> None:
    path = many_http_requests(tmp_path, 5_000)  # enough that parsing must allocate
    records = parse_sandboxed(path, sandbox_memory_mb=1)
    assert [f.reason for f in failures(records)] == ["unparseable: memory limit (1 MB)"]


def test_sandbox_wall_clock_limit(tmp_path: Path) -> None:
    path = many_http_requests(tmp_path, 60_000)
    records = parse_sandboxed(path, sandbox_wall_seconds=3, max_http_sessions=100)
    assert [f.reason for f in failures(records)] == ["unparseable: wall-clock limit (3 s)"]
    assert 0 < summary(records)["packets"] < 60_000
