"""Zeek log parser on the real logs in shared/data/zeek (btest baselines and WRCCDC 2018)."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.parsers.zeek import ZeekLogParser
from pukara.core.schema import Alert, ParseFailure, RawReport


def _parse(path: Path) -> tuple[list[Alert], list[ParseFailure], ZeekLogParser]:
    """Parse a log; a .gz file is handed over already decompressed, as FileSource does."""
    opener = gzip.open if path.suffix == ".gz" else open
    parser = ZeekLogParser()
    with opener(path, "rb") as stream:
        name = path.name.removesuffix(".gz")
        out = list(parser.parse(RawReport(stream=stream, source="file", filename=name)))
    alerts = [r for r in out if isinstance(r, Alert)]
    failures = [r for r in out if isinstance(r, ParseFailure)]
    assert len(alerts) + len(failures) == len(out)
    return alerts, failures, parser


def _from_text(text: str, filename: str = "x.log") -> list:
    report = RawReport(stream=io.BytesIO(text.encode()), source="test", filename=filename)
    return list(ZeekLogParser().parse(report))


EXPECTED = {  # file → records (no failures, nothing skipped)
    "btest/dns-flip/dns.log": 1,
    "btest/http-get/conn.log": 1,
    "btest/http-get/http.log": 1,
    "btest/http-sqli-dvwa/notice.log": 2,
    "btest/smtp-attachment/files.log": 4,
    "btest/smtp-attachment/smtp.log": 2,
    "btest/ssh-bruteforce/notice.log": 1,
    "btest/ssl-ecdhe/ssl.log": 1,
    "btest/ssl-ecdhe/x509.log": 3,
    "wrccdc-2018/json/notice.json.gz": 207,
    "wrccdc-2018/json/smb_mapping.json.gz": 393,
    "wrccdc-2018/json/smtp.json.gz": 1188,
    "wrccdc-2018/json/ssh.json.gz": 22,
    "wrccdc-2018/tsv/dns.log.gz": 53615,
    "wrccdc-2018/tsv/notice.log.gz": 207,
    "wrccdc-2018/tsv/ntlm.log.gz": 422,
    "wrccdc-2018/tsv/smb_mapping.log.gz": 393,
    "wrccdc-2018/tsv/smtp.log.gz": 1188,
    "wrccdc-2018/tsv/software.log.gz": 376,
    "wrccdc-2018/tsv/ssh.log.gz": 22,
    "wrccdc-2018/tsv/x509.log.gz": 348,
}


def test_every_log_sample_is_listed(shared_data: Path) -> None:
    logs = {
        str(p.relative_to(shared_data / "zeek"))
        for p in (shared_data / "zeek").rglob("*")
        if p.is_file() and not p.name.endswith((".pcap", ".pcapng"))
    }
    assert logs == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_log_parses_completely(shared_data: Path, name: str) -> None:
    alerts, failures, parser = _parse(shared_data / "zeek" / name)
    assert failures == []
    assert not parser.skipped
    assert len(alerts) == EXPECTED[name]
    assert {a.extra["zeek_path"] for a in alerts} == {Path(name).name.split(".")[0]}


def test_btest_sql_injection_notices(shared_data: Path) -> None:
    alerts, _, _ = _parse(shared_data / "zeek/btest/http-sqli-dvwa/notice.log")
    assert [a.signature for a in alerts] == [
        "HTTP::SQL_Injection_Attacker",
        "HTTP::SQL_Injection_Victim",
    ]
    attacker = alerts[0]
    assert attacker.title == "An SQL injection attacker was discovered!"
    assert str(attacker.classification) == "intrusion-attempts/exploit"
    assert attacker.severity == "medium"
    assert [o.key for o in attacker.observables] == ["ipv4:192.168.111.148", "ipv4:192.168.111.154"]
    assert attacker.extra["ts_missing"] is True  # btest's XXXXXXXXXX.XXXXXX
    assert attacker.source_ref == "CtPZjS20MLrsMUOJi2"


def test_btest_ssh_bruteforce_notice(shared_data: Path) -> None:
    (alert,) = _parse(shared_data / "zeek/btest/ssh-bruteforce/notice.log")[0]
    assert alert.signature == "SSH::Password_Guessing"
    assert str(alert.classification) == "intrusion-attempts/brute-force"
    assert [(o.key, o.role) for o in alert.observables] == [("ipv4:192.168.56.1", "src")]
    assert alert.source_ref is None  # uid unset


def test_btest_dns_http_files_x509(shared_data: Path) -> None:
    (dns,) = _parse(shared_data / "zeek/btest/dns-flip/dns.log")[0]
    keys = [o.key for o in dns.observables]
    assert keys[:3] == ["ipv4:10.20.1.31", "ipv4:207.158.192.40", "domain:us.v27.distributed.net"]
    assert len(keys) == 3 + 8  # eight A answers
    assert dns.severity == "info" and "observation" in dns.tags
    assert dns.flow is not None and dns.flow.proto == "udp" and dns.flow.src_port == 53

    (http,) = _parse(shared_data / "zeek/btest/http-get/http.log")[0]
    assert {o.key for o in http.observables} >= {
        "hostname:bro.org",
        "url:http://bro.org/download/CHANGES.bro-aux.txt",
        "user-agent:Wget/1.14 (darwin12.2.0)",
    }
    assert http.extra["zeek"]["status_code"] == 200

    files, _, _ = _parse(shared_data / "zeek/btest/smtp-attachment/files.log")
    assert [a.source_ref for a in files][:2] == ["FmFp351N5nhsMmAfQg", "Fqrb1K5DWEfgy4WU2"]
    assert "filename:NEWS.txt" in {o.key for o in files[2].observables}

    x509, _, _ = _parse(shared_data / "zeek/btest/ssl-ecdhe/x509.log")
    first = {o.key for o in x509[0].observables}
    assert "sha256:a97a22b691caf62c1623d14abf8a31ac915f14d87f77d8a37c47eb4785b484ad" in first
    assert "domain:google.com" in first


def test_wrccdc_tsv_and_json_notice_agree(shared_data: Path) -> None:
    tsv, _, _ = _parse(shared_data / "zeek/wrccdc-2018/tsv/notice.log.gz")
    jsn, _, _ = _parse(shared_data / "zeek/wrccdc-2018/json/notice.json.gz")
    assert Counter(a.signature for a in tsv) == {"SSL::Invalid_Server_Cert": 207}
    assert str(tsv[0].classification) == "vulnerable/weak-crypto"
    assert tsv[0].observed_at == datetime(2018, 3, 24, 17, 15, 20, 629574, tzinfo=UTC)
    for a, b in zip(tsv, jsn, strict=True):
        assert (a.observed_at, a.signature, a.source_ref) == (
            b.observed_at,
            b.signature,
            b.source_ref,
        )
        assert [o.key for o in a.observables] == [o.key for o in b.observables]


def test_wrccdc_smtp_emails(shared_data: Path) -> None:
    alerts, _, _ = _parse(shared_data / "zeek/wrccdc-2018/json/smtp.json.gz")
    senders = Counter(o.key for a in alerts for o in a.observables if o.role == "sender")
    assert sum(senders.values()) == 12  # 1176 of 1188 records have no mailfrom
    assert senders["email:nessus49048747@hotmail.com"] == 5
    assert senders["email:nessus1157527943@invalid1562458422.org"] == 1


HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
)
FIELDS = "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"
TYPES = "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n"
ROW = "1521911720.865716\tC1\t10.0.0.1\t1234\t10.0.0.2\t80\ttcp\n"


def test_bad_rows_are_located_failures() -> None:
    text = (
        "1521911720.865716\tC0\t10.0.0.1\n"  # line 1: data before #fields
        + HEADER  # lines 2-6
        + FIELDS  # 7
        + TYPES  # 8
        + ROW  # 9
        + "1521911720.865716\tC2\t10.0.0.1\n"  # 10: too few columns
        + "1521911720.865716\tC3\t10.0.0.1\tnotaport\t10.0.0.2\t80\ttcp\n"  # 11: bad port
        + '{"_path": "conn", "ts": "never", "id.orig_h": "10.0.0.9"}\n'  # 12: bad time
        + "[1, 2]\n"  # 13: JSON but not an object
        + ROW  # 14
    )
    records = _from_text(text, "conn.log")
    failures = [(r.line, r.reason) for r in records if isinstance(r, ParseFailure)]
    assert [line for line, _ in failures] == [1, 10, 11, 12, 13]
    assert "before any #fields" in failures[0][1]
    assert "3 columns where #fields names 7" in failures[1][1]
    assert sum(isinstance(r, Alert) for r in records) == 2


def test_invalid_utf8_row() -> None:
    data = (
        (HEADER + FIELDS + TYPES).encode()
        + b"1.0\tC\xff\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n"
        + ROW.encode()
    )
    report = RawReport(stream=io.BytesIO(data), source="test", filename="conn.log")
    records = list(ZeekLogParser().parse(report))
    assert isinstance(records[0], ParseFailure) and records[0].line == 8
    assert "not UTF-8" in records[0].reason
    assert isinstance(records[1], Alert)


def test_record_without_observables_is_counted_not_silent() -> None:
    text = HEADER.replace("conn", "stats") + "#fields\tts\tpeer\tmem\n#types\ttime\tstring\tcount\n"
    text += "1521911720.0\tzeek\t100\n"
    parser = ZeekLogParser()
    report = RawReport(stream=io.BytesIO(text.encode()), source="test", filename="stats.log")
    assert list(parser.parse(report)) == []
    assert parser.skipped == {"stats: no observables": 1}


def test_sniff() -> None:
    parser = ZeekLogParser()
    assert parser.sniff(HEADER.encode())
    assert parser.sniff(b"### BTest baseline data\n#separator \\x09\n")
    assert parser.sniff(b'{"_path":"conn","ts":1.0}')
    assert not parser.sniff(b'{"event_type":"alert"}')
    assert not parser.sniff(b"a,b,c\n1,2,3\n")


def test_constructed_weird_log_becomes_alerts() -> None:
    # Constructed after Zeek's weird.log layout (no weird.log sample in shared/data).
    text = (
        HEADER.replace("conn", "weird")
        + "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p"
        + "\tname\taddl\tnotice\tpeer\tsource\n"
        + "#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tbool\tstring\tstring\n"
        + "1521911720.5\tCw1\t10.0.0.1\t1\t10.0.0.2\t2\tbad_TCP_checksum\t-\tF\tzeek\tTCP\n"
    )
    (alert,) = _from_text(text, "weird.log")
    assert alert.signature == "weird:bad_TCP_checksum"
    assert alert.severity == "low" and "weird" in alert.tags
    assert alert.extra["zeek"]["notice"] is False
    (json_alert,) = _from_text('{"_path":"weird","ts":1521911720.5,"name":"dns_unmatched_msg"}\n')
    assert json_alert.title == "Zeek weird: dns_unmatched_msg" and json_alert.observables == []


def test_tsv_hex_escapes_are_decoded() -> None:
    fields = "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tquery\tanswers\n"
    types = "#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tvector[string]\n"
    row = "1.0\tC1\t10.0.0.1\t1\t10.0.0.2\t53\twww\\x2eexample\\x2eorg"
    row += "\tcdn\\x2cnet.example,192.0.2.1\n"
    (alert,) = _from_text(HEADER.replace("conn", "dns") + fields + types + row, "dns.log")
    assert alert.extra["zeek"]["query"] == "www.example.org"
    assert alert.extra["zeek"]["answers"] == ["cdn,net.example", "192.0.2.1"]
    assert "domain:www.example.org" in {o.key for o in alert.observables}
