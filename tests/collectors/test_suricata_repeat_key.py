"""Repeat keys of EVE events (what lets the bulk ingest skip re-parsing a known event).

Two events with the same key in the same hour must give alerts with the same fingerprint
and correlation keys; every field an alert is built from must change the key; fields that
change from one repeat to the next must not. Real EVE from ../shared/data; the mutated
events below are a real event with one field changed, and say so.
"""

from __future__ import annotations

import copy
import io
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from collectors.parsers.base import KeyedAlert, Repeat
from collectors.parsers.suricata import SuricataEveParser, repeat_key
from enrichment.correlation_model import alert_keys
from pukara.core.schema import Alert, RawReport

SAMPLES = (
    "suricata/Muntaha-Ghafoor-eve.json",
    "suricata/mkhairin-eve.json",
    "suricata/suricata-verify/output-eve-fileinfo/expected/eve.json",
)
RECEIVED = datetime(2026, 6, 1, tzinfo=UTC)


def _report(data: bytes) -> RawReport:
    return RawReport(stream=io.BytesIO(data), source="file", filename="eve.json",
                     entity_id="minsa", format="suricata", received_at=RECEIVED)


def _alert(event: dict[str, Any]) -> Alert | None:
    records = list(SuricataEveParser().parse(_report(orjson.dumps(event) + b"\n")))
    return records[0] if records and isinstance(records[0], Alert) else None


def _identity(alert: Alert) -> tuple[str, frozenset[str]]:
    return alert.fingerprint(3600), frozenset(alert_keys(alert))


def _events(shared_data: Path) -> list[dict[str, Any]]:
    found = []
    for name in SAMPLES:
        for line in (shared_data / name).read_bytes().splitlines():
            event = orjson.loads(line)
            if isinstance(event, dict):
                found.append(event)
    return found


def test_events_with_one_key_and_hour_give_one_fingerprint(shared_data: Path) -> None:
    groups: dict[tuple[bytes, int], set[tuple[str, frozenset[str]]]] = defaultdict(set)
    members: dict[tuple[bytes, int], int] = defaultdict(int)
    for event in _events(shared_data):
        alert, key = _alert(event), repeat_key(event)
        if alert is None or key is None:
            continue
        slot = (key, int(alert.observed_at.timestamp()) // 3600)
        groups[slot].add(_identity(alert))
        members[slot] += 1
    assert all(len(identities) == 1 for identities in groups.values())
    assert sum(n for n in members.values() if n > 1) > 1000  # the real files repeat a lot


def _nmap_alert(shared_data: Path) -> dict[str, Any]:
    """The real mkhairin alert with HTTP and files (an Nmap user agent on /sdk)."""
    for event in _events(shared_data):
        if event.get("event_type") == "alert" and "files" in event and "http" in event:
            return event
    raise AssertionError("the sample changed")


def _set(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


BUILT_FROM = [  # each changes what the alert is built from: observables, rule, class
    (("src_ip",), "192.168.113.111"),
    (("dest_ip",), "192.168.113.51"),
    (("event_type",), "anomaly"),
    (("alert", "signature_id"), 2024365),
    (("alert", "gid"), 3),
    (("alert", "signature"), "ET SCAN something else"),
    (("alert", "category"), "Misc activity"),
    (("http", "hostname"), "other.example"),
    (("http", "url"), "/sdk2"),
    (("http", "http_user_agent"), "curl/8"),
    (("http", "http_port"), 8080),
    (("dest_port",), 8080),  # the URL's port comes from the ports when http_port is absent
    (("files", 0, "filename"), "sdk.exe"),
    (("files", 0, "sha256"), "ab" * 32),
    (("files", 0, "md5"), "cd" * 16),
]


@pytest.mark.parametrize(("path", "value"), BUILT_FROM, ids=[str(p) for p, _ in BUILT_FROM])
def test_a_field_the_alert_is_built_from_changes_the_key(
        shared_data: Path, path: tuple[Any, ...], value: Any) -> None:
    event = _nmap_alert(shared_data)
    changed = _set(event, path, value)  # a mutation of the real event
    assert repeat_key(changed) != repeat_key(event)


REPEATS_CHANGE = [  # what differs between two sightings of the same thing
    (("timestamp",), "2026-01-14T22:41:02.000001+0800"),
    (("flow_id",), 1),
    (("src_port",), 50000),
    (("tx_id",), 7),
    (("flow", "pkts_toserver"), 99),
    (("http", "length"), 1),
    (("http", "status"), 200),
    (("files", 0, "size"), 1),
    (("in_iface",), "eth9"),
]


@pytest.mark.parametrize(("path", "value"), REPEATS_CHANGE,
                         ids=[str(p) for p, _ in REPEATS_CHANGE])
def test_what_changes_between_repeats_keeps_the_key_and_the_fingerprint(
        shared_data: Path, path: tuple[Any, ...], value: Any) -> None:
    event = _nmap_alert(shared_data)
    changed = _set(event, path, value)
    assert repeat_key(changed) == repeat_key(event)
    first, second = _alert(event), _alert(changed)
    assert first is not None and second is not None
    assert _identity(second) == _identity(first)


def test_keyed_parsing_skips_known_events_and_reports_bad_times(shared_data: Path) -> None:
    event = _nmap_alert(shared_data)
    late = _set(event, ("timestamp",), "not a time")  # a mutation of the real event
    data = b"\n".join(orjson.dumps(e) for e in (event, event, late)) + b"\n"
    known: set[bytes] = set()
    parser = SuricataEveParser()
    records = []
    for record in parser.parse_keyed(_report(data), lambda key, _at: key in known):
        records.append(record)
        if isinstance(record, KeyedAlert) and record.key is not None:
            known.add(record.key)
    first, again, bad = records
    assert isinstance(first, KeyedAlert) and first.key == repeat_key(event)
    assert isinstance(again, Repeat) and again.observed_at == first.alert.observed_at
    assert bad.line == 3 and "not a time" in bad.reason  # type: ignore[union-attr]
    assert list(SuricataEveParser().parse(_report(data)))[2] == bad


def test_an_event_of_odd_shape_has_no_key_and_its_parse_reports_it(shared_data: Path) -> None:
    event = _set(_nmap_alert(shared_data), ("files",), 5)  # a mutation: files is no list
    assert repeat_key(event) is None
    data = orjson.dumps(event) + b"\n"
    (keyed,) = SuricataEveParser().parse_keyed(_report(data), lambda _key, _at: True)
    (plain,) = SuricataEveParser().parse(_report(data))
    assert keyed == plain and plain.line == 1  # type: ignore[union-attr]
    assert "TypeError" in plain.reason  # type: ignore[union-attr]
