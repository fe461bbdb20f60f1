"""Wazuh alerts.json parser.

No real, licensed Wazuh alerts.json exists in shared/data (its MANIFEST says so). The
records below are CONSTRUCTED after Wazuh's documented alert format (rule, agent, manager,
decoder, data, syscheck, full_log, location, id, timestamp); they are not real output.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson

from collectors.parsers.wazuh import WazuhAlertParser, severity_of
from pukara.core.schema import Alert, ParseFailure, RawReport

SSH_INVALID_USER = {  # constructed
    "timestamp": "2024-10-22T19:09:52.434+0000",
    "rule": {
        "level": 5,
        "description": "sshd: Attempt to login using a non-existent user",
        "id": "5710",
        "mitre": {
            "id": ["T1110.001"],
            "tactic": ["Credential Access"],
            "technique": ["Password Guessing"],
        },
        "firedtimes": 1,
        "mail": False,
        "groups": ["syslog", "sshd", "invalid_login", "authentication_failed"],
    },
    "agent": {"id": "001", "name": "web-01", "ip": "10.0.2.15"},
    "manager": {"name": "wazuh-manager"},
    "id": "1729624192.123456",
    "full_log": "Oct 22 19:09:51 web-01 sshd[1234]: Invalid user admin from 198.51.100.7 "
    "port 52211",
    "decoder": {"parent": "sshd", "name": "sshd"},
    "data": {"srcip": "198.51.100.7", "srcport": "52211", "srcuser": "admin"},
    "location": "/var/log/auth.log",
}
SYSCHECK_MODIFIED = {  # constructed
    "timestamp": "2024-10-22T20:00:00.000+0000",
    "rule": {
        "level": 7,
        "description": "Integrity checksum changed.",
        "id": "550",
        "groups": ["ossec", "syscheck", "syscheck_entry_modified", "syscheck_file"],
    },
    "agent": {"id": "002", "name": "db-01"},
    "manager": {"name": "wazuh-manager"},
    "id": "1729627200.777",
    "syscheck": {
        "path": "/usr/bin/passwd",
        "event": "modified",
        "md5_after": "44d88612fea8a8f36de82e1278abb02f",
        "sha1_after": "3395856ce81f2b7382dee72602f798b642f14140",
        "sha256_after": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
    },
    "location": "syscheck",
}


def _parse(*lines: bytes) -> list:
    report = RawReport(
        stream=io.BytesIO(b"\n".join(lines) + b"\n"), source="t", filename="alerts.json"
    )
    return list(WazuhAlertParser().parse(report))


def test_ssh_invalid_user_alert() -> None:
    (alert,) = _parse(orjson.dumps(SSH_INVALID_USER))
    assert isinstance(alert, Alert)
    assert alert.title == "sshd: Attempt to login using a non-existent user"
    assert alert.signature_id == "5710"
    assert str(alert.classification) == "intrusion-attempts/brute-force"
    assert alert.severity == "low"  # level 5
    assert alert.observed_at == datetime(2024, 10, 22, 19, 9, 52, 434000, tzinfo=UTC)
    assert [(o.key, o.role) for o in alert.observables] == [
        ("ipv4:198.51.100.7", "src"),
        ("ipv4:10.0.2.15", "agent"),
    ]
    assert alert.flow is not None and alert.flow.src_port == 52211
    assert "mitre:T1110.001" in alert.tags and "invalid_login" in alert.tags
    assert alert.extra["agent"]["name"] == "web-01"
    assert alert.description.startswith("Oct 22 19:09:51 web-01 sshd[1234]")
    assert alert.source_ref == "1729624192.123456"


def test_syscheck_hashes() -> None:
    (alert,) = _parse(orjson.dumps(SYSCHECK_MODIFIED))
    assert [o.key for o in alert.observables] == [
        "sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
        "sha1:3395856ce81f2b7382dee72602f798b642f14140",
        "md5:44d88612fea8a8f36de82e1278abb02f",
        "filename:/usr/bin/passwd",
    ]
    assert str(alert.classification) == "other/undetermined"
    assert alert.flow is None


def test_level_to_severity() -> None:
    levels = {
        0: "info",
        3: "info",
        4: "low",
        7: "low",
        8: "medium",
        11: "medium",
        12: "high",
        15: "critical",
    }
    assert {level: severity_of(level).value for level in levels} == levels


def test_bad_lines_are_located() -> None:
    good = orjson.dumps(SSH_INVALID_USER)
    records = _parse(
        good,
        b'{"agent": {"id": "001"}}',  # no rule
        b'{"rule": {"level": 3, "id": "1"}, "timestamp": "not a time"}',
        b'{"rule": {"level": 3}, "data": {"srcport": "99999999", "srcip": "1.2.3.4"}}',
        good[:40],
        good,
    )
    kinds = [type(r).__name__ for r in records]
    assert kinds == ["Alert", "ParseFailure", "ParseFailure", "Alert", "ParseFailure", "Alert"]
    assert [r.line for r in records if isinstance(r, ParseFailure)] == [2, 3, 5]
    assert "no 'rule' object" in records[1].reason
    assert records[3].flow is not None and records[3].flow.src_port is None  # bad port dropped


def test_sniff() -> None:
    parser = WazuhAlertParser()
    assert parser.sniff(orjson.dumps(SSH_INVALID_USER))
    assert not parser.sniff(b'{"event_type":"alert","alert":{}}')
