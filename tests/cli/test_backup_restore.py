"""SECURITY I7: backup and restore drill — every evidence row has its file with a matching
hash after restore, counts match, the audit chain verifies; a damaged backup is caught."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cases.services.identity import Principal, Role
from pukara.cli import main
from pukara.core.config import load_settings
from pukara.core.schema import Entity, IncidentReport
from pukara.wiring import build_services


def _fill(shared_data: Path) -> dict[str, int]:
    built = build_services(load_settings())
    try:
        built.identity.add_entity(Entity(id="minsa", name="MINSA", sector="health"))
        principal = Principal(Role.REPORTER, 0, entity_id="minsa")
        with built.store.write() as conn:
            view = built.intake.submit(conn, principal, IncidentReport(
                title="Correo malicioso", classification="fraud/phishing",
                detected_at="2026-11-01T10:00:00Z"))
        for name in ("mail_2.eml", "mail_3.eml"):
            data = (shared_data / "email" / name).read_bytes()
            with built.store.write() as conn:
                built.incidents.add_evidence(conn, principal, view["id"], filename=name,
                                             content_type="message/rfc822",
                                             stream=io.BytesIO(data), max_bytes=10**6)
        return {"evidence": 2}
    finally:
        built.close()


def test_backup_then_restore_into_an_empty_home_is_complete(
        pukara_home: Path, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(shared_data)
    assert main(["ingest", str(shared_data / "suricata/mkhairin-eve.json"), "--json"]) == 0
    capsys.readouterr()
    target = tmp_path / "backup"
    assert main(["backup", str(target), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["counts"]["evidence"] == 2 and manifest["counts"]["alerts"] == 14
    assert len(manifest["evidence"]) == 2
    restored_home = tmp_path / "restored"
    monkeypatch.setenv("PUKARA_HOME", str(restored_home))
    assert main(["restore", str(target), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == manifest["counts"] and report["problems"] == []
    assert report["audit_entries"] == manifest["counts"]["audit_log"]


def test_a_damaged_backup_is_reported_by_the_restore_check(
        pukara_home: Path, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(shared_data)
    target = tmp_path / "backup"
    assert main(["backup", str(target), "--json"]) == 0
    sha = json.loads(capsys.readouterr().out)["evidence"][0]
    (target / "evidence" / sha[:2] / sha).write_bytes(b"flipped")
    monkeypatch.setenv("PUKARA_HOME", str(tmp_path / "restored"))
    assert main(["restore", str(target)]) == 1
    assert f"file {sha} does not match its hash" in capsys.readouterr().err
