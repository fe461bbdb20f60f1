"""The CLI contract of ``pukara alerts`` and ``pukara case`` (ARCHITECTURE.md) on the real
Muntaha Suricata sample: one JSON document with --json, errors on stderr with exit 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pukara.cli import main

NMAP = "Nmap SYN Port Scan Detected"
Capsys = pytest.CaptureFixture[str]


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: Capsys, *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def loaded(pukara_home: Path, shared_data: Path, capsys: Capsys) -> Path:
    assert run(capsys, "entity", "add", "minsa", "--name", "Minsa", "--sector", "health")[0] == 0
    result = run_json(capsys, "ingest", str(shared_data / "suricata/Muntaha-Ghafoor-eve.json"),
                      "--format", "suricata", "--entity", "minsa")
    assert result["accepted"] == 56
    return pukara_home


def test_alerts_list_query_and_groups(loaded: Path, capsys: Capsys) -> None:
    rows = run_json(capsys, "alerts", "list", "--query", "status:new severity:>=low")
    assert len(rows) == 6 and all("id" in r for r in rows)
    assert {r["title"] for r in rows} >= {NMAP, "ICMP Ping Detected"}
    groups = run_json(capsys, "alerts", "groups", "--query", "class:intrusion-attempts")
    nmap = next(g for g in groups if g["title"] == NMAP)
    assert (nmap["alerts"], nmap["events"], nmap["observable"]) == (1, 50, "ipv4:192.168.137.1")
    assert run_json(capsys, "alerts", "list", "--query", "ransomware") == []
    words = run_json(capsys, "alerts", "list", "--query", "metasploit status:new")
    assert [r["title"] for r in words] == ["Possible Metasploit Connection"]


def test_promote_then_case_show_close_and_tasks(loaded: Path, capsys: Capsys) -> None:
    nmap_id = next(r["id"] for r in run_json(capsys, "alerts", "list")
                   if r["title"] == NMAP)
    promoted = run_json(capsys, "alerts", "promote", str(nmap_id))
    case_id = promoted["case_id"]
    shown = run_json(capsys, "case", "show", case_id)
    assert (shown["title"], shown["status"]) == (NMAP, "new")
    assert [o["value"] for o in shown["observables"]] == ["192.168.137.1", "192.168.137.128"]
    assert run_json(capsys, "alerts", "show", str(nmap_id))["case_id"] == case_id

    task = run_json(capsys, "case", "task", "add", shown["number"], "--title", "Call minsa",
                    "--due", "2026-12-01T12:00:00Z")
    done = run_json(capsys, "case", "task", "done", task["id"][:8], "--note", "called")
    assert (done["status"], done["notes"]) == ("done", "called")
    assert [t["status"] for t in run_json(capsys, "case", "task", "list", case_id)] == ["done"]

    note = run_json(capsys, "case", "note", case_id, "scan began", "--at",
                    "2026-06-12T08:08:55Z")
    assert note["event_at"] == "2026-06-12T08:08:55Z"
    run_json(capsys, "case", "comment", case_id, "lab traffic?")

    code, _, err = run(capsys, "case", "close", case_id, "--resolution", "false-positive",
                       "--summary", " ")
    assert code == 1 and "needs a summary" in err
    closed = run_json(capsys, "case", "close", case_id, "--resolution", "false-positive",
                      "--summary", "lab scan")
    assert (closed["status"], closed["resolution"]) == ("closed", "false-positive")
    timeline = [e["action"] for e in closed["timeline"]]
    assert timeline[0] == "note" and timeline[-1] == "case.close"
    assert run_json(capsys, "case", "list") == []
    assert [c["number"] for c in run_json(capsys, "case", "list", "--all")] == [
        closed["number"]]


def test_case_new_update_merge(loaded: Path, capsys: Capsys) -> None:
    created = run_json(capsys, "case", "new", "--title", "Hospital", "--entity", "minsa",
                       "--template", "ransomware", "--tlp", "amber")
    assert {"id", "number"} <= set(created)
    assert (created["severity"], len(created["tasks"])) == ("critical", 6)
    other = run_json(capsys, "case", "new", "--title", "Scan", "--severity", "low",
                     "--classification", "information-gathering/scanner",
                     "--technique", "T1046")
    updated = run_json(capsys, "case", "update", other["number"], "--status", "in-progress",
                       "--assignee", "ana", "--add-entity", "minsa")
    assert (updated["status"], updated["assignee"], updated["entity_ids"]) == (
        "in-progress", "ana", ["minsa"])
    merged = run_json(capsys, "case", "merge", created["number"], other["number"])
    assert len(merged["tasks"]) == 6 and merged["techniques"][-1] == "T1046"
    source = run_json(capsys, "case", "show", other["id"])
    assert (source["status"], source["merged_into"]) == ("closed", created["id"])
    code, _, err = run(capsys, "case", "new", "--title", "x", "--technique", "T12")
    assert code == 1 and "ATT&CK" in err


def test_dismiss_needs_ids_query_or_group(loaded: Path, capsys: Capsys) -> None:
    code, _, err = run(capsys, "alerts", "dismiss")
    assert code == 1 and "exactly one" in err
    result = run_json(capsys, "alerts", "dismiss", "--query", "status:new severity:info",
                      "--reason", "out-of-scope")
    assert (result["changed"], result["status"]) == (50, "dismissed")
    group = run_json(capsys, "alerts", "groups")[0]
    acked = run_json(capsys, "alerts", "ack", "--group", group["key"])
    assert acked["changed"] == group["alerts"]
