"""Suricata EVE parser on the real samples in shared/data/suricata (see its MANIFEST.md)."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from collectors.parsers.suricata import SuricataEveParser
from pukara.core.schema import Alert, ParseFailure, RawReport
from tests.conftest import SHARED_DATA


def _parse(path: Path) -> tuple[list[Alert], list[ParseFailure], SuricataEveParser]:
    parser = SuricataEveParser()
    with path.open("rb") as stream:
        out = list(parser.parse(RawReport(stream=stream, source="file", filename=path.name)))
    alerts = [r for r in out if isinstance(r, Alert)]
    failures = [r for r in out if isinstance(r, ParseFailure)]
    assert len(alerts) + len(failures) == len(out)
    return alerts, failures, parser


def _from_bytes(data: bytes) -> list:
    report = RawReport(stream=io.BytesIO(data), source="test", filename="eve.json")
    return list(SuricataEveParser().parse(report))


def test_muntaha_sample_counts_and_rule(shared_data: Path) -> None:
    alerts, failures, parser = _parse(shared_data / "suricata/Muntaha-Ghafoor-eve.json")
    assert failures == []
    assert not parser.skipped
    assert len(alerts) == 1345
    kinds = Counter(a.extra["event_type"] for a in alerts)
    assert kinds == {"flow": 1176, "dns": 110, "alert": 59}
    rules = Counter(
        (a.signature, a.signature_id) for a in alerts if a.extra["event_type"] == "alert"
    )
    assert rules[("Nmap SYN Port Scan Detected", "1000002")] == 50
    assert rules[("ICMP Ping Detected", "1000001")] == 6
    ping = next(a for a in alerts if a.signature_id == "1000001")
    assert str(ping.classification) == "intrusion-attempts/ids-alert"  # empty category
    assert ping.severity == "low"  # Suricata severity 3
    assert ping.source_ref == "2154098702547753"
    assert ping.observed_at == datetime(2026, 6, 12, 7, 31, 43, 763684, tzinfo=UTC)
    assert ping.flow is not None and ping.flow.proto == "ICMP"
    assert [o.key for o in ping.observables] == ["ipv4:192.168.137.1", "ipv4:192.168.137.128"]
    assert [o.role for o in ping.observables] == ["src", "dst"]
    observations = [a for a in alerts if "observation" in a.tags]
    assert len(observations) == 1286
    assert {a.severity for a in observations} == {"info"}
    dns = [a for a in alerts if a.extra["event_type"] == "dns"]
    assert any(o.key == "domain:telemetry.elastic.co" for a in dns for o in a.observables)


def test_mkhairin_sample_alerts_anomaly_http_dns(shared_data: Path) -> None:
    alerts, failures, parser = _parse(shared_data / "suricata/mkhairin-eve.json")
    assert failures == []
    assert parser.skipped == {"stats: no observables": 9}
    assert len(alerts) == 29
    nmap = [a for a in alerts if a.signature_id == "2024364"]
    assert len(nmap) == 4
    first = nmap[0]
    assert first.signature == "ET SCAN Possible Nmap User-Agent Observed"
    assert str(first.classification) == "intrusion-attempts/exploit"  # Web Application Attack
    assert first.severity == "high"  # Suricata severity 1
    assert first.extra["category"] == "Web Application Attack"
    assert first.extra["iface"] == "enp0s8"
    assert first.observed_at == datetime(2026, 1, 14, 14, 39, 18, 124771, tzinfo=UTC)
    keys = {o.key for o in first.observables}
    assert "url:http://192.168.113.50/sdk" in keys
    ua = (
        "user-agent:Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"
    )
    assert ua in keys
    decode = next(a for a in alerts if a.signature_id == "2260002")
    assert str(decode.classification) == "other/undetermined"  # Generic Protocol Command Decode
    anomaly = next(a for a in alerts if a.extra["event_type"] == "anomaly")
    assert anomaly.signature == "anomaly:applayer:APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION"
    dns = [a for a in alerts if a.extra["event_type"] == "dns"]
    assert len(dns) == 2
    assert all("domain:version.bind" in {o.key for o in a.observables} for a in dns)
    assert Counter(a.extra["event_type"] for a in alerts if "observation" in a.tags) == {
        "fileinfo": 9,
        "http": 8,
        "dns": 2,
        "smb": 2,
        "ftp": 1,
        "flow": 1,
    }


def test_suricata_verify_fileinfo_expected_eve(shared_data: Path) -> None:
    alerts, failures, _ = _parse(
        shared_data / "suricata/suricata-verify/output-eve-fileinfo/expected/eve.json"
    )
    assert failures == []
    (alert,) = alerts
    keys = [o.key for o in alert.observables]
    assert keys == [
        "ipv4:188.40.238.250",
        "ipv4:10.16.1.11",
        "hostname:www.eicar.org",
        "url:http://www.eicar.org/download/eicar.com",
        "user-agent:curl/7.43.0",
        "filename:eicar.com",
    ]
    assert alert.source_ref == "841252990914572"
    assert alert.flow is not None and alert.flow.src_port == 80 and alert.flow.dst_port == 59908


def test_every_eve_sample_parses_without_failures(shared_data: Path) -> None:
    files = sorted((shared_data / "suricata").rglob("*.json"))
    # Only output-eve-fileinfo ships an eve.json among the suricata-verify cases; the others
    # hold a pcap and test.yaml only, so there is nothing to parse for them.
    assert [f.name for f in files] == ["Muntaha-Ghafoor-eve.json", "mkhairin-eve.json", "eve.json"]
    for path in files:
        alerts, failures, _ = _parse(path)
        assert failures == [], path
        for alert in alerts:  # built without re-validation: prove they are valid Alerts
            assert Alert.model_validate(alert.model_dump()) == alert


# Constructed lines (not captured traffic), following the documented EVE layout of
# Suricata 7: a TLS event with SNI/JA3/JA3S/JA4 and a fileinfo event with hashes.
TLS_LINE = orjson.dumps(
    {
        "timestamp": "2024-03-01T10:00:00.000000+0000",
        "flow_id": 42,
        "event_type": "tls",
        "src_ip": "10.0.0.5",
        "src_port": 50000,
        "dest_ip": "203.0.113.9",
        "dest_port": 443,
        "proto": "TCP",
        "tls": {
            "sni": "Login.Example.ORG",
            "version": "TLS 1.3",
            "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865", "string": "771,..."},
            "ja3s": {"hash": "15af977ce25de452b96affa2addb1036"},
            "ja4": "t13d1516h2_8daaf6152771_02713d6af862",
        },
    }
)
FILE_LINE = orjson.dumps(
    {
        "timestamp": "2024-03-01T10:00:01Z",
        "flow_id": 43,
        "event_type": "fileinfo",
        "src_ip": "203.0.113.9",
        "src_port": 80,
        "dest_ip": "10.0.0.5",
        "dest_port": 50001,
        "proto": "TCP",
        "http": {"hostname": "dl.example.net", "url": "/a.exe"},
        "fileinfo": {
            "filename": "a.exe",
            "sha256": "275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F",
            "md5": "44d88612fea8a8f36de82e1278abb02f",
            "size": 68,
        },
    }
)


def test_constructed_tls_and_fileinfo_observables() -> None:
    tls, file = _from_bytes(TLS_LINE + b"\n" + FILE_LINE + b"\n")
    assert [o.key for o in tls.observables] == [
        "ipv4:10.0.0.5",
        "ipv4:203.0.113.9",
        "hostname:login.example.org",
        "ja3:e7d705a3286e19ea42f587b344ee6865",
        "ja3:15af977ce25de452b96affa2addb1036",
        "ja4:t13d1516h2_8daaf6152771_02713d6af862",
    ]
    assert tls.severity == "info" and tls.source_ref == "42" and "observation" in tls.tags
    keys = [o.key for o in file.observables]
    assert "sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f" in keys
    assert "md5:44d88612fea8a8f36de82e1278abb02f" in keys
    assert "url:http://dl.example.net/a.exe" in keys


def test_category_table_and_severity_mapping() -> None:
    def alert_with(category: str, severity: int) -> Alert:
        line = orjson.dumps(
            {
                "timestamp": "2024-03-01T10:00:00Z",
                "event_type": "alert",
                "src_ip": "10.0.0.1",
                "dest_ip": "10.0.0.2",
                "alert": {
                    "signature_id": 1,
                    "signature": "x",
                    "category": category,
                    "severity": severity,
                },
            }
        )
        (record,) = _from_bytes(line)
        assert isinstance(record, Alert)
        return record

    expected = {
        "Attempted Administrator Privilege Gain": ("intrusion-attempts/exploit", 1, "high"),
        "A Network Trojan was detected": ("malicious-code/infected-system", 1, "high"),
        "Potential Corporate Privacy Violation": ("other/undetermined", 2, "medium"),
        "Misc activity": ("other/undetermined", 3, "low"),
        "Attempted Information Leak": ("information-gathering/scanner", 2, "medium"),
        "Detection of a Network Scan": ("information-gathering/scanner", 3, "low"),
        "Attempted Denial of Service": ("availability/dos", 2, "medium"),
        "Something Suricata never had": ("intrusion-attempts/ids-alert", 4, "info"),
    }
    for category, (classification, severity, level) in expected.items():
        alert = alert_with(category, severity)
        assert (str(alert.classification), alert.severity) == (classification, level), category


GOOD = orjson.dumps(
    {
        "timestamp": "2024-03-01T10:00:00Z",
        "event_type": "alert",
        "src_ip": "10.0.0.1",
        "dest_ip": "10.0.0.2",
        "alert": {"signature_id": 7, "signature": "ok", "category": "Misc activity", "severity": 2},
    }
)


@pytest.mark.parametrize(
    ("bad", "reason_part"),
    [
        (GOOD[:60], "not valid JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'{"event_type":"alert","src_ip":"\xff\xfe","alert":{}}', "not valid JSON"),
        (
            b'{"event_type":"alert","src_ip":"10.0.0.1","src_port":"http","alert":{"signature_id":1}}',
            "src_port",
        ),
        (b'{"event_type":"alert","src_ip":"10.0.0.1","alert":"not an object"}', "'alert' object"),
        (b'{"event_type":"dns","timestamp":"yesterday","src_ip":"10.0.0.1"}', "ISO 8601"),
        (b'{"no_event_type":true}', "event_type"),
        (b"{" + b'"x":"' + b"a" * (10 * 1024 * 1024) + b'"}', "not valid JSON"),
    ],
    ids=[
        "truncated",
        "non-object",
        "invalid-utf8",
        "port-type",
        "alert-type",
        "bad-time",
        "no-type",
        "10MB-line",
    ],
)
def test_bad_line_is_located_failure_and_rest_parses(bad: bytes, reason_part: str) -> None:
    data = GOOD + b"\n\n" + bad + b"\n" + GOOD + b"\n"
    records = _from_bytes(data)
    assert [type(r).__name__ for r in records] == ["Alert", "ParseFailure", "Alert"]
    failure = records[1]
    assert failure.line == 3
    assert failure.source == "eve.json"
    assert reason_part in failure.reason
    assert len(failure.raw) <= 2049


def test_sniff() -> None:
    parser = SuricataEveParser()
    assert parser.sniff(GOOD)
    assert not parser.sniff(b"#separator \\x09\n#fields\tts\n")
    assert not parser.sniff(b'{"source.ip": "1.2.3.4"}')


def test_constructed_dns_v2_answer_smtp_and_http_port() -> None:
    # Constructed lines after the EVE layouts of Suricata 5 (flat DNS answer) and 7 (smtp).
    v2 = {
        "timestamp": "2020-01-01T00:00:00Z",
        "event_type": "dns",
        "src_ip": "10.0.0.53",
        "dest_ip": "10.0.0.5",
        "dns": {
            "type": "answer",
            "rrname": "cdn.example.com",
            "rrtype": "A",
            "rdata": "192.0.2.80",
        },
    }
    smtp = {
        "timestamp": "2020-01-01T00:00:00Z",
        "event_type": "smtp",
        "src_ip": "10.0.0.5",
        "dest_ip": "198.51.100.25",
        "smtp": {
            "helo": "mail.example.org",
            "mail_from": "<Alice@Example.org>",
            "rcpt_to": ["<bob@example.net>", "carol@example.net"],
        },
    }
    http = {
        "timestamp": "2020-01-01T00:00:00Z",
        "event_type": "http",
        "src_ip": "10.0.0.5",
        "src_port": 40000,
        "dest_ip": "192.0.2.8",
        "dest_port": 8080,
        "http": {"hostname": "app.example.com", "http_port": 8080, "url": "/login?next=/"},
    }
    records = _from_bytes(b"\n".join(orjson.dumps(x) for x in (v2, smtp, http)))
    assert [o.key for o in records[0].observables][2:] == [
        "domain:cdn.example.com",
        "ipv4:192.0.2.80",
    ]
    assert [(o.key, o.role) for o in records[1].observables][2:] == [
        ("email:Alice@example.org", "sender"),
        ("email:bob@example.net", "recipient"),
        ("email:carol@example.net", "recipient"),
        ("hostname:mail.example.org", "helo"),
    ]
    assert "url:http://app.example.com:8080/login?next=/" in {o.key for o in records[2].observables}


VERIFY_DIR = SHARED_DATA / "suricata/suricata-verify"
VERIFY_CASES = sorted(p.name for p in VERIFY_DIR.iterdir()) if VERIFY_DIR.is_dir() else []


@pytest.mark.parametrize("case", VERIFY_CASES)
def test_suricata_verify_case(shared_data: Path, case: str) -> None:
    eve = shared_data / "suricata/suricata-verify" / case / "expected/eve.json"
    if not eve.exists():
        pytest.skip(f"{case}: no EVE output shipped (pcap + test.yaml checks only)")
    alerts, failures, parser = _parse(eve)
    assert failures == [] and not parser.skipped
    assert len(alerts) == sum(1 for line in eve.read_bytes().splitlines() if line.strip())
