"""MISP event parser on the real exports in /work/shared/data/misp (PyMISP test events, ESET
malware-ioc events, the sshdoor feed) and IntelMQ's MISP sample; constructed events are
labelled."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from collectors.parsers.misp import MispEventParser, attribute_values
from pukara.core.observables import ObservableType
from pukara.core.schema import Alert, Indicator, ParseFailure, RawReport, Record
from pukara.core.taxonomy import TLP, Severity


def parse_bytes(data: bytes, name: str = "event.json", **metadata: Any) -> list[Record]:
    report = RawReport(
        stream=io.BytesIO(data), source="misp-export", filename=name, metadata=metadata
    )
    return list(MispEventParser().parse(report))


def parse_file(path: Path, **metadata: Any) -> list[Record]:
    return parse_bytes(path.read_bytes(), path.name, **metadata)


def only_alert(records: list[Record]) -> Alert:
    found = [r for r in records if isinstance(r, Alert)]
    assert len(found) == 1
    return found[0]


def test_glupteba_event(shared_data: Path) -> None:
    path = shared_data / "misp" / "eset" / "glupteba__glupteba.misp-event.json"
    records = parse_file(path)
    assert len(records) == 1
    alert = only_alert(records)
    assert alert.title == "Glupteba.AY research related IoCs"
    assert len(alert.observables) == 325
    assert Counter(o.type.value for o in alert.observables) == {
        "domain": 272,
        "ipv4": 44,
        "sha1": 6,
        "filename": 3,
    }
    keys = [o.key for o in alert.observables]
    assert "domain:server-1.ostdownload.xyz" in keys
    assert "ipv4:5.101.6.132" in keys
    assert "sha1:1645ad8468a2fb54763c0ebeb766dfd8c643f3db" in keys
    assert alert.severity is Severity.HIGH  # threat_level_id 1
    assert alert.tlp is TLP.AMBER  # no tlp: tag: the schema's default
    assert str(alert.classification) == "other/undetermined"
    assert alert.tags == ["Glupteba"]
    assert alert.source_ref == "5aa2e21b-79d8-4fd7-b15d-34670a016219"
    assert alert.extra["org"] == "ESET"
    assert alert.extra["to_ids_not_mapped"] == {"regkey": 1}


def test_glupteba_as_indicators(shared_data: Path) -> None:
    path = shared_data / "misp" / "eset" / "glupteba__glupteba.misp-event.json"
    records = parse_file(path, as_indicators=True)
    found = [r for r in records if isinstance(r, Indicator)]
    # 320 mapped to_ids attributes; domain|ip and filename|sha1 give two values each
    assert len(found) == 330
    first = found[0]
    assert (first.type, first.value) == (ObservableType.IPV4, "5.101.6.132")
    assert first.event_uuid == "5aa2e21b-79d8-4fd7-b15d-34670a016219"
    assert first.org == "ESET"
    assert first.threat_level == 1


def test_ebury_object_attributes(shared_data: Path) -> None:
    alert = only_alert(parse_file(shared_data / "misp" / "eset" / "windigo__ebury.misp.json"))
    assert Counter(o.type.value for o in alert.observables) == {
        "md5": 58,
        "sha1": 58,
        "sha256": 58,
        "domain": 5,
    }
    assert alert.severity is Severity.MEDIUM
    assert alert.extra["to_ids_not_mapped"] == {"text": 19}


def test_tlp_white_tag_and_indicator_tags(shared_data: Path) -> None:
    path = shared_data / "misp" / "57c4445b-c548-4654-af0b-4be3950d210f.json"
    records = parse_file(path, as_indicators=True)
    alert = only_alert(records)
    assert [o.key for o in alert.observables] == [
        "filename:3Z4wnG9603it23y.exe",
        "md5:0749bae92ca336a02c83d126e04ec628",
        "sha1:77b0c41b7d340b8a3d903f21347bbf06aa766b5b",
        "sha256:b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68",
    ]
    assert alert.tlp is TLP.CLEAR
    indicators = [r for r in records if isinstance(r, Indicator)]
    assert len(indicators) == 4
    assert all(i.tlp is TLP.CLEAR and "tlp:white" in i.tags for i in indicators)


@pytest.mark.parametrize("relative", ["misp/misp_event.json", "intelmq-feeds/misp_misp_event.json"])
def test_ecsirt_tag_gives_the_legacy_classification(shared_data: Path, relative: str) -> None:
    alert = only_alert(parse_file(shared_data / relative))
    assert alert.title == "A Random Event"
    assert str(alert.classification) == "malicious-code/ransomware"
    assert alert.classification.rsit_type == "infected-system"
    assert alert.observables == []  # both attributes have to_ids false
    assert alert.severity is Severity.HIGH


def test_schemeless_urls_are_located_failures(shared_data: Path) -> None:
    records = parse_file(shared_data / "misp" / "long_event.json")
    failures = [r for r in records if isinstance(r, ParseFailure)]
    assert len(failures) == 11
    assert failures[0].raw == "url: 107.183.86"
    assert failures[0].reason == (
        "attribute 571620b0-5e38-4e8c-9c29-416d950d210f value rejected: "
        "invalid url '107.183.86': has no scheme"
    )
    assert len(only_alert(records).observables) == 274


def test_every_real_event_file(shared_data: Path) -> None:
    folders = [
        shared_data / "misp",
        shared_data / "misp" / "eset",
        shared_data / "misp" / "feed-sshdoor",
    ]
    titles = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            if path.name == "manifest.json":
                continue
            assert MispEventParser().sniff(path.read_bytes()[:8192]), path.name
            titles[path.name] = only_alert(parse_file(path)).title
    assert len(titles) == 10 + 14 + 11
    assert titles["5bad1b96-53bc-4148-87eb-50d50a016219.json"] == "SSHDoor : Abafar"
    assert titles["existing_event.json"].startswith("OSINT - Sednit update")


def test_sshdoor_feed_event(shared_data: Path) -> None:
    path = shared_data / "misp" / "feed-sshdoor" / "5bad1b96-53bc-4148-87eb-50d50a016219.json"
    alert = only_alert(parse_file(path))
    assert alert.severity is Severity.INFO  # threat level 4, undefined
    assert alert.tags == ["SSHDoor"]
    assert alert.observables == []  # the ESET feed marks its sha1 attributes to_ids false


def test_malformed_export_is_one_failure(shared_data: Path) -> None:
    folder = shared_data / "misp" / "malformed"
    path = folder / "eset__pypi_backdoor__malicious_pypi_packages.misp-event.json"
    records = parse_file(path)
    assert len(records) == 1 and isinstance(records[0], ParseFailure)
    assert records[0].reason == (
        "not valid JSON: trailing comma is not allowed: line 37373 column 12 (char 1532389)"
    )


def constructed_event(
    uuid: str, tags: list[str], attributes: list[dict[str, Any]]
) -> dict[str, Any]:
    """A CONSTRUCTED MISP event for type mappings the samples lack."""
    return {
        "Event": {
            "uuid": uuid,
            "info": f"constructed {uuid[:4]}",
            "date": "2026-11-20",
            "threat_level_id": "3",
            "analysis": "1",
            "Orgc": {"name": "CSIRT-EJEMPLO"},
            "Tag": [{"name": t} for t in tags],
            "Attribute": attributes,
        }
    }


def attribute(misp_type: str, value: str, to_ids: bool = True, **more: Any) -> dict[str, Any]:
    return {
        "type": misp_type,
        "value": value,
        "to_ids": to_ids,
        "category": "Network activity",
        **more,
    }


def test_constructed_rest_response_with_two_events() -> None:
    first = constructed_event(
        "b1c9e0a0-0000-4000-8000-000000000001",
        ['rsit:intrusions="system-compromise"', "tlp:green", "tlp:amber+strict"],
        [
            attribute("ip-dst|port", "198.51.100.20|8443"),
            attribute("filename|sha256", "a.exe|" + "ab" * 32, category="Payload delivery"),
            attribute("AS", "AS64500"),
            attribute("hostname", "c2.evil.example"),
            attribute("email-src", "phish@evil.example", category="Payload delivery"),
            attribute("domain", "ignored.example", to_ids=False),
        ],
    )
    second = constructed_event("b1c9e0a0-0000-4000-8000-000000000002", [], [])
    data = json.dumps({"response": [first, second]}).encode()
    records = parse_bytes(data)
    alerts = [r for r in records if isinstance(r, Alert)]
    assert len(alerts) == 2 and not [r for r in records if isinstance(r, Indicator)]
    one = alerts[0]
    assert [(o.key, o.role) for o in one.observables] == [
        ("ipv4:198.51.100.20", "dst"),
        ("filename:a.exe", None),
        ("sha256:" + "ab" * 32, None),
        ("asn:64500", None),
        ("hostname:c2.evil.example", None),
        ("email:phish@evil.example", None),
    ]
    assert str(one.classification) == "intrusions/system-compromise"
    assert one.tlp is TLP.AMBER_STRICT
    assert one.severity is Severity.LOW
    assert str(alerts[1].classification) == "other/undetermined"


def test_not_an_export_and_bad_event() -> None:
    assert [r.reason for r in parse_bytes(b'{"foo": 1}') if isinstance(r, ParseFailure)] == [
        "not a MISP event export: expected 'Event', 'response' or an event object"
    ]
    bad = parse_bytes(json.dumps({"response": [{"Event": "oops"}]}).encode())
    assert len(bad) == 1 and isinstance(bad[0], ParseFailure)
    assert bad[0].record == 1


def test_attribute_values_mapping() -> None:
    assert attribute_values("domain|ip", "evil.example|2001:db8::5") == [
        (ObservableType.DOMAIN, "evil.example"),
        (ObservableType.IPV6, "2001:db8::5"),
    ]
    assert attribute_values("ip-src", "192.0.2.0/24") == [(ObservableType.CIDR, "192.0.2.0/24")]
    assert attribute_values("regkey", "HKLM\\x") == []
