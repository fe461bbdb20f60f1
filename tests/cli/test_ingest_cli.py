"""`pukara ingest`: the JSON summary contract, per-file errors, and column mappings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pukara.cli import main

CERT_EU = "intelmq-feeds/cert_eu_example.csv"


def test_generic_csv_with_a_command_line_mapping(pukara_home: Path, shared_data: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(shared_data / CERT_EU), "--format", "csv",
                 "--map", "source.ip=source ip", "--map", "time.source=source time",
                 "--map", "classification.type=type", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"accepted": 2, "duplicates": 0, "rejected": 0, "skipped": 0,
                       "errors": []}
    assert main(["alerts", "list", "--json"]) == 0
    listed = {a["classification"]: a for a in json.loads(capsys.readouterr().out)}
    phishing = listed["fraud/phishing"]
    assert main(["alerts", "show", str(phishing["id"]), "--json"]) == 0
    alert = json.loads(capsys.readouterr().out)["alert"]
    assert {"type": "ipv4", "value": "144.76.221.34"} in [
        {"type": o["type"], "value": o["value"]} for o in alert["observables"]]


def test_unreadable_and_unknown_files_are_reported_and_the_rest_goes_on(
        pukara_home: Path, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"\x00\x01\x02 not any known format \xff")
    code = main(["ingest", str(junk), str(shared_data / "suricata/mkhairin-eve.json"),
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert (summary["accepted"], summary["rejected"]) == (14, 1)
    assert summary["errors"][0]["source"].endswith("notes.bin")
    assert "cannot tell the format" in summary["errors"][0]["error"]


def test_bad_map_flag_is_refused(pukara_home: Path, capsys: pytest.CaptureFixture[str],
                                 shared_data: Path) -> None:
    assert main(["ingest", str(shared_data / CERT_EU), "--map", "source.ip"]) == 1
    assert "FIELD=COLUMN" in capsys.readouterr().err


def test_an_emailed_report_opens_a_case_and_starts_its_playbook(
        pukara_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["entity", "add", "minsa", "--name", "MINSA", "--sector", "health"]) == 0
    mail = tmp_path / "ransom.eml"
    # constructed report in the form entity CSIRTs mail in (class/type in the subject)
    mail.write_bytes(
        b"From: CSIRT MINSA <csirt@minsa.example.pe>\r\nTo: incidentes@cnsd.example\r\n"
        b"Subject: [malicious-code/ransomware] Servidores cifrados en sede central\r\n"
        b"Date: Mon, 02 Nov 2026 09:00:00 -0500\r\n\r\n"
        b"Nota de rescate con contacto hxxp://pay-now[.]example/ransom\r\n")
    capsys.readouterr()
    assert main(["ingest", str(mail), "--entity", "minsa", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 1
    from datetime import UTC, datetime

    number = f"CASE-{datetime.now(UTC).year}-000001"
    assert main(["playbook", "status", number, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [run["playbook"] for run in runs] == ["ransomware"]
    assert runs[0]["steps"][0]["state"] == "done"
