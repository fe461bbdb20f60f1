"""STIX parser on the OASIS examples in /work/shared/data/stix, plus constructed bundles
(labelled) for observed-data, OR patterns and broken objects."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from collectors.parsers.stix import NOT_SIMPLE, StixBundleParser, simple_comparisons
from pukara.core.observables import ObservableType
from pukara.core.schema import Alert, Indicator, ParseFailure, RawReport, Record
from pukara.core.taxonomy import TLP


def parse_bytes(data: bytes, filename: str = "bundle.json") -> list[Record]:
    report = RawReport(stream=io.BytesIO(data), source="stix-feed", filename=filename)
    return list(StixBundleParser().parse(report))


def parse_sample(shared_data: Path, name: str) -> list[Record]:
    return parse_bytes((shared_data / "stix" / name).read_bytes(), name)


def indicators(records: list[Record]) -> list[tuple[str, str]]:
    return [(r.type.value, r.value) for r in records if isinstance(r, Indicator)]


def failures(records: list[Record]) -> list[tuple[int | None, str]]:
    return [(r.record, r.reason) for r in records if isinstance(r, ParseFailure)]


def test_every_sample_parses_and_is_sniffed(shared_data: Path) -> None:
    counts = {}
    for path in sorted((shared_data / "stix").glob("*.json")):
        assert StixBundleParser().sniff(path.read_bytes()[:8192]), path.name
        counts[path.name] = len(parse_bytes(path.read_bytes(), path.name))
    assert counts == {
        "apt1.json": 12,
        "indicator-for-c2-ip-address.json": 1,
        "indicator-for-malicious-url.json": 1,
        "indicator-to-campaign-relationship.json": 1,
        "interop-objectmarking-test.json": 1,
        "malicious-email-indicator-with-attachment.json": 2,
        "sighting-of-an-indicator.json": 2,
        "threat-actor-leveraging-attack-patterns-and-malware.json": 1,
        "using-marking-definitions.json": 1,
    }


def test_apt1_indicators_and_its_complex_x509_patterns(shared_data: Path) -> None:
    records = parse_sample(shared_data, "apt1.json")
    found = indicators(records)
    assert len(found) == 10
    assert found[0] == ("cidr", "223.166.0.0/15")
    assert ("domain", "hugesoft.org") in found
    assert ("md5", "001dd76872d80801692ff942308c64e6") in found
    assert failures(records) == [(21, NOT_SIMPLE), (22, NOT_SIMPLE)]
    first = next(r for r in records if isinstance(r, Indicator))
    assert first.event_info == "HTRAN Hop Point Accessor"
    assert first.event_uuid is not None and first.event_uuid.startswith("indicator--")


def test_sighting_becomes_an_alert_with_the_sighted_url(shared_data: Path) -> None:
    records = parse_sample(shared_data, "sighting-of-an-indicator.json")
    alert = next(r for r in records if isinstance(r, Alert))
    assert alert.title == "STIX sighting of Malicious URL"
    assert [o.key for o in alert.observables] == ["url:http://paypa1.banking.com/"]
    assert alert.source_ref == "sighting--8356e820-8080-4692-aa91-ecbe94006833"
    assert alert.extra["count"] == 1
    assert alert.observed_at.isoformat().startswith("2017-02-27T21:37:11.214")
    assert indicators(records) == [("url", "http://paypa1.banking.com/")]


def test_tlp_marking_definition_gives_amber(shared_data: Path) -> None:
    records = parse_sample(shared_data, "using-marking-definitions.json")
    assert len(records) == 1 and isinstance(records[0], Indicator)
    assert records[0].tlp is TLP.AMBER
    assert (records[0].type, records[0].value) == (ObservableType.IPV4, "10.0.0.0")


def test_single_object_and_bundle_without_importable_objects(shared_data: Path) -> None:
    single = parse_sample(shared_data, "interop-objectmarking-test.json")
    assert failures(single) == [
        (
            None,
            "a single 'campaign' object, not a bundle: no sighting, observed-data or "
            "indicator (types: ['campaign'])",
        )
    ]
    actors = parse_sample(shared_data, "threat-actor-leveraging-attack-patterns-and-malware.json")
    assert failures(actors)[0][1].startswith("bundle: no sighting")


def test_email_patterns_are_not_simple(shared_data: Path) -> None:
    records = parse_sample(shared_data, "malicious-email-indicator-with-attachment.json")
    assert failures(records) == [(3, NOT_SIMPLE), (4, NOT_SIMPLE)]


def test_simple_comparisons() -> None:
    digest = "AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F"
    assert simple_comparisons(f"[file:hashes.'SHA-256' = '{digest}']") == [
        (
            ObservableType.SHA256,
            "AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F",
        )
    ]
    assert simple_comparisons(
        "[ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'evil.example'] "
        "OR [url:value = 'http://evil.example/x']"
    ) == [
        (ObservableType.IPV4, "198.51.100.1"),
        (ObservableType.DOMAIN, "evil.example"),
        (ObservableType.URL, "http://evil.example/x"),
    ]
    assert simple_comparisons("[ipv4-addr:value != '1.2.3.4']") == NOT_SIMPLE
    assert simple_comparisons("[file:hashes.md5 = 'aa'] WITHIN 300 SECONDS") == NOT_SIMPLE
    assert str(simple_comparisons("[ipv4-addr:value = ")).startswith("invalid STIX pattern")


def constructed_bundle(*objects: dict[str, Any]) -> bytes:
    """A CONSTRUCTED bundle for the cases the OASIS examples do not cover."""
    return json.dumps(
        {
            "type": "bundle",
            "id": "bundle--0b1f7d4e-1c5c-4d4c-8e1f-2f7b8a9c0d1e",
            "objects": list(objects),
        }
    ).encode()


COMMON = {
    "spec_version": "2.1",
    "created": "2026-11-01T10:00:00Z",
    "modified": "2026-11-01T10:00:00Z",
}


def test_constructed_observed_data_with_network_traffic() -> None:
    data = constructed_bundle(
        {
            "type": "ipv4-addr",
            "spec_version": "2.1",
            "id": "ipv4-addr--a1b2c3d4-0000-4000-8000-000000000001",
            "value": "198.51.100.7",
        },
        {
            "type": "ipv4-addr",
            "spec_version": "2.1",
            "id": "ipv4-addr--a1b2c3d4-0000-4000-8000-000000000002",
            "value": "203.0.113.9",
        },
        {
            "type": "network-traffic",
            "spec_version": "2.1",
            "id": "network-traffic--a1b2c3d4-0000-4000-8000-000000000003",
            "src_ref": "ipv4-addr--a1b2c3d4-0000-4000-8000-000000000001",
            "dst_ref": "ipv4-addr--a1b2c3d4-0000-4000-8000-000000000002",
            "src_port": 51515,
            "dst_port": 443,
            "protocols": ["ipv4", "tcp"],
        },
        {
            "type": "file",
            "spec_version": "2.1",
            "id": "file--a1b2c3d4-0000-4000-8000-000000000004",
            "name": "dropper.exe",
            "hashes": {
                "SHA-256": "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"
            },
        },
        {
            "type": "observed-data",
            "id": "observed-data--a1b2c3d4-0000-4000-8000-000000000005",
            **COMMON,
            "first_observed": "2026-11-01T09:00:00Z",
            "last_observed": "2026-11-01T09:05:00Z",
            "number_observed": 3,
            "object_refs": [
                "network-traffic--a1b2c3d4-0000-4000-8000-000000000003",
                "file--a1b2c3d4-0000-4000-8000-000000000004",
            ],
            "object_marking_refs": ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"],
        },
    )
    records = parse_bytes(data)
    assert len(records) == 1 and isinstance(records[0], Alert)
    alert = records[0]
    assert [(o.key, o.role) for o in alert.observables] == [
        ("ipv4:198.51.100.7", "src"),
        ("ipv4:203.0.113.9", "dst"),
        ("sha256:aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f", "observed"),
        ("filename:dropper.exe", "observed"),
    ]
    assert alert.flow is not None
    assert (alert.flow.src_port, alert.flow.dst_port, alert.flow.proto) == (51515, 443, "tcp")
    assert alert.tlp is TLP.RED
    assert alert.extra["number_observed"] == 3


def test_constructed_broken_objects_are_located_failures() -> None:
    data = constructed_bundle(
        {
            "type": "indicator",
            "id": "indicator--a1b2c3d4-0000-4000-8000-000000000010",
            **COMMON,
            "pattern": "[ipv4-addr:value = '999.1.1.1']",
            "pattern_type": "stix",
            "valid_from": "2026-11-01T00:00:00Z",
        },
        {"type": "indicator", "id": "not-an-id"},
        {
            "type": "indicator",
            "id": "indicator--a1b2c3d4-0000-4000-8000-000000000011",
            **COMMON,
            "name": "ok",
            "pattern": "[domain-name:value = 'evil.example' OR ipv6-addr:value = '2001:db8::1']",
            "pattern_type": "stix",
            "valid_from": "2026-11-01T00:00:00Z",
        },
    )
    records = parse_bytes(data)
    assert [(n, reason.split(":")[0]) for n, reason in failures(records)] == [
        (2, "not a valid STIX 2.1 object"),
        (1, "indicator value rejected"),
    ]
    assert indicators(records) == [("domain", "evil.example"), ("ipv6", "2001:db8::1")]


def test_not_json_and_not_an_object() -> None:
    assert failures(parse_bytes(b"{not json"))[0][1].startswith("not valid JSON")
    assert failures(parse_bytes(b"[1, 2]")) == [(None, "a STIX document must be a JSON object")]
    assert not StixBundleParser().sniff(b'{"Event": {"info": "misp"}}')
    empty = b'{"type": "bundle", "id": "bundle--0b1f7d4e-1c5c-4d4c-8e1f-2f7b8a9c0d1e"}'
    assert failures(parse_bytes(empty)) == [(None, "bundle has no objects")]
