"""Loaders on the real MISP events, the real feed folder, a feed built with PyMISP's own
feed export, STIX bundles, plain lists and warninglists."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from pymisp import MISPEvent
from pymisp.tools import feed_meta_generator

from enrichment.intel import loaders, misp_events
from enrichment.intel.store import IntelStore
from enrichment.intel.tables import indicators
from pukara.core.errors import ParseError
from pukara.core.schema import utcnow

SSHDOOR_JAKKU = "5bbe5b1c-2238-42b4-8a90-018b0a016219"
GLUPTEBA = "5aa2e21b-79d8-4fd7-b15d-34670a016219"


def _rows(store: IntelStore, source: str) -> set[tuple[str, str, str]]:
    c = indicators.c
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(c.type, c.value, c.event_uuid).where(c.source == source))
        return {tuple(r) for r in found}  # type: ignore[misc]


def test_feed_folder_only_to_ids_by_default(store: IntelStore, shared_data: Path) -> None:
    report = loaders.load_misp_feed(store, shared_data / "misp/feed-sshdoor")
    # every attribute of the ESET SSHDoor feed has to_ids false
    assert (report.events, report.loaded, report.rejected) == (11, 0, 0)
    assert report.skipped == Counter({"not to_ids": 97})


def test_feed_folder_with_all_attributes(store: IntelStore, shared_data: Path) -> None:
    report = loaders.load_misp_feed(store, shared_data / "misp/feed-sshdoor",
                                    include_non_ids=True)
    assert (report.events, report.loaded, report.rejected) == (11, 71, 0)
    assert report.skipped == Counter({"type text": 22, "type port": 3})
    rows = _rows(store, "misp-feed:feed-sshdoor")
    # the composite domain|ip attribute of "SSHDoor : Jakku" yields both parts
    assert ("domain", "status-ok.com", SSHDOOR_JAKKU) in rows
    assert ("ipv4", "194.146.180.41", SSHDOOR_JAKKU) in rows
    assert ("sha1", "3f1ffb5ee5dd6712999ca82371bf8b755c8a873f",
            "5bad1b96-53bc-4148-87eb-50d50a016219") in rows
    assert store.stats()["by_type"] == {"domain": 2, "filename": 24, "ipv4": 3, "sha1": 42}


def test_feed_is_incremental(store: IntelStore, shared_data: Path) -> None:
    folder = shared_data / "misp/feed-sshdoor"
    loaders.load_misp_feed(store, folder, include_non_ids=True)
    again = loaders.load_misp_feed(store, folder, include_non_ids=True)
    assert (again.events, again.loaded) == (0, 0)
    assert again.skipped == Counter({"unchanged event": 11})
    assert store.source("misp-feed:feed-sshdoor").last_timestamp == 1539269987  # type: ignore[union-attr]
    full = loaders.load_misp_feed(store, folder, include_non_ids=True, full=True)
    assert (full.events, full.loaded) == (11, 71)


def _export_feed(events: list[Path], folder: Path) -> None:
    """A MISP feed folder written by PyMISP's own feed export (to_feed + feed_meta_generator)."""
    folder.mkdir()
    for path in events:
        event = MISPEvent()
        event.load_file(str(path))
        (folder / f"{event.uuid}.json").write_bytes(orjson.dumps(event.to_feed()))
    feed_meta_generator(folder)


def test_feed_exported_with_pymisp(store: IntelStore, shared_data: Path, tmp_path: Path) -> None:
    _export_feed([shared_data / "misp/eset/glupteba__glupteba.misp-event.json",
                  shared_data / "misp/sighting_1.json"], tmp_path / "feed")
    report = loaders.load_path(store, tmp_path / "feed", source="exported")
    assert (report.kind, report.events, report.loaded, report.rejected) == ("misp-feed", 2, 330, 0)
    rows = _rows(store, "exported")
    assert ("ipv4", "5.101.6.132", GLUPTEBA) in rows
    assert len({r for r in rows if r[2] == GLUPTEBA}) == 325
    assert {r[2] for r in rows} == {GLUPTEBA, "5b646415-7b48-40d5-86b4-c0070acd0835"}


@pytest.mark.parametrize(("name", "loaded", "rejected"), [
    ("misp/eset/glupteba__glupteba.misp-event.json", 325, 0),  # REST {"response": [...]}
    ("misp/sighting_1.json", 5, 0),  # {"Event": ...}
    ("misp/existing_event.json", 81, 0),  # a bare event, objects included
    ("misp/mainly_objects_1.json", 19, 0),
    ("misp/long_event.json", 274, 11),
])
def test_event_file_shapes(store: IntelStore, shared_data: Path, name: str, loaded: int,
                           rejected: int) -> None:
    report = loaders.load_path(store, shared_data / name)
    assert (report.kind, report.events, report.loaded, report.rejected) == (
        "misp-event", 1, loaded, rejected)


def test_bad_attributes_are_reported_and_the_rest_loads(store: IntelStore,
                                                        shared_data: Path) -> None:
    report = loaders.load_path(store, shared_data / "misp/long_event.json")
    first = report.failures[0]
    assert first.source.endswith("long_event.json event 57153590-f73c-49fa-be4b-4737950d210f")
    assert (first.record, first.raw) == (1, "url: 107.183.86")
    assert first.reason == "invalid url '107.183.86': has no scheme"
    assert [f.record for f in report.failures] == [1, 124, 125, 126, 245, 266, 267, 268, 269,
                                                   270, 318]
    assert report.skipped["type ssdeep"] == 1 and report.skipped["not to_ids"] == 112


def test_event_metadata_and_tlp(store: IntelStore, shared_data: Path) -> None:
    loaders.load_path(store, shared_data / "misp/57c4445b-c548-4654-af0b-4be3950d210f.json")
    c = indicators.c
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(indicators).where(c.type == "md5")).one()
    assert row.value == "0749bae92ca336a02c83d126e04ec628"
    assert (row.event_info, row.threat_level, row.tlp) == ("Ransomware - Xorist", 3, "clear")
    assert 'ms-caro-malware:malware-type="Ransom"' in row.tags


@pytest.mark.parametrize("name", [
    "misp/eset/glupteba__glupteba.misp-event.json", "misp/long_event.json",
    "misp/existing_event.json", "misp/mainly_objects_1.json", "misp/HTML_event.json",
])
def test_fast_path_equals_pymisp_path(shared_data: Path, name: str) -> None:
    now = utcnow()
    (event,) = misp_events.read_event_file(shared_data / name)
    options = misp_events.RowOptions("s", name, now, True)

    def key(item: object) -> tuple[object, ...]:
        if isinstance(item, dict):
            return (item["type"], item["value"], item["event_uuid"], item["threat_level"],
                    tuple(item["tags"]), item["tlp"], item["to_ids"])
        return ("failure", item.record, item.reason)  # type: ignore[attr-defined]

    fast = sorted(map(key, misp_events.event_rows(event, options, Counter())), key=str)
    strict = sorted(map(key, misp_events.event_rows(event, options, Counter(), strict=True)),
                    key=str)
    assert fast == strict and len(fast) > 0


def test_malformed_event_file_is_a_located_error(store: IntelStore, shared_data: Path) -> None:
    path = (shared_data / "misp/malformed"
            / "eset__pypi_backdoor__malicious_pypi_packages.misp-event.json")
    with pytest.raises(ParseError, match="trailing comma is not allowed: line 37373"):
        loaders.load_path(store, path)


def test_feed_with_a_missing_event_file(store: IntelStore, shared_data: Path,
                                        tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    shutil.copytree(shared_data / "misp/feed-sshdoor", feed)
    (feed / f"{SSHDOOR_JAKKU}.json").unlink()
    report = loaders.load_misp_feed(store, feed, include_non_ids=True)
    assert (report.events, report.rejected) == (10, 1)
    assert report.failures[0].source.endswith(f"{SSHDOOR_JAKKU}.json")
    assert "cannot read" in report.failures[0].reason


def test_stix_bundles(store: IntelStore, shared_data: Path) -> None:
    apt1 = loaders.load_path(store, shared_data / "stix/apt1.json")
    assert (apt1.kind, apt1.loaded, apt1.rejected) == ("stix", 10, 2)
    # the x509 AND patterns are not simple (reasons from collectors' StixBundleParser)
    assert [(f.record, f.reason) for f in apt1.failures] == [
        (21, "pattern not a simple comparison"), (22, "pattern not a simple comparison")]
    assert "x509-certificate:issuer" in apt1.failures[0].raw
    rows = _rows(store, "stix:apt1.json")
    assert ("cidr", "223.166.0.0/15", "indicator--031778a4-057f-48e6-9db9-c8d72b81ccd5") in rows
    assert ("domain", "hugesoft.org", "indicator--3f3ff9f1-bb4e-4392-89e5-1991179042ba") in rows
    url = loaders.load_path(store, shared_data / "stix/indicator-for-malicious-url.json")
    assert url.loaded == 1
    assert _rows(store, "stix:indicator-for-malicious-url.json") == {
        ("url", "http://x4z9arb.cn/4712/", "indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f")}
    mail_path = shared_data / "stix/malicious-email-indicator-with-attachment.json"
    mail = loaders.load_path(store, mail_path)
    assert (mail.loaded, mail.rejected) == (0, 2)
    assert "email-message:subject MATCHES" in mail.failures[0].raw
    sighting = loaders.load_path(store, shared_data / "stix/sighting-of-an-indicator.json")
    assert (sighting.loaded, sighting.skipped) == (1, Counter({"alert (not intel)": 1}))


def test_plain_lists(store: IntelStore, shared_data: Path, tmp_path: Path) -> None:
    spamhaus = loaders.load_path(store, shared_data / "intelmq-feeds/spamhaus_cert.txt")
    assert (spamhaus.kind, spamhaus.loaded, spamhaus.rejected) == ("list", 11, 0)
    assert ("ipv4", "109.126.64.2", "") in _rows(store, "list:spamhaus_cert.txt")
    constructed = tmp_path / "constructed.txt"  # constructed for this test
    constructed.write_text("# comment\nevil[.]example\nhxxp://bad.example/x\nnot a value\n"
                           "d41d8cd98f00b204e9800998ecf8427e\n10.0.0.0/8\n")
    report = loaders.load_path(store, constructed)
    assert (report.loaded, report.rejected) == (4, 1)
    assert (report.failures[0].line, report.failures[0].raw) == (4, "not a value")
    assert _rows(store, "list:constructed.txt") == {
        ("domain", "evil.example", ""), ("url", "http://bad.example/x", ""),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e", ""), ("cidr", "10.0.0.0/8", "")}


def test_warninglist_files(store: IntelStore, shared_data: Path) -> None:
    report = loaders.load_path(store, shared_data / "warninglists/public-dns-v4.json")
    assert (report.kind, report.loaded, report.rejected) == ("warninglist", 62745, 0)
    (stored,) = store.warninglists()
    assert (stored.name, stored.type, stored.version) == (
        "List of known IPv4 public DNS resolvers", "cidr", 20240615)
    assert "8.8.8.8" in stored.entries


def test_unknown_paths_are_refused(store: IntelStore, tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no such file"):
        loaders.load_path(store, tmp_path / "missing.json")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ParseError, match=r"no manifest\.json"):
        loaders.load_path(store, tmp_path / "folder")


def test_broken_attributes_are_located_failures() -> None:
    event = {  # constructed: one good attribute among broken ones
        "uuid": "00000000-0000-4000-8000-000000000001", "info": "constructed",
        "Attribute": [
            "not an object",
            {"type": "ip-dst", "to_ids": True},
            {"type": "ip-dst", "value": "300.1.1.1", "to_ids": True},
            {"type": "ip-dst", "value": "198.51.100.7", "to_ids": "1"},
            {"type": "ip-dst", "value": "198.51.100.8", "to_ids": True, "deleted": True},
        ],
    }
    skipped: Counter[str] = Counter()
    options = misp_events.RowOptions("s", "constructed.json", utcnow(), False)
    items = list(misp_events.event_rows(event, options, skipped))
    failures = [(i.record, i.reason) for i in items if not isinstance(i, dict)]
    assert failures == [
        (1, "attribute has no string 'type' and 'value'"),
        (2, "attribute has no string 'type' and 'value'"),
        (3, "invalid ipv4 '300.1.1.1': not an IP address"),
    ]
    assert [i["value"] for i in items if isinstance(i, dict)] == ["198.51.100.7"]
    assert skipped == Counter({"deleted": 1})


def test_strict_path_leaves_the_event_untouched(shared_data: Path) -> None:
    (event,) = misp_events.read_event_file(shared_data / "misp/eset/windigo__ebury.misp.json")
    before = orjson.dumps(event)
    options = misp_events.RowOptions("s", "windigo", utcnow(), True)
    strict = list(misp_events.event_rows(event, options, Counter(), strict=True))
    assert orjson.dumps(event) == before
    fast = list(misp_events.event_rows(event, options, Counter()))
    assert len(strict) == len(fast) == 249
