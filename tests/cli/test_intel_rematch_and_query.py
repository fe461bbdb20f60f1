"""`pukara intel rematch`: intel that arrives later lights up stored alerts, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pukara.cli import main

SAMPLE = "suricata/Muntaha-Ghafoor-eve.json"
SCANNER = "192.168.137.128"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_rematch_adds_new_hits_once(pukara_home: Path, shared_data: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "ingest", str(shared_data / SAMPLE), "--json")
    stored = run(capsys, "alerts", "list", "--json", "--limit", "1000")
    carrying = []
    for summary in stored:
        alert = run(capsys, "alerts", "show", str(summary["id"]), "--json")["alert"]
        if any(o["value"] == SCANNER for o in alert["observables"]):
            carrying.append(summary["id"])
        assert alert["hits"] == []
    assert len(carrying) == 36, "alerts of the sample that carry the scanner's address"
    # a partner shares the scanner's address afterwards (constructed one-line list)
    shared = tmp_path / "partner-iocs.txt"
    shared.write_text(f"{SCANNER}\n")
    assert run(capsys, "intel", "load", str(shared), "--json")["loaded"] == 1
    first = run(capsys, "intel", "rematch", "--json")
    assert first == {"examined": len(stored), "updated": 36, "new_hits": 36}
    assert run(capsys, "intel", "rematch", "--json")["updated"] == 0
    lit = run(capsys, "alerts", "show", str(carrying[0]), "--json")
    assert [(h["kind"], h["indicator"]) for h in lit["alert"]["hits"]] == [
        ("indicator", SCANNER)]
    assert lit["hits"] == 1
    assert run(capsys, "intel", "rematch", "--since", "1m", "--json")["examined"] == 0
    assert run(capsys, "audit", "verify", "--json")["ok"] is True


def test_alerts_list_query_with_free_text_uses_the_search_index(
        pukara_home: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "ingest", str(shared_data / SAMPLE), "--json")
    listed = run(capsys, "alerts", "list", "--query", '"Nmap SYN Port Scan" status:new',
                 "--json")
    assert [a["title"] for a in listed] == ["Nmap SYN Port Scan Detected"]
    fields_only = run(capsys, "alerts", "list", "--query", "severity:>=low", "--json")
    assert "Nmap SYN Port Scan Detected" in {a["title"] for a in fields_only}
