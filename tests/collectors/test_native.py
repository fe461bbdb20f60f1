"""Pukara's own alert JSON (array or NDJSON). Records here are constructed."""

from __future__ import annotations

import io

import orjson

from collectors.parsers.native import MAX_ARRAY_BYTES, NativeAlertParser
from pukara.core.schema import Alert, ParseFailure, RawReport

GOOD = {
    "source": "edr",
    "title": "Mimikatz seen on host",
    "severity": "high",
    "classification": {"taxonomy": "intrusions", "type": "system-compromise"},
    "observables": [{"type": "ipv4", "value": "10.0.0.1", "role": "src"}],
    "entity_id": "someone-else",
}


def _parse(data: bytes, entity: str | None = "muni-lima") -> list:
    report = RawReport(stream=io.BytesIO(data), source="api", filename="", entity_id=entity)
    return list(NativeAlertParser().parse(report))


def test_array_with_invalid_elements() -> None:
    items = [
        GOOD,
        {**GOOD, "severity": "urgent"},
        5,
        {"title": "no source"},
        {**GOOD, "tlp": "red"},
    ]
    records = _parse(b"  \n" + orjson.dumps(items))
    assert [type(r).__name__ for r in records] == [
        "Alert",
        "ParseFailure",
        "ParseFailure",
        "ParseFailure",
        "Alert",
    ]
    first = records[0]
    assert first.title == "Mimikatz seen on host" and first.severity == "high"
    assert first.entity_id == "muni-lima"  # the authenticated sender wins over the body
    assert [o.key for o in first.observables] == ["ipv4:10.0.0.1"]
    assert str(first.classification) == "intrusions/system-compromise"
    assert orjson.loads(first.raw) == GOOD
    assert [(r.record, r.line) for r in records if isinstance(r, ParseFailure)] == [
        (1, None),
        (2, None),
        (3, None),
    ]
    assert records[1].reason.startswith("severity: Input should be")
    assert records[2].reason == "element must be an object, not int"
    assert records[3].reason == "source: Field required"
    assert records[4].tlp == "red"


def test_ndjson_with_bad_lines() -> None:
    lines = [
        orjson.dumps(GOOD),
        b'{"source": "edr", "title": "x", "observables": [{"type": "ipv4", "value": "300.1.1.1"}]}',
        b"[1]",
        b'{"source": "edr", "title": "y", "unknown_field": 1}',
        orjson.dumps({**GOOD, "title": "second"}),
    ]
    records = _parse(b"\n".join(lines) + b"\n", entity=None)
    assert [type(r).__name__ for r in records] == [
        "Alert",
        "ParseFailure",
        "ParseFailure",
        "ParseFailure",
        "Alert",
    ]
    assert [r.line for r in records if isinstance(r, ParseFailure)] == [2, 3, 4]
    assert records[1].reason.startswith("observables.0")
    assert "unknown_field: Extra inputs are not permitted" in records[3].reason
    assert records[0].entity_id == "someone-else"  # no authenticated entity: the record's stays
    assert records[4].title == "second"


def test_array_over_cap_is_one_failure() -> None:
    big = (
        b"["
        + b",".join([orjson.dumps(GOOD)] * (MAX_ARRAY_BYTES // len(orjson.dumps(GOOD)) + 10))
        + b"]"
    )
    (record,) = _parse(big)
    assert isinstance(record, ParseFailure)
    assert "send NDJSON" in record.reason


def test_not_json_array() -> None:
    (record,) = _parse(b'[{"source": "x", "title": ')
    assert isinstance(record, ParseFailure) and "not valid JSON" in record.reason


def test_sniff() -> None:
    parser = NativeAlertParser()
    assert parser.sniff(orjson.dumps([GOOD]))
    assert parser.sniff(orjson.dumps(GOOD))
    assert not parser.sniff(b'{"event_type": "alert"}')
    assert isinstance(_parse(orjson.dumps(GOOD))[0], Alert)
