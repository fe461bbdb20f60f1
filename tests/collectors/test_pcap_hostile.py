"""PcapParser on hostile captures CONSTRUCTED from real ones (SECURITY D9): truncation,
corrupt record headers, caplen > len, huge snaplen, garbage, unknown pcapng blocks, and
Hypothesis mutations. Each must give a located ParseFailure and keep what came before.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapReader

from pukara.core.schema import Alert, ParseFailure
from tests.collectors.test_pcap import DATA, VERIFY, failures, parse_bytes, summary, tagged

BUG_130 = VERIFY / "bug-130" / "input.pcap"


def record_offsets(data: bytes) -> list[int]:
    """Byte offset of each record header in a little-endian pcap."""
    offsets, pos = [], 24
    while pos + 16 <= len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return offsets


def test_truncated_record_keeps_earlier_packets() -> None:
    data = BUG_130.read_bytes()
    offsets = record_offsets(data)
    assert len(offsets) == 14
    cut = data[: offsets[9] + 16 + 10]  # record 10: full header, 10 bytes of data
    records = parse_bytes(cut)
    (failure,) = failures(records)
    assert failure.record == 10
    assert failure.reason.startswith("truncated record: 10 of ")
    assert summary(records)["packets"] == 9
    (http,) = tagged(records, "http")
    assert http.extra["http"]["requests"][0]["host"] == "www.abcdefghij.com"


def test_truncated_record_header() -> None:
    data = BUG_130.read_bytes()
    records = parse_bytes(data[: record_offsets(data)[5] + 7])
    (failure,) = failures(records)
    assert (failure.record, failure.reason) == (6, "truncated record header (7 of 16 bytes)")
    assert summary(records)["packets"] == 5


def test_corrupt_caplen_stops_with_the_record_number() -> None:
    data = bytearray(BUG_130.read_bytes())
    struct.pack_into("<I", data, record_offsets(bytes(data))[2] + 8, 0xFFFFFFF0)
    records = parse_bytes(bytes(data))
    (failure,) = failures(records)
    assert failure.record == 3
    assert failure.reason == "corrupt record header: caplen 4294967280 exceeds 262144"
    assert summary(records)["packets"] == 2


def test_caplen_greater_than_len_skips_only_that_record() -> None:
    data = bytearray(BUG_130.read_bytes())
    struct.pack_into("<I", data, record_offsets(bytes(data))[4] + 12, 20)
    records = parse_bytes(bytes(data))
    (failure,) = failures(records)
    assert failure.record == 5
    assert failure.reason.endswith("> len 20: record skipped")
    assert summary(records)["packets"] == 13


def test_huge_snaplen_is_harmless() -> None:
    data = bytearray(BUG_130.read_bytes())
    struct.pack_into("<I", data, 16, 0xFFFFFFFF)
    records = parse_bytes(bytes(data))
    assert failures(records) == []
    assert summary(records)["packets"] == 14


def test_garbage_after_the_file_header() -> None:
    data = BUG_130.read_bytes()[:24] + bytes(range(256)) * 4
    records = parse_bytes(data)
    (failure,) = failures(records)
    assert failure.record == 1
    assert failure.reason.startswith("corrupt record header: caplen ")
    assert summary(records)["packets"] == 0


def test_not_a_capture() -> None:
    records = parse_bytes(b"GET / HTTP/1.1\r\n\r\n")
    (failure,) = failures(records)
    assert (failure.record, failure.reason) == (0, "not a pcap or pcapng file (magic 47455420)")
    assert summary(records)["packets"] == 0


PCAPNG = DATA / "zeek/btest/http-sqli-dvwa/cooper-grill-dvwa.pcapng"


def pcapng_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, type) of each block of a little-endian pcapng."""
    blocks, pos = [], 0
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        blocks.append((pos, kind))
        pos += length
    return blocks


def test_pcapng_unknown_block_is_reported_and_skipped() -> None:
    data = PCAPNG.read_bytes()
    blocks = pcapng_blocks(data)
    assert [kind for _, kind in blocks[:3]] == [0x0A0D0D0A, 1, 6]
    unknown = struct.pack("<II", 0x0000ABCD, 20) + b"junk" * 2 + struct.pack("<I", 20)
    offset = blocks[5][0]  # after the IDB and three packets: reported with record 4
    records = parse_bytes(data[:offset] + unknown + data[offset:])
    (failure,) = failures(records)
    assert failure.reason == "unknown pcapng block type 0x0000abcd skipped"
    assert failure.record == 4
    assert summary(records)["packets"] == sum(1 for _ in RawPcapReader(str(PCAPNG)))
    assert len(tagged(records, "http")) == 3


def test_pcapng_truncated_block() -> None:
    data = PCAPNG.read_bytes()
    blocks = pcapng_blocks(data)
    assert {kind for _, kind in blocks[2:11]} == {6}  # block 10 is the ninth packet
    records = parse_bytes(data[: blocks[10][0] + 30])
    (failure,) = failures(records)
    assert failure.reason == "truncated block: 22 of 80 body bytes"
    assert failure.record == 9
    assert summary(records)["packets"] == 8


SMALL = DATA / "pcap" / "http-evader__http-evader-011__input.pcap"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(0, 920), st.integers(0, 255)), max_size=12),
    cut=st.integers(0, 921),
)
def test_mutated_capture_never_raises(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(SMALL.read_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    records = parse_bytes(bytes(data[: max(cut, 4)]))
    assert all(isinstance(r, Alert | ParseFailure) for r in records)
    assert "summary" in records[-1].tags  # type: ignore[union-attr]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
    cut=st.integers(0, 12_000),
)
def test_mutated_pcapng_never_raises(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(PCAPNG.read_bytes()[:12_000])
    for position, value in flips:
        data[position % len(data)] = value
    records = parse_bytes(bytes(data[: max(cut, 4)]))
    assert all(isinstance(r, Alert | ParseFailure) for r in records)
    assert "summary" in records[-1].tags  # type: ignore[union-attr]


def test_nanosecond_pcap_reads_the_same_packets_constructed() -> None:
    """bug-130 rewritten with the nanosecond magic and fractions × 1000."""
    data = bytearray(BUG_130.read_bytes())
    data[:4] = b"\x4d\x3c\xb2\xa1"
    for offset in record_offsets(bytes(data)):
        micros = struct.unpack_from("<I", data, offset + 4)[0]
        struct.pack_into("<I", data, offset + 4, micros * 1000)
    plain, nano = parse_bytes(BUG_130.read_bytes()), parse_bytes(bytes(data))
    assert failures(nano) == []
    assert summary(nano)["packets"] == 14
    assert summary(nano)["first"] == pytest.approx(summary(plain)["first"], abs=1e-6)
    assert [a.title for a in tagged(nano, "http")] == [a.title for a in tagged(plain, "http")]


def test_pcapng_huge_section_header_is_refused() -> None:
    data = bytearray(PCAPNG.read_bytes())
    struct.pack_into("<I", data, 4, 0xFFFFFFF0)
    records = parse_bytes(bytes(data))
    (failure,) = failures(records)
    assert failure.record == 0
    assert failure.reason == (
        "unreadable pcapng file header: corrupt section header: block length 4294967280"
    )
    assert summary(records)["packets"] == 0


def test_failures_are_listed_up_to_a_cap_then_counted() -> None:
    """500 records whose caplen exceeds len (constructed from bug-130's first packet)."""
    data = BUG_130.read_bytes()
    first = bytearray(data[24 : record_offsets(data)[1]])
    struct.pack_into("<I", first, 12, 1)  # len 1 < caplen
    records = parse_bytes(data[:24] + bytes(first) * 500)
    listed = failures(records)
    assert len(listed) == 101
    assert [f.record for f in listed[:100]] == list(range(1, 101))
    assert listed[-1].record == 500
    assert listed[-1].reason == (
        "400 more record failures not listed; the last: caplen 74 > len 1: record skipped"
    )
    assert summary(records)["packets"] == 0
