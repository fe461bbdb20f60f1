"""`pukara watch`: spool folders per entity and a Maildir of e-mailed reports, once each."""

from __future__ import annotations

import json
import mailbox
import shutil
import sqlite3
from pathlib import Path

import pytest

from pukara.cli import main

TRUSTED = "mx.cnsd.example"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_spool_folder_files_are_ingested_once_per_entity(
        pukara_home: Path, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "entity", "add", "minsa", "--name", "Ministerio de Salud", "--sector", "health",
        "--json")
    spool = tmp_path / "spool"
    (spool / "minsa").mkdir(parents=True)
    (spool / "ghost").mkdir()
    shutil.copy(shared_data / "suricata/mkhairin-eve.json", spool / "minsa" / "eve.json")
    shutil.copy(shared_data / "shadowserver/scan_ftp.csv", spool / "ghost" / "scan_ftp.csv")
    first = run(capsys, "watch", str(spool), "--once", "--json")
    assert (first["accepted"], first["duplicates"], first["skipped"]) == (14, 15, 9)
    assert (spool / "minsa" / "done" / "eve.json").exists()
    reason = (spool / "ghost" / "failed" / "scan_ftp.csv.reason.txt").read_text()
    assert "ghost" in reason
    again = run(capsys, "watch", str(spool), "--once", "--json")
    assert (again["accepted"], again["duplicates"]) == (0, 0)
    db = sqlite3.connect(pukara_home / "pukara.db")
    owners = {row[0] for row in db.execute("SELECT DISTINCT entity_id FROM alerts")}
    assert owners == {"minsa"}


def _maildir_with(tmp_path: Path, shared_data: Path) -> Path:
    box = mailbox.Maildir(tmp_path / "inbox", create=True)
    raw = (shared_data / "email/mail_3.eml").read_bytes()
    # constructed: the real message as our own MTA would store it after a passing DMARC check
    vouched = (f"Authentication-Results: {TRUSTED}; dmarc=pass header.from=acm.org\r\n"
               .encode() + raw)
    forged = (b"Authentication-Results: mx.elsewhere.example; dmarc=pass "
              b"header.from=acm.org\r\n" + raw)
    box.add(vouched)
    box.add(forged)
    return tmp_path / "inbox"


def test_maildir_reports_are_attributed_only_when_our_mta_vouches(
        pukara_home: Path, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUKARA_MAIL_AUTHSERV_ID", TRUSTED)
    run(capsys, "entity", "add", "acm", "--name", "ACM (test entity)", "--sector", "education",
        "--email", "mlemos@acm.org", "--json")
    inbox = _maildir_with(tmp_path, shared_data)
    result = run(capsys, "watch", str(inbox), "--maildir", "--once", "--json")
    assert (result["accepted"], result["rejected"]) == (2, 0)
    db = sqlite3.connect(pukara_home / "pukara.db")
    incidents = db.execute("SELECT entity_id, title FROM incidents").fetchall()
    assert incidents == [("acm", "Testing Manuel Lemos' MIME E-mail composing and sending "
                                 "PHP class: HTML message")]
    unassigned = db.execute("SELECT entity_id FROM alerts WHERE source != 'correlation'")
    assert [row[0] for row in unassigned] == [None], "the unvouched copy waits for triage"
    assert run(capsys, "watch", str(inbox), "--maildir", "--once", "--json")["accepted"] == 0
