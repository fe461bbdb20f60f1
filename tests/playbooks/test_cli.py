"""``pukara playbook`` end to end in-process: run a library playbook on a case opened from a
real sample, follow it with ``status --json``, refuse an analyst's approval, reject, retry,
approve as the coordinator, tick it to the end and deliver its notifications."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases.services.identity import Role
from pukara.cli import main
from tests.playbooks.kit import ANALYST, add_entities, make_services, open_case


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_playbook_commands(pukara_home: Path, shared_data: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    built = make_services()
    add_entities(built)
    built.identity.add_user("cora", Role.COORDINATOR)
    built.identity.add_user("ana", Role.ANALYST)
    case_id = open_case(built, shared_data / "shadowserver" / "compromised_website.csv",
                        classification="intrusions/defacement")
    number = built.cases.get(case_id)["number"]
    built.close()

    listing = run_json(capsys, "playbook", "list")
    assert [p["id"] for p in listing][:2] == ["compromised-account", "ddos"]  # type: ignore[index]
    shown = run_json(capsys, "playbook", "show", "web-defacement")
    assert [s["id"] for s in shown["steps"]] == [  # type: ignore[index]
        "preserve", "enrich", "contain", "entry-point", "restore", "share"]

    view = run_json(capsys, "playbook", "run", "web-defacement", number)
    run_id = view["run_id"]  # type: ignore[index]
    assert {s["id"]: s["state"] for s in view["steps"]} == {  # type: ignore[index]
        "preserve": "waiting", "enrich": "done", "contain": "pending",
        "entry-point": "pending", "restore": "pending", "share": "pending"}

    assert main(["playbook", "done", run_id, "contain"]) == 1
    assert "step contain is not a manual step waiting" in capsys.readouterr().err
    after = run_json(capsys, "playbook", "done", run_id, "preserve", "--as", "ana",
                     "--note", "page and logs saved")
    assert {s["id"]: s["state"] for s in after["steps"]}["entry-point"] == (  # type: ignore[index]
        "waiting")
    again = make_services()
    [task] = [t for t in again.tasks.list(case_id) if t["status"] != "done"]
    again.tasks.set_status(task["id"], "done", ANALYST)
    assert again.tasks.list(case_id)[0]["notes"].endswith("page and logs saved")
    again.close()
    assert run_json(capsys, "playbook", "tick") == {"running": 1}

    assert main(["playbook", "approve", run_id, "restore", "--as", "ana"]) == 1
    assert "approving restore needs the coordinator role" in capsys.readouterr().err
    rejected = run_json(capsys, "playbook", "reject", run_id, "restore", "--as", "cora",
                        "--note", "site still shows the defacement")
    restore = next(s for s in rejected["steps"] if s["id"] == "restore")  # type: ignore[index]
    assert (restore["state"], restore["error"]) == (
        "failed", "rejected by cora: site still shows the defacement")
    retried = run_json(capsys, "playbook", "retry", run_id, "restore", "--as", "ana")
    assert next(s["state"] for s in retried["steps"]  # type: ignore[index]
                if s["id"] == "restore") == "waiting"
    approved = run_json(capsys, "playbook", "approve", run_id, "restore", "--as", "cora")
    assert approved["state"] == "done"  # type: ignore[index]
    [status] = run_json(capsys, "playbook", "status", number)  # type: ignore[misc]
    assert status["steps"][-1]["output"]["pushed"] is False
    assert status["steps"][4]["decided_by"] == "cora"

    delivered = run_json(capsys, "playbook", "deliver")
    assert delivered == {"sent": 1, "retried": 1, "dead": 0,
                         "outbox": {"pending": 1, "sent": 1}}
