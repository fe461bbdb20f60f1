"""Hypothesis: random and mutated bytes never make a parser raise, and every yielded item is
a record or a ParseFailure; the observable fast paths agree with the kernel's normalize()."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.parsers._observe import fast_domain, fast_hex, fast_ipv4, fast_url
from collectors.parsers.generic import GenericCsvParser, GenericJsonParser
from collectors.parsers.intelmq import IntelMQParser
from collectors.parsers.native import NativeAlertParser
from collectors.parsers.suricata import SuricataEveParser
from collectors.parsers.wazuh import WazuhAlertParser
from collectors.parsers.zeek import ZeekLogParser
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType, normalize
from pukara.core.schema import Alert, IncidentReport, Indicator, ParseFailure, RawReport

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PARSERS = [
    SuricataEveParser,
    IntelMQParser,
    WazuhAlertParser,
    ZeekLogParser,
    GenericCsvParser,
    GenericJsonParser,
    NativeAlertParser,
]
MAPPING = {"mapping": {"source.ip": "ip", "time.source": "ts", "classification.type": "type"}}
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _seeds() -> list[bytes]:
    """Real lines (a few per sample) and constructed ones for formats without samples."""
    seeds = []
    for name in (
        "suricata/mkhairin-eve.json",
        "zeek/btest/http-get/http.log",
        "zeek/btest/dns-flip/dns.log",
    ):
        seeds.append(b"".join((SHARED / name).read_bytes().splitlines(keepends=True)[:12]))
    seeds.append((SHARED / "intelmq-feeds/cert_eu_example.csv").read_bytes())
    seeds.append(  # constructed IntelMQ / Wazuh / native lines
        b'{"source.ip":"192.0.2.1","classification.type":"scanner","time.source":"2024-01-01T00:00:00Z"}\n'
        b'{"timestamp":"2024-01-01T00:00:00+0000","rule":{"level":5,"id":"5710","description":"x",'
        b'"groups":["sshd"]},"agent":{"id":"001","ip":"10.0.0.1"},"data":{"srcip":"198.51.100.7"}}\n'
        b'[{"source":"edr","title":"t","observables":[{"type":"ipv4","value":"10.0.0.1"}]}]\n'
    )
    return seeds


SEEDS = _seeds()


def _check(parser_class: type, data: bytes) -> None:
    parser = parser_class()
    assert isinstance(parser.sniff(data[:8192]), bool)
    report = RawReport(
        stream=io.BytesIO(data), source="fuzz", filename="fuzz.log", metadata=dict(MAPPING)
    )
    for item in parser.parse(report):
        assert isinstance(item, Alert | IncidentReport | Indicator | ParseFailure)
        if isinstance(item, Alert):  # records built without re-validation must still be valid
            assert Alert.model_validate(item.model_dump()) == item


@pytest.mark.parametrize("parser_class", PARSERS, ids=lambda c: c.name)
@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_raise(parser_class: type, data: bytes) -> None:
    _check(parser_class, data)


def _mutate(seed: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    data = bytearray(seed)
    for position, byte, op in edits:
        at = position % (len(data) + 1)
        if op == "flip" and at < len(data):
            data[at] = byte
        elif op == "insert":
            data[at:at] = bytes([byte])
        elif op == "delete":
            del data[at : at + 1 + byte % 8]
    return bytes(data)


EDITS = st.lists(
    st.tuples(
        st.integers(0, 5000), st.integers(0, 255), st.sampled_from(["flip", "insert", "delete"])
    ),
    max_size=12,
)


@pytest.mark.parametrize("parser_class", PARSERS, ids=lambda c: c.name)
@FUZZ
@given(seed=st.sampled_from(SEEDS), edits=EDITS)
def test_mutated_real_lines_never_raise(parser_class: type, seed: bytes, edits: Any) -> None:
    _check(parser_class, _mutate(seed, edits))


NAME_CHARS = "abcXYZ019-_.[]()@:/%#?é \t\x00"


def _agrees(kind: ObservableType, fast: Any, value: str) -> None:
    answer = fast(value)
    if answer is None:
        return
    try:
        expected = normalize(kind, value)
    except InvalidInput:
        pytest.fail(f"fast path accepted {value!r} as {kind} but normalize() refuses it")
    assert answer == expected, value


@settings(max_examples=400, deadline=None)
@given(
    value=st.text(NAME_CHARS, max_size=40)
    | st.from_regex(r"[a-zA-Z0-9-]{1,8}(\.[a-zA-Z0-9_-]{1,8}){0,3}\.?", fullmatch=True)
)
def test_fast_domain_agrees_with_normalize(value: str) -> None:
    _agrees(ObservableType.DOMAIN, fast_domain, value)
    _agrees(ObservableType.HOSTNAME, fast_domain, value)


@settings(max_examples=400, deadline=None)
@given(
    value=st.from_regex(r"[0-9]{1,4}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,4}", fullmatch=True)
    | st.text("0123456789.x ", max_size=16)
)
def test_fast_ipv4_agrees_with_normalize(value: str) -> None:
    _agrees(ObservableType.IPV4, fast_ipv4, value)


URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "HTTPS", "ftp", "hxxp", "Http"]),
    st.sampled_from(
        ["example.com", "Example.COM", "10.0.0.1", "a_b.example", "xn--nxasmq6b.com", "[::1]", "h"]
    ),
    st.sampled_from(["", ":80", ":443", ":8080", ":0", ":99999", ":", ":08"]),
    st.text("/abc?=&%#[]() é\t.", max_size=20).map(lambda path: "/" + path) | st.just(""),
)


@settings(max_examples=400, deadline=None)
@given(value=URLS | st.text("htp:/.aé?#[]x", max_size=30))
def test_fast_url_agrees_with_normalize(value: str) -> None:
    _agrees(ObservableType.URL, fast_url, value)


@settings(max_examples=400, deadline=None)
@given(value=st.text("0123456789abcdefABCDEFg \t", min_size=30, max_size=66)
       | st.from_regex(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", fullmatch=True))
def test_fast_hex_agrees_with_normalize(value: str) -> None:
    for kind in (ObservableType.MD5, ObservableType.SHA1, ObservableType.SHA256):
        _agrees(kind, lambda v, kind=kind: fast_hex(kind, v), value)
    assert fast_hex(ObservableType.SHA256, "A" * 64) == "a" * 64
    assert fast_hex(ObservableType.MD5, "a" * 64) is None
