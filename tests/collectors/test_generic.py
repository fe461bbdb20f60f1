"""Generic CSV and JSON parsers with IntelMQ-style mappings, on the IntelMQ feed samples in
shared/data/intelmq-feeds, plus constructed hostile CSV (SECURITY D7)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from collectors.parsers.generic import GenericCsvParser, GenericJsonParser
from collectors.sources.files import FileSource
from pukara.core.schema import Alert, ParseFailure, RawReport

CERT_EU = {
    "mapping": {
        "source.ip": "source ip",
        "time.source": "source time",
        "classification.type": "type",
        "source.url": "url",
        "tlp": "tlp",
        "event_description.text": "description",
        "source.asn": "source asn",
    },
    "values": {
        "classification.type": {"malware url": "malware-distribution", "phishing": "phishing"}
    },
}


def _file(path: Path, metadata: dict[str, Any], parser: Any = None) -> tuple[list, list, Any]:
    parser = parser or GenericCsvParser()
    with FileSource().open_report(path) as report:
        report.metadata.update(metadata)
        out = list(parser.parse(report))
    return (
        [r for r in out if isinstance(r, Alert)],
        [r for r in out if isinstance(r, ParseFailure)],
        parser,
    )


def _csv(data: bytes, metadata: dict[str, Any] | None = None) -> list:
    report = RawReport(
        stream=io.BytesIO(data), source="t", filename="feed.csv", metadata=metadata or {}
    )
    return list(GenericCsvParser().parse(report))


def test_cert_eu_with_mapping_and_value_table(shared_data: Path) -> None:
    alerts, failures, _ = _file(shared_data / "intelmq-feeds/cert_eu_example.csv", CERT_EU)
    assert failures == []
    assert len(alerts) == 2
    first, second = alerts
    assert str(first.classification) == "malicious-code/malware-distribution"  # class derived
    assert str(second.classification) == "fraud/phishing"
    assert (first.tlp, second.tlp) == ("amber", "green")
    assert first.observed_at == datetime(2019, 4, 1, 3, 13, 20, tzinfo=UTC)
    assert [o.key for o in first.observables] == [
        "ipv4:109.125.93.10",
        "url:http://example.com/",
        "asn:65536",
    ]
    assert first.extra["source city"] == "Linz"  # unmapped columns kept
    assert first.source == "csv"


def test_zoneh_with_yaml_mapping_file(shared_data: Path, tmp_path: Path) -> None:
    mapping_file = tmp_path / "zoneh.yaml"
    mapping_file.write_text(
        "mapping:\n  source.ip: ip_address\n  source.url: domain\n  time.source: add_date\n"
        "defaults:\n  classification.taxonomy: intrusions\n"
        "  classification.type: application-compromise\n  feed.name: zone-h\n"
    )
    meta = {"mapping_file": str(mapping_file)}
    accepted, failures, _ = _file(shared_data / "intelmq-feeds/zoneh_defacement_accepted.csv", meta)
    assert failures == []
    assert [(a.source, str(a.classification)) for a in accepted] == [
        ("zone-h", "intrusions/application-compromise")
    ] * 2
    assert [o.key for o in accepted[1].observables] == [
        "ipv4:203.0.113.2",
        "url:http://defaced2.example.com/mayhab.txt",
    ]
    assert accepted[1].extra["attacker"] == "mayhab"
    pending, failures, _ = _file(shared_data / "intelmq-feeds/zoneh_defacement_pending.csv", meta)
    assert failures == []
    assert [o.key for o in pending[0].observables] == [
        "ipv4:1.1.1.1",
        "url:https://www.example.com/defaced.html",
    ]


def test_headerless_tab_file_with_comments(shared_data: Path) -> None:
    columns = [
        "time.source",
        "a",
        "event_description.text",
        "b",
        "c",
        "path",
        "source.ip",
        "source.reverse_dns",
        "d",
    ]
    meta = {"columns": columns, "delimiter": "\t"}
    alerts, failures, parser = _file(shared_data / "intelmq-feeds/generic_sample_report.csv", meta)
    assert failures == []
    assert parser.skipped == {"comment line": 8}
    assert [o.key for o in alerts[1].observables] == [
        "ipv4:198.105.221.161",
        "hostname:mail5.bulls.unisonplatform.com",
    ]
    assert alerts[0].observed_at == datetime(2015, 12, 14, 4, 19, tzinfo=UTC)
    assert alerts[0].title == "Really bad actor site comment"


def test_spamhaus_cert_epoch_times_and_junk_values(shared_data: Path) -> None:
    columns = [
        "source.ip",
        "source.asn",
        "source.geolocation.cc",
        "time.source",
        "classification.identifier",
        "destination.fqdn",
        "destination.ip",
        "destination.port",
        "source.port",
        "protocol.transport",
    ]
    meta = {
        "columns": columns,
        "comment": ";",
        "defaults": {"classification.type": "infected-system"},
    }
    alerts, failures, parser = _file(shared_data / "intelmq-feeds/spamhaus_cert.txt", meta)
    assert failures == []
    assert parser.skipped == {"comment line": 2}  # the column list and "; EOF"
    assert len(alerts) == 19
    first = alerts[0]
    assert first.signature == "asprox"
    assert first.observed_at == datetime.fromtimestamp(1441008970, UTC)
    assert str(first.classification) == "malicious-code/infected-system"
    mirai = next(a for a in alerts if a.signature == "iotmirai")
    assert mirai.extra["invalid.destination.ip"] == "?"


HEADER = b"ip,type,timestamp,note\n"


def test_hostile_csv_rows_each_fail_with_their_line() -> None:
    rows = [
        HEADER,  # 1
        b"192.0.2.1,scanner,2024-01-01T00:00:00Z,ok\n",  # 2
        b"192.0.2.2,scanner,2024-01-01T00:00:00Z,nul\x00byte\n",  # 3
        b"192.0.2.3,scanner,2024-01-01T00:00:00Z," + b"x" * (128 * 1024 + 1) + b"\n",  # 4
        b'192.0.2.4,scanner,2024-01-01T00:00:00Z,"two\nlines"\n',  # 5-6
        b"192.0.2.5,scanner\n",  # 7 ragged: too few
        b"192.0.2.6,scanner,2024-01-01T00:00:00Z,a,b\n",  # 8 ragged: too many
        b"192.0.2.7,scanner,2024-01-01T00:00:00Z,caf\xe9\n",  # 9 Latin-1, not UTF-8
        b"192.0.2.8,scanner,not a date,bad time\n",  # 10
        b"192.0.2.9,scanner,2024-01-01T00:00:00Z,last\n",  # 11
    ]
    meta = {
        "mapping": {"source.ip": "ip", "classification.type": "type", "time.source": "timestamp"}
    }
    records = _csv(b"".join(rows), meta)
    failures = {r.line: r.reason for r in records if isinstance(r, ParseFailure)}
    alerts = [r for r in records if isinstance(r, Alert)]
    assert [a.observables[0].value for a in alerts] == ["192.0.2.1", "192.0.2.4", "192.0.2.9"]
    assert alerts[1].extra["note"] == "two\nlines"
    assert alerts[1].raw == '192.0.2.4,scanner,2024-01-01T00:00:00Z,"two\nlines"'
    assert str(alerts[0].classification) == "information-gathering/scanner"
    assert sorted(failures) == [3, 4, 7, 8, 9, 10]
    assert failures[3] == "NUL byte in row"
    assert "field larger than field limit" in failures[4]
    assert failures[7] == "2 columns, the header has 4"
    assert failures[8] == "5 columns, the header has 4"
    assert "not UTF-8" in failures[9]
    assert "ISO 8601" in failures[10]


def test_utf16_and_utf8_bom() -> None:
    text = "source.ip,classification.type\n192.0.2.1,scanner\n192.0.2.2,phishing\n"
    for data in (text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode()):
        records = _csv(data)
        assert [type(r).__name__ for r in records] == ["Alert", "Alert"], data[:4]
        assert records[1].observables[0].key == "ipv4:192.0.2.2"
        assert str(records[1].classification) == "fraud/phishing"


def test_no_mapping_and_no_known_columns_is_a_failure_per_row() -> None:
    records = _csv(b"a,b,c\n1,2,3\n4,5,6\n")
    assert [(r.line, "give metadata['mapping']" in r.reason) for r in records] == [
        (2, True),
        (3, True),
    ]


def test_generic_json_ndjson_and_array() -> None:
    meta = {
        "mapping": {
            "source.ip": "attacker.ip",
            "time.source": "seen",
            "classification.type": "kind",
        }
    }
    lines = [
        {
            "attacker": {"ip": "198.51.100.1"},
            "seen": 1700000000,
            "kind": "brute-force",
            "user": "root",
        },
        {"attacker": {"ip": "198.51.100.2"}, "seen": "soon", "kind": "brute-force"},
    ]
    data = b"\n".join(orjson.dumps(x) for x in lines) + b"\nnot json\n"
    report = RawReport(stream=io.BytesIO(data), source="t", filename="f.json", metadata=meta)
    records = list(GenericJsonParser().parse(report))
    assert [type(r).__name__ for r in records] == ["Alert", "ParseFailure", "ParseFailure"]
    assert str(records[0].classification) == "intrusion-attempts/brute-force"
    assert records[0].extra["user"] == "root"
    assert [r.line for r in records[1:]] == [2, 3]
    array = orjson.dumps([lines[0], 7])
    report = RawReport(stream=io.BytesIO(array), source="t", filename="f.json", metadata=meta)
    records = list(GenericJsonParser().parse(report))
    assert [type(r).__name__ for r in records] == ["Alert", "ParseFailure"]
    assert records[1].record == 1


def test_sniff_is_conservative(shared_data: Path) -> None:
    csv_parser, json_parser = GenericCsvParser(), GenericJsonParser()
    feeds = shared_data / "intelmq-feeds"
    assert csv_parser.sniff((feeds / "cert_eu_example.csv").read_bytes())
    assert csv_parser.sniff((feeds / "zoneh_defacement_accepted.csv").read_bytes())
    assert not csv_parser.sniff((feeds / "dshield_block.txt").read_bytes())
    assert not csv_parser.sniff((shared_data / "zeek/btest/http-get/http.log").read_bytes())
    assert not csv_parser.sniff((shared_data / "suricata/mkhairin-eve.json").read_bytes()[:8192])
    assert not csv_parser.sniff(b"just some words\nand more words\n")
    rules = shared_data / "suricata/suricata-verify/bug-130/test.rules"  # ';'-split, 8 cells a line
    assert not csv_parser.sniff(rules.read_bytes())
    assert not csv_parser.sniff(b"1,2,3\n4,5,6\n")  # no header row: give --format csv
    assert json_parser.sniff(b'[{"a": 1}]') and json_parser.sniff(b'{"a": 1}\n')
    assert not json_parser.sniff(b"a,b,c\n")


def test_utf16_reader_leaves_the_stream_to_its_owner() -> None:
    data = "source.ip,classification.type\n192.0.2.1,scanner\n".encode("utf-16")
    report = RawReport(stream=io.BytesIO(data), source="t", filename="u.csv")
    assert len(list(GenericCsvParser().parse(report))) == 1
    assert not report.stream.closed
