"""Shadowserver parser on IntelMQ's 60 Shadowserver test CSVs (real layouts), plus constructed
rows for the failure cases (labelled where built here)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.parsers import shadowserver_reports
from collectors.parsers.shadowserver import (
    ShadowserverParser,
    _observable,
    report_type_from_filename,
)
from pukara.core.observables import ObservableType, normalize
from pukara.core.schema import Alert, ParseFailure, RawReport, Record

# rows per sample file (each file: header + these rows); every row must become an Alert
EXPECTED_ALERTS = {
    "blocklist": 3, "compromised_website": 3, "device_id": 3,
    "event4_honeypot_brute_force": 6, "event4_honeypot_ddos_target": 3,
    "event4_ip_spoofer": 6, "event4_sinkhole": 3, "event4_sinkhole_http": 5,
    "event4_sinkhole_http_referer": 5, "event6_sinkhole_http": 3, "malware_url": 3,
    "phish_url": 3, "sandbox_conn": 3, "scan_adb": 2, "scan_amqp": 3, "scan_ard": 3,
    "scan_chargen": 3, "scan_cisco_smart_install": 2, "scan_couchdb": 3, "scan_cwmp": 2,
    "scan_db2": 2, "scan_dns": 100, "scan_elasticsearch": 3, "scan_exchange": 7,
    "scan_ftp": 2, "scan_http": 2, "scan_http_vulnerable": 3, "scan_ics": 3, "scan_ipp": 1,
    "scan_ldap_tcp": 3, "scan_ldap_udp": 3, "scan_mdns": 3, "scan_memcached": 3,
    "scan_mqtt": 1, "scan_mqtt_anon": 3, "scan_mssql": 3, "scan_mysql": 3, "scan_ntp": 3,
    "scan_portmapper": 3, "scan_postgres": 3, "scan_qotd": 3, "scan_quic": 3,
    "scan_radmin": 9, "scan_rdpeudp": 3, "scan_rsync": 3, "scan_slp": 3,
    "scan_smtp_vulnerable": 2, "scan_socks": 3, "scan_ssdp": 3, "scan_ssh": 3, "scan_ssl": 3,
    "scan_ssl_freak": 45, "scan_stun": 3, "scan_telnet": 2, "scan_tftp": 3, "scan_ubiquiti": 3,
    "scan_vnc": 2, "scan_ws_discovery": 3, "scan_xdmcp": 3, "special": 3,
}  # fmt: skip


def parse_bytes(data: bytes, filename: str = "", **metadata: object) -> list[Record]:
    report = RawReport(
        stream=io.BytesIO(data), source="shadowserver", filename=filename, metadata=metadata
    )
    return list(ShadowserverParser().parse(report))


def parse_sample(shared_data: Path, name: str, filename: str | None = None) -> list[Record]:
    path = shared_data / "shadowserver" / f"{name}.csv"
    return parse_bytes(path.read_bytes(), filename if filename is not None else path.name)


def alerts(records: list[Record]) -> list[Alert]:
    return [r for r in records if isinstance(r, Alert)]


def keys(alert: Alert) -> list[str]:
    return [o.key for o in alert.observables]


def test_every_sample_file_parses_without_failures(shared_data: Path) -> None:
    files = sorted((shared_data / "shadowserver").glob("*.csv"))
    assert len(files) == 60
    for path in files:
        records = parse_bytes(path.read_bytes(), path.name)
        assert [r for r in records if isinstance(r, ParseFailure)] == [], path.name
        assert len(records) == EXPECTED_ALERTS[path.stem], path.name
        assert {a.signature_id for a in alerts(records)} == {path.stem}, path.name


def test_sniff_accepts_every_sample_and_rejects_other_formats(shared_data: Path) -> None:
    parser = ShadowserverParser()
    for path in (shared_data / "shadowserver").glob("*.csv"):
        assert parser.sniff(path.read_bytes()[:8192]), path.name
    assert not parser.sniff(b'{"Event": {"info": "x"}}')
    generic = (shared_data / "intelmq-feeds" / "cert_eu_example.csv").read_bytes()
    assert not parser.sniff(generic[:8192])


def test_scan_ftp_first_row(shared_data: Path) -> None:
    first = alerts(parse_sample(shared_data, "scan_ftp"))[0]
    assert keys(first) == ["ipv4:61.126.3.70", "hostname:arcus-net.co.jp", "asn:4713"]
    assert first.flow is not None
    assert (first.flow.src_ip, first.flow.src_port, first.flow.proto) == ("61.126.3.70", 21, "tcp")
    assert str(first.classification) == "vulnerable/weak-crypto"
    assert first.observed_at == datetime(2019, 3, 6, 6, 37, tzinfo=UTC)
    assert first.extra["banner"] == "220 FTP Server ready.|"
    assert first.extra["geo"] == "JP"
    assert first.extra["naics"] == "517311"
    assert first.source_ref == "scan_ftp.csv:2"
    assert first.tags == ["shadowserver:scan_ftp"]


def test_honeypot_brute_force_has_both_ends_of_the_flow(shared_data: Path) -> None:
    first = alerts(parse_sample(shared_data, "event4_honeypot_brute_force"))[0]
    assert first.flow is not None
    assert (first.flow.src_ip, first.flow.src_port) == ("141.98.1.2", 30123)
    assert (first.flow.dst_ip, first.flow.dst_port) == ("162.250.1.2", 22)
    assert [(o.key, o.role) for o in first.observables if o.type == "asn"] == [
        ("asn:209588", "src"),
        ("asn:26832", "dst"),
    ]
    assert str(first.classification) == "intrusion-attempts/brute-force"


def test_ipv6_sinkhole_and_cidr_blocklist(shared_data: Path) -> None:
    v6 = alerts(parse_sample(shared_data, "event6_sinkhole_http"))[0]
    assert v6.flow is not None
    assert v6.flow.src_ip == "2001:448a:1082:4d9b:7491:bf9e:3d5f:a634"
    assert v6.flow.dst_ip == "2001:470:1:332::fe"
    assert str(v6.classification) == "malicious-code/infected-system"
    blocklist = alerts(parse_sample(shared_data, "blocklist"))
    assert keys(blocklist[2])[0] == "cidr:198.123.245.0/24"
    assert blocklist[2].flow is None
    assert blocklist[0].extra["reason"] == "Malicious Host AA"


def test_malware_url_carries_url_and_hash(shared_data: Path) -> None:
    first = alerts(parse_sample(shared_data, "malware_url"))[0]
    assert "url:http://41.86.0.0:50008/Mozi.m" in keys(first)
    assert "sha256:12013662c71da69de977c04cd7021f13a70cf7bed4ca6c82acbc100464d4b0ef" in keys(first)
    assert first.extra["tag"] == "CVE-2016-10372"


def test_report_type_from_shadowserver_file_names() -> None:
    assert report_type_from_filename("2019-01-01-scan_ftp-test-geo.csv").name == "scan_ftp"
    found = report_type_from_filename("2020-05-01-scan_http_vulnerable-asn-region.csv")
    assert found is not None and found.name == "scan_http_vulnerable"
    assert report_type_from_filename("report.csv") is None


def test_metadata_wins_over_file_name(shared_data: Path) -> None:
    data = (shared_data / "shadowserver" / "scan_telnet.csv").read_bytes()
    records = parse_bytes(data, "2019-09-04-scan_telnet-x.csv", report_type="scan_smtp_vulnerable")
    assert {a.signature_id for a in alerts(records)} == {"scan_smtp_vulnerable"}


@pytest.mark.parametrize(
    "name",
    ["scan_ftp", "event4_honeypot_brute_force", "scan_http_vulnerable", "scan_mqtt", "scan_http"],
)
def test_header_detection_without_a_file_name(shared_data: Path, name: str) -> None:
    records = parse_sample(shared_data, name, filename="upload.csv")
    assert {a.signature_id for a in alerts(records)} == {name}


def test_ambiguous_header_falls_back_to_generic(shared_data: Path) -> None:
    records = parse_sample(shared_data, "scan_telnet", filename="upload.csv")
    assert len(records) == 2
    assert {a.signature_id for a in alerts(records)} == {"shadowserver"}
    assert str(alerts(records)[0].classification) == "other/undetermined"


def test_bad_rows_become_located_failures_and_the_rest_is_kept() -> None:
    # constructed report: row 3 lacks columns, row 4 has no IP, row 5 a bad timestamp,
    # row 6 a quoted banner spanning two lines, row 8 is fine
    data = (
        b'"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city",'
        b'"naics","sic","banner"\n'
        b'"2019-09-04 12:27:34","192.0.2.1","tcp",23,"a.example","tel",64500,"PE","L","L",0,0,"x"\n'
        b'"2019-09-04 12:27:35","192.0.2.2","tcp",23\n'
        b'"2019-09-04 12:27:36","","tcp",23,"","telnet",64500,"PE","L","L",0,0,"x"\n'
        b'"yesterday","192.0.2.4","tcp",23,"","telnet",64500,"PE","L","L",0,0,"x"\n'
        b'"2019-09-04 12:27:38","192.0.2.5","tcp",23,"","telnet",64500,"PE","L","L",0,0,"l1\nl2"\n'
        b'"2019-09-04 12:27:39","not-an-ip","tcp",23,"","telnet",64500,"PE","L","L",0,0,"x"\n'
    )
    records = parse_bytes(data, "2019-09-04-scan_telnet-constructed.csv")
    failures = [r for r in records if isinstance(r, ParseFailure)]
    assert [(f.line, f.reason) for f in failures] == [
        (3, "row has 4 columns, the header has 13"),
        (4, "missing value for 'ip'"),
        (5, "timestamp is not a date and time"),
        (8, "'ip' is not an IP address"),
    ]
    assert failures[0].source == "2019-09-04-scan_telnet-constructed.csv"
    kept = alerts(records)
    assert [a.flow.src_ip for a in kept if a.flow] == ["192.0.2.1", "192.0.2.5"]
    assert kept[1].extra["banner"] == "l1\nl2"
    assert kept[1].source_ref == "2019-09-04-scan_telnet-constructed.csv:6"


def test_empty_and_headerless_input() -> None:
    assert [r.reason for r in parse_bytes(b"") if isinstance(r, ParseFailure)] == [
        "no CSV header: empty report"
    ]
    records = parse_bytes(b'"ip","port"\n"192.0.2.1",80\n', "2019-01-01-scan_ftp-x.csv")
    assert [r.reason for r in records if isinstance(r, ParseFailure)] == [
        "header lacks required column(s) timestamp"
    ]


def test_fast_paths_agree_with_the_kernel_normalisation(shared_data: Path) -> None:
    """The parser builds canonical observables without re-validating: check they are equal
    to what the kernel's validating constructor gives, on every sample row."""
    for path in (shared_data / "shadowserver").glob("*.csv"):
        for alert in alerts(parse_bytes(path.read_bytes(), path.name)):
            for observable in alert.observables:
                assert observable.value == normalize(observable.type, observable.value)
            again = Alert.model_validate(alert.model_dump())
            assert again.observables == alert.observables
    for value in ("Node01.Example.COM.", "_dmarc.example.org", "1.2.3.4", "xn--bcher-kva.de"):
        made = _observable(ObservableType.HOSTNAME, value, "src")
        try:
            expected: str | None = normalize(ObservableType.HOSTNAME, value)
        except ValueError:
            expected = None
        assert (made.value if made else None) == expected


def test_every_table_classification_is_valid_rsit() -> None:
    for report in shadowserver_reports.REPORTS.values():
        parse = parse_bytes(
            b'"timestamp","ip","dst_ip","src_ip","url","http_referer_ip"\n'
            b'"2020-01-01 00:00:00","192.0.2.1","192.0.2.2","192.0.2.3","http://a.example/",'
            b'"192.0.2.4"\n',
            report_type=report.name,
        )
        assert [type(r).__name__ for r in parse] == ["Alert"], report.name
