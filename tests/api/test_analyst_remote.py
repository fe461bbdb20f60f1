"""The TUI's RemoteClient against a real ``pukara serve`` on loopback with an analyst token:
the Suricata sample ``suricata/mkhairin-eve.json`` is sent by entity A over HTTP, then the
analyst lists the high alerts, promotes two, reads the case, finishes a task and searches —
every call a real request through the gate, the routes and the services.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pukara.core import errors
from tests.api.conftest import PEPPER, ApiEnv, Principals
from tests.api.live import LiveServer
from tui.client.base import AlertQuery, CaseQuery
from tui.client.remote import RemoteClient

NMAP = "ET SCAN Possible Nmap User-Agent Observed"


def test_remote_client_round_trip_on_a_live_server(api_env: ApiEnv, shared_data: Path,
                                                   tmp_path: Path) -> None:
    tokens = api_env.tokens
    sample = (shared_data / "suricata/mkhairin-eve.json").read_bytes()
    with LiveServer(api_env.settings.home, pepper=PEPPER, log=tmp_path / "server.log") as server:
        sent = httpx.post(f"{server.url}/api/v1/alerts?format=suricata", content=sample,
                          headers={**Principals.bearer(tokens.a),
                                   "Content-Type": "application/octet-stream"}, timeout=30)
        assert sent.json()["accepted"] == 14
        client = RemoteClient(server.url, tokens.analyst)
        try:
            page = client.alert_page(AlertQuery(text="severity:>=high", sort="id"))
            assert [r["id"] for r in page.rows] == [6, 8, 10, 12]
            assert (page.total, {r["title"] for r in page.rows}) == (4, {NMAP})
            opened = client.promote([6, 8], title="Escaneo Nmap desde 192.168.113.110")
            number = opened["number"]
            httpx.post(f"{server.url}/api/v1/analyst/cases/{number}/tasks",
                       json={"title": "Bloquear 192.168.113.110"},
                       headers=Principals.bearer(tokens.analyst)).raise_for_status()
            case = client.case(number)
            assert [a["id"] for a in case["alerts"]] == [6, 8]
            assert case["title"] == "Escaneo Nmap desde 192.168.113.110"
            task = next(t for t in case["tasks"] if t["title"] == "Bloquear 192.168.113.110")
            assert client.set_task_status(task["id"], "done")["status"] == "done"
            cases = client.case_page(CaseQuery())
            assert ([r["number"] for r in cases.rows], cases.rows[0]["alerts"]) == ([number], 2)
            found = client.search("nmap")
            assert [c["number"] for c in found["cases"]] == [number]
            assert sorted(a["id"] for a in found["alerts"]) == [6, 7, 8, 9, 10, 11, 12, 13]
            with pytest.raises(errors.NotFound):
                client.case("CASE-2026-999999")
            with pytest.raises(errors.InvalidInput):
                client.alert_page(AlertQuery(sort="entity_id"))
        finally:
            client.close()
        outsider = RemoteClient(server.url, tokens.a)
        try:
            with pytest.raises(errors.PermissionDenied):
                outsider.alert_page(AlertQuery())
        finally:
            outsider.close()


def test_remote_playbook_calls_on_a_live_server(api_env: ApiEnv, tmp_path: Path) -> None:
    """Start the shipped phishing playbook on a case over HTTP, finish its manual analysis
    step, and see an analyst's approval refused (approvals are the coordinator's)."""
    tokens = api_env.tokens
    with LiveServer(api_env.settings.home, pepper=PEPPER, log=tmp_path / "server.log") as server:
        client = RemoteClient(server.url, tokens.analyst)
        try:
            created = httpx.post(f"{server.url}/api/v1/analyst/cases",
                                 json={"title": "Campaña de phishing a funcionarios",
                                       "classification": "fraud/phishing"},
                                 headers=Principals.bearer(tokens.analyst), timeout=30)
            assert created.status_code == 201
            number = created.json()["number"]
            listed = client.playbooks(number)
            assert listed[0]["id"] == "phishing" and listed[0]["matches"] is True
            run = client.playbook_start("phishing", number)
            assert run["playbook"] == "phishing"
            states = {s["id"]: s["state"] for s in run["steps"]}
            assert states["analyse"] == "waiting"
            after = client.playbook_step_done(run["run_id"], "analyse")
            assert {s["id"]: s["state"] for s in after["steps"]}["analyse"] == "done"
            assert [r["run_id"] for r in client.playbook_status(number)] == [run["run_id"]]
            waiting = [s["id"] for s in after["steps"] if s["kind"] == "approval"]
            with pytest.raises(errors.PermissionDenied):
                client.playbook_approve(run["run_id"], waiting[0], "ok")
        finally:
            client.close()
