"""The CLI contract of init, entity, user and audit (ARCHITECTURE.md)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pukara.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_entity_registry_round_trip(pukara_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init", "--json")[0] == 0
    code, out, _ = run(capsys, "entity", "add", "minsa", "--name", "Ministerio de Salud",
                       "--sector", "health", "--cidr", "190.1.0.0/16", "--asn", "6147",
                       "--domain", "minsa.gob.pe", "--email", "CSIRT@minsa.gob.pe", "--json")
    assert code == 0
    added = json.loads(out)
    assert added["cidrs"] == ["190.1.0.0/16"] and added["asns"] == [6147]
    assert added["contacts"][0]["email"] == "CSIRT@minsa.gob.pe"
    code, out, _ = run(capsys, "entity", "list", "--json")
    assert [e["id"] for e in json.loads(out)] == ["minsa"]
    code, out, err = run(capsys, "entity", "add", "minsa", "--name", "x", "--sector", "y")
    assert code == 1 and "already exists" in err


def test_entity_token_prints_only_the_token_last(pukara_home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "entity", "add", "onpe", "--name", "ONPE", "--sector", "government")
    code, out, err = run(capsys, "entity", "token", "onpe")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("pk_") and len(token) == 46
    assert token not in err
    db = sqlite3.connect(pukara_home / "pukara.db")
    assert token not in json.dumps(db.execute("SELECT * FROM tokens").fetchall())
    assert token not in json.dumps(db.execute("SELECT * FROM audit_log").fetchall())


def test_entity_import_reports_the_bad_entry(pukara_home: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "entities.yaml"
    good.write_text(
        "entities:\n"
        "  - {id: minsa, name: Ministerio de Salud, sector: health, cidrs: [190.1.0.0/16]}\n"
        "  - {id: sunat, name: SUNAT, sector: finance, domains: [sunat.gob.pe]}\n"
    )
    assert run(capsys, "entity", "import", str(good), "--json")[1].strip().endswith("}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: ok-one, name: A, sector: health}\n- {id: Bad Id, name: B, sector: x}\n")
    code, _, err = run(capsys, "entity", "import", str(bad))
    assert code == 1 and "entry 2" in err and "id" in err
    code, out, _ = run(capsys, "entity", "list", "--json")
    assert [e["id"] for e in json.loads(out)] == ["minsa", "sunat"]


def test_user_accounts(pukara_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "user", "add", "ana", "--role", "analyst")[0] == 0
    code, out, _ = run(capsys, "user", "token", "ana")
    assert code == 0 and out.strip().splitlines()[-1].startswith("pk_")
    code, out, _ = run(capsys, "user", "list", "--json")
    assert [(u["name"], u["role"]) for u in json.loads(out)] == [("ana", "analyst")]


def test_audit_verify_fails_after_a_row_is_edited(pukara_home: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "entity", "add", "minsa", "--name", "Ministerio", "--sector", "health")
    run(capsys, "entity", "token", "minsa")
    code, out, _ = run(capsys, "audit", "verify", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "entries": 2}
    db = sqlite3.connect(pukara_home / "pukara.db")
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    db.commit()
    db.close()
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1
    assert "audit entry 1 does not verify" in err


def test_the_progress_bar_draws_on_a_terminal_without_a_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # commands that fork workers (bulk ingest, YARA scans) fork only from a single thread
    import io
    import threading

    from rich.console import Console

    from pukara.cli import output

    screen = Console(file=io.StringIO(), force_terminal=True, width=80)
    monkeypatch.setattr(output, "_err", screen)
    with output.progress() as bar:
        task = bar.add_task("ingest", total=4)
        bar.advance(task)
        threads = threading.active_count()
        drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert threads == 1
    assert "ingest" in drawn and "25%" in drawn
