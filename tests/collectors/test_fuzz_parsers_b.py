"""Property tests: random bytes and mutated real samples never make the Shadowserver, STIX,
MISP or e-mail parsers raise; everything they yield is a record or a ParseFailure."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.parsers.eml import EmailParser
from collectors.parsers.misp import MispEventParser
from collectors.parsers.shadowserver import ShadowserverParser
from collectors.parsers.stix import StixBundleParser
from pukara.core.schema import Alert, IncidentReport, Indicator, ParseFailure, RawReport

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PARSERS = {
    "shadowserver": (ShadowserverParser, "shadowserver/scan_ftp.csv"),
    "shadowserver-event": (ShadowserverParser, "shadowserver/event4_honeypot_brute_force.csv"),
    "stix": (StixBundleParser, "stix/sighting-of-an-indicator.json"),
    "misp": (MispEventParser, "misp/misp_event.json"),
    "eml": (EmailParser, "email/mail_3.eml"),
}
RECORD_TYPES = (Alert, IncidentReport, Indicator, ParseFailure)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def run(parser_class: type, data: bytes, filename: str) -> None:
    report = RawReport(stream=io.BytesIO(data), source="fuzz", filename=filename)
    parser = parser_class()
    parser.sniff(data[:8192])
    for item in parser.parse(report):
        assert isinstance(item, RECORD_TYPES), type(item)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, byte) edits: 0 flip, 1 insert, 2 delete, 3 truncate."""
    buffer = bytearray(data)
    for kind, position, value in edits:
        if not buffer:
            break
        at = position % len(buffer)
        if kind == 0:
            buffer[at] = value
        elif kind == 1:
            buffer.insert(at, value)
        elif kind == 2:
            del buffer[at]
        else:
            del buffer[at:]
    return bytes(buffer)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**20), st.integers(0, 255)), max_size=12
)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_raise(name: str, data: bytes) -> None:
    parser_class, sample = PARSERS[name]
    run(parser_class, data, Path(sample).name)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(edits=EDITS)
def test_mutated_real_samples_never_raise(name: str, edits: list[tuple[int, int, int]]) -> None:
    parser_class, sample = PARSERS[name]
    original = (SHARED / sample).read_bytes()
    run(parser_class, mutate(original, edits), Path(sample).name)


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["timestamp", "ip", "port", "asn", "hostname", "x"]), max_size=8
    ),
    rows=st.lists(st.lists(st.text(max_size=20), max_size=9), max_size=10),
)
def test_structured_shadowserver_csv_never_raises(header: list[str], rows: list[list[str]]) -> None:
    lines = [",".join(header)] + [",".join(f'"{v.replace(chr(34), "")}"' for v in r) for r in rows]
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    run(ShadowserverParser, data, "2019-01-01-scan_ftp-fuzz.csv")
