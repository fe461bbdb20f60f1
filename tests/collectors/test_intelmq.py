"""IntelMQ event parser.

There is no IntelMQ *output* sample in shared/data (intelmq-feeds holds parser inputs), so
the events below are CONSTRUCTED, following IntelMQ's harmonisation (docs/dev/data-format
and harmonization.conf): flat dotted keys, base64 ``raw``, ``extra.*``.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

import orjson

from collectors.parsers.intelmq import IntelMQParser
from pukara.core.schema import Alert, ParseFailure, RawReport

EVENT = {
    "feed.name": "Spamhaus CERT",
    "feed.provider": "Spamhaus",
    "classification.taxonomy": "malicious-code",
    "classification.type": "infected-system",
    "classification.identifier": "conficker",
    "source.ip": "192.0.2.10",
    "source.port": 1234,
    "source.asn": 64496,
    "source.geolocation.cc": "PE",
    "destination.fqdn": "C2.Example.COM",
    "destination.port": 80,
    "protocol.transport": "tcp",
    "time.source": "2024-05-01T10:00:00+00:00",
    "time.observation": "2024-05-01T11:00:00+00:00",
    "malware.hash.sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "raw": base64.b64encode(b"192.0.2.10,conficker,1234").decode(),
    "tlp": "WHITE",
    "extra.count": 3,
}


def _parse(*lines: bytes, entity: str | None = None) -> list:
    data = b"\n".join(lines) + b"\n"
    report = RawReport(
        stream=io.BytesIO(data), source="test", filename="events.jsonl", entity_id=entity
    )
    return list(IntelMQParser().parse(report))


def test_full_event_maps_to_alert() -> None:
    (alert,) = _parse(orjson.dumps(EVENT), entity="muni-lima")
    assert isinstance(alert, Alert)
    assert alert.source == "Spamhaus CERT"
    assert str(alert.classification) == "malicious-code/infected-system"
    assert alert.signature == "conficker" and alert.title == "conficker"
    assert alert.tlp == "clear"  # IntelMQ WHITE
    assert alert.observed_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert [(o.key, o.role) for o in alert.observables] == [
        ("ipv4:192.0.2.10", "src"),
        ("asn:64496", "src"),
        ("domain:c2.example.com", "dst"),
        ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "file"),
    ]
    assert alert.flow is not None
    assert (alert.flow.src_port, alert.flow.dst_port, alert.flow.proto) == (1234, 80, "tcp")
    assert alert.extra == {
        "feed.provider": "Spamhaus",
        "source.geolocation.cc": "PE",
        "time.observation": "2024-05-01T11:00:00+00:00",
        "extra.count": 3,
        "raw.decoded": "192.0.2.10,conficker,1234",
    }
    assert alert.raw == orjson.dumps(EVENT).decode()
    assert alert.entity_id == "muni-lima"


def test_nested_objects_and_legacy_type() -> None:
    nested = {
        "source": {"ip": "2001:db8::1", "url": "hxxp://evil[.]example/x"},
        "classification": {"taxonomy": "malicious-code", "type": "ransomware"},
        "feed": {"name": "nested-feed"},
    }
    (alert,) = _parse(orjson.dumps(nested))
    assert [o.key for o in alert.observables] == ["ipv6:2001:db8::1", "url:http://evil.example/x"]
    assert alert.classification.rsit_type == "infected-system"  # legacy eCSIRT type mapped
    received = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    report = RawReport(stream=io.BytesIO(orjson.dumps(nested)), source="t", received_at=received)
    (undated,) = IntelMQParser().parse(report)
    assert undated.observed_at == received == undated.received_at  # no time.source


def test_unknown_classification_kept_and_invalid_values_kept() -> None:
    event = {
        "classification.taxonomy": "nonsense",
        "classification.type": "foo",
        "source.ip": "999.1.1.1",
    }
    (alert,) = _parse(orjson.dumps(event))
    assert str(alert.classification) == "other/undetermined"
    assert "unknown RSIT class 'nonsense'" in alert.extra["classification.invalid"]
    assert alert.extra["invalid.source.ip"] == "999.1.1.1"
    assert alert.observables == []


def test_bad_lines_are_located() -> None:
    good = orjson.dumps(EVENT)
    records = _parse(
        good,
        b'{"source.ip": "192.0.2.1", "time.source": "last tuesday"}',
        b'"just a string"',
        b'{"source.ip": "192.0.2.1", "tlp"',
        b'{"feed.name": "\xff"}',
        good,
    )
    kinds = [type(r).__name__ for r in records]
    assert kinds == [
        "Alert",
        "ParseFailure",
        "ParseFailure",
        "ParseFailure",
        "ParseFailure",
        "Alert",
    ]
    assert [r.line for r in records if isinstance(r, ParseFailure)] == [2, 3, 4, 5]
    assert "ISO 8601" in records[1].reason


def test_sniff() -> None:
    parser = IntelMQParser()
    assert parser.sniff(orjson.dumps(EVENT))
    assert not parser.sniff(b'{"event_type":"alert"}')
    assert not parser.sniff(b"source.ip,time\n1.2.3.4,now\n")
