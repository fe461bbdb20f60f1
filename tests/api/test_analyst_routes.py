"""The analyst API over real data: the Suricata sample ``suricata/mkhairin-eve.json``
(14 stored alerts for entity A: 4 "ET SCAN Possible Nmap User-Agent Observed" at high, ids
6, 8, 10, 12) sent by entity A through ``POST /api/v1/alerts``, then triaged, promoted,
worked as a case and exported by staff tokens. Also the entity feeds (advisories, inbox)
with exact visible sets, TLP:RED incidents, the B3/B11 refusals and the audit trail (J1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from cases.api.problems import NOT_FOUND_DETAIL
from cases.store.tables import audit_log
from playbooks.notify import build_notifications
from playbooks.tables import inbox_messages
from tests.api.conftest import ENTITY_A, ENTITY_B, ApiEnv, Principals, incident_body

bearer = Principals.bearer
A = "/api/v1/analyst"
SURICATA_SAMPLE = "suricata/mkhairin-eve.json"
NMAP_IDS = [6, 8, 10, 12]
#: alerts whose documents hold the word "nmap" (the scan alerts and the HTTP and file
#: records of the Nmap scripting engine's requests)
NMAP_WORD_IDS = [6, 7, 8, 9, 10, 11, 12, 13]


@dataclass
class Desk:
    """A client with the sample ingested and the analyst's headers."""

    client: TestClient
    env: ApiEnv
    staff: dict[str, str]

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET an analyst route as the analyst; the JSON of a 200."""
        response = self.client.get(A + path, headers=self.staff, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def send(self, method: str, path: str, body: dict[str, Any], status: int = 200) -> Any:
        """A write as the analyst; the JSON of the expected status."""
        response = self.client.request(method, A + path, json=body, headers=self.staff)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def desk(client: TestClient, api_env: ApiEnv, shared_data: Path) -> Iterator[Desk]:
    """The sample ingested as entity A."""
    data = (shared_data / SURICATA_SAMPLE).read_bytes()
    response = client.post("/api/v1/alerts?format=suricata", content=data,
                           headers={**bearer(api_env.tokens.a),
                                    "Content-Type": "application/octet-stream"})
    assert response.json()["accepted"] == 14
    yield Desk(client, api_env, bearer(api_env.tokens.analyst))


def audit_actions(env: ApiEnv, actor: str) -> list[str]:
    """The audit log's actions by ``actor``, in order."""
    with env.store.read() as conn:
        query = select(audit_log.c.action).where(audit_log.c.actor == actor).order_by(
            audit_log.c.seq)
        return [row.action for row in conn.execute(query)]


def test_alert_page_filters_sorts_and_counts(desk: Desk) -> None:
    page = desk.get("/alerts", params={"sort": "id", "limit": 5, "offset": 10})
    assert [a["id"] for a in page["items"]] == [11, 12, 13, 14]
    assert (page["total"], page["total_capped"]) == (14, False)
    high = desk.get("/alerts", params={"q": "severity:>=high", "sort": "id"})
    assert [a["id"] for a in high["items"]] == NMAP_IDS
    assert {a["title"] for a in high["items"]} == {"ET SCAN Possible Nmap User-Agent Observed"}
    words = desk.get("/alerts", params={"q": "nmap", "sort": "id"})
    assert ([a["id"] for a in words["items"]], words["total"]) == (NMAP_WORD_IDS, 8)
    busiest = desk.get("/alerts", params={"sort": "-count", "limit": 1})["items"][0]
    assert (busiest["id"], busiest["count"]) == (1, 9)
    one = desk.get("/alerts/6")
    assert one["alert"]["title"] == "ET SCAN Possible Nmap User-Agent Observed"
    assert one["entity_id"] == ENTITY_A and one["raw"]


@pytest.mark.parametrize(("params", "field"), [
    ({"sort": "(SELECT 1)"}, "sort"), ({"sort": "entity_id"}, "sort"),
    ({"limit": 10**9}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
])
def test_alert_sort_and_limit_are_allow_listed(desk: Desk, params: dict[str, Any],
                                               field: str) -> None:
    response = desk.client.get(f"{A}/alerts", params=params, headers=desk.staff)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_case_list_refuses_unknown_sort_and_status(desk: Desk) -> None:
    for params, field in (({"sort": "entity_id"}, "sort"), ({"status": "pwned"}, "status"),
                          ({"limit": 1001}, "limit")):
        response = desk.client.get(f"{A}/cases", params=params, headers=desk.staff)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/alerts/promote", {"ids": [6], "entity_id": ENTITY_B}, "entity_id"),
    ("POST", "/alerts/ack", {"ids": [6], "status": "promoted"}, "status"),
    ("POST", "/cases", {"title": "x", "created_by": "root"}, "created_by"),
    ("POST", "/advisories", {"title": "x", "summary": "y", "role": "admin"}, "role"),
])
def test_bodies_refuse_server_owned_fields(desk: Desk, method: str, path: str,
                                           body: dict[str, Any], field: str) -> None:
    response = desk.client.request(method, A + path, json=body, headers=desk.staff)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert desk.get("/alerts/6")["status"] == "new"
    assert desk.get("/cases")["total"] == 0


def test_triage_changes_statuses_and_is_audited(desk: Desk) -> None:
    assert desk.send("POST", "/alerts/ack", {"ids": [1, 2]}) == {"changed": [1, 2]}
    bad = desk.client.post(f"{A}/alerts/dismiss", json={"ids": [3], "reason": "boring"},
                           headers=desk.staff)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
    assert desk.send("POST", "/alerts/dismiss", {"ids": [3], "reason": "false-positive"}
                     ) == {"changed": [3]}
    nmap = next(g for g in desk.get("/alerts/groups")
                if g["title"] == "ET SCAN Possible Nmap User-Agent Observed")
    assert nmap["alert_ids"] == NMAP_IDS
    assert desk.send("POST", f"/alerts/groups/{nmap['key']}", {"action": "ack"}
                     ) == {"changed": NMAP_IDS}
    statuses = {a["id"]: a["status"] for a in desk.get("/alerts", params={"sort": "id"})["items"]}
    assert [i for i, s in statuses.items() if s == "acknowledged"] == [1, 2, *NMAP_IDS]
    assert [i for i, s in statuses.items() if s == "dismissed"] == [3]
    assert desk.get("/alerts", params={"q": "status:new"})["total"] == 7
    missing = desk.client.post(f"{A}/alerts/ack", json={"ids": [999]}, headers=desk.staff)
    assert (missing.status_code, missing.json()["detail"]) == (404, NOT_FOUND_DETAIL)
    assert audit_actions(desk.env, "ana-analyst") == [
        "alert.acknowledged", "alert.dismissed", "alert.acknowledged"]


def test_a_case_is_worked_from_promotion_to_close(desk: Desk) -> None:
    opened = desk.send("POST", "/alerts/promote", {"ids": [6, 8], "title": "Escaneo Nmap"})
    assert opened["alert_ids"] == [6, 8]
    number = opened["number"]
    added = desk.send("POST", "/alerts/promote", {"ids": [10], "case": number})
    assert (added["case_id"], added["alert_ids"]) == (opened["case_id"], [10])
    task = desk.send("POST", f"/cases/{number}/tasks", {"title": "Bloquear 192.168.113.110"},
                     201)
    assert desk.send("PATCH", f"/tasks/{task['id']}", {"status": "done"})["status"] == "done"
    assert desk.send("PATCH", f"/tasks/{task['id']}", {"owner": "coco"})["owner"] == "coco"
    both = desk.client.patch(f"{A}/tasks/{task['id']}", json={"status": "done", "owner": "x"},
                             headers=desk.staff)
    assert both.status_code == 422
    desk.send("POST", f"/cases/{number}/notes", {"text": "Origen: 192.168.113.110"}, 201)
    desk.send("POST", f"/cases/{number}/comments", {"text": "Revisar el FTP"}, 201)
    view = desk.send("PATCH", f"/cases/{number}", {"severity": "critical"})
    assert view["severity"] == "critical"
    assert [a["id"] for a in view["alerts"]] == [6, 8, 10]
    assert [(t["title"], t["status"], t["owner"]) for t in view["tasks"]] == [
        ("Bloquear 192.168.113.110", "done", "coco")]
    assert [c["text"] for c in view["comments"]] == ["Revisar el FTP"]
    assert "Origen: 192.168.113.110" in [e.get("text") for e in view["timeline"]]
    closed = desk.send("POST", f"/cases/{number}/close",
                       {"resolution": "true-positive", "summary": "Escaneo bloqueado"})
    assert closed["status"] == "closed"
    assert desk.get("/cases")["total"] == 0
    assert desk.get("/cases", params={"include_closed": "true"})["items"][0]["number"] == number
    assert audit_actions(desk.env, "ana-analyst") == [
        "case.create", "alert.promoted", "alert.merged", "case.task_add", "case.task_status",
        "case.task_owner", "case.note", "case.comment", "case.update", "case.close"]


def test_merge_moves_alerts_and_closes_the_source(desk: Desk) -> None:
    first = desk.send("POST", "/alerts/promote", {"ids": [6]})["number"]
    second = desk.send("POST", "/alerts/promote", {"ids": [8]})["number"]
    merged = desk.send("POST", f"/cases/{first}/merge", {"source": second})
    assert [a["id"] for a in merged["alerts"]] == [6, 8]
    assert desk.get(f"/cases/{second}")["status"] == "closed"
    again = desk.client.post(f"{A}/cases/{first}/merge", json={"source": second},
                             headers=desk.staff)
    assert again.status_code == 409


def test_exports_follow_the_tlp_policy_and_are_audited(desk: Desk) -> None:
    number = desk.send("POST", "/alerts/promote", {"ids": [6, 8], "title": "Escaneo"})["number"]
    report = desk.client.get(f"{A}/cases/{number}/export", params={"format": "markdown"},
                             headers=desk.staff)
    assert report.status_code == 200
    assert f"# {number.replace('-', chr(92) + '-')}: Escaneo" in report.text
    assert report.headers["content-type"].startswith("text/markdown")
    misp = desk.client.get(f"{A}/cases/{number}/export", params={"format": "misp"},
                           headers=desk.staff)
    assert misp.json()["info"] == f"{number}: Escaneo"
    desk.send("PATCH", f"/cases/{number}", {"tlp": "red"})
    refused = desk.client.get(f"{A}/cases/{number}/export", params={"format": "misp"},
                              headers=desk.staff)
    assert refused.status_code == 403 and "TLP:RED" in refused.json()["detail"]
    lowered = desk.client.patch(f"{A}/cases/{number}", json={"tlp": "green"},
                                headers=desk.staff)
    assert lowered.status_code == 403
    stix = {to: desk.client.get(f"{A}/cases/{number}/export",
                                params={"format": "stix", "to": to}, headers=desk.staff)
            for to in (ENTITY_A, ENTITY_B)}
    assert stix[ENTITY_A].status_code == 200 and stix[ENTITY_A].json()["type"] == "bundle"
    assert stix[ENTITY_B].status_code == 403
    unknown = desk.client.get(f"{A}/cases/{number}/export", params={"format": "pdf"},
                              headers=desk.staff)
    assert unknown.status_code == 422
    actions = audit_actions(desk.env, "ana-analyst")
    assert actions.count("case.share.markdown") == 1
    assert actions.count("case.share.misp-file") == 1
    assert actions.count("case.share.stix") == 1
    assert actions.count("case.share.refused") == 2


def test_search_entities_and_intel(desk: Desk) -> None:
    number = desk.send("POST", "/alerts/promote", {"ids": NMAP_IDS, "title": "Nmap"})["number"]
    found = desk.get("/search", params={"q": "nmap"})
    assert sorted(a["id"] for a in found["alerts"]) == NMAP_WORD_IDS
    assert [c["number"] for c in found["cases"]] == [number]
    rows = desk.get("/entities")
    assert [(e["id"], e["open_cases"]) for e in rows] == [
        ("entidad-a", 1), ("entidad-b", 0), ("entidad-c", 0)]
    entity = desk.get(f"/entities/{ENTITY_A}")
    assert entity["name"] == "Entidad A" and "compliance" in entity
    lookup = desk.get("/intel/lookup", params={"value": "192.168.113[.]110"})
    assert lookup["value"] == "192.168.113.110" and lookup["hits"] == []
    assert 6 in {a["id"] for a in lookup["seen"]["alerts"]}
    assert desk.get("/intel/stats")["indicators"] == 0


def test_dashboard_counts_open_cases(desk: Desk) -> None:
    desk.send("POST", "/alerts/promote", {"ids": NMAP_IDS})
    board = desk.get("/dashboard", params={"now": "2026-11-23T10:00:00Z"})
    assert board["alerts_total"] == 14
    assert set(board["deadlines"]) == {"due_soon", "overdue"}
    naive = desk.client.get(f"{A}/dashboard", params={"now": "2026-11-23T10:00:00"},
                            headers=desk.staff)
    assert naive.status_code == 422


def test_red_incident_is_seen_by_staff_only_and_the_read_is_audited(
        client: TestClient, api_env: ApiEnv) -> None:
    tokens = api_env.tokens
    red = client.post("/api/v1/incidents", json=incident_body("Rojo de A", tlp="red"),
                      headers=bearer(tokens.a)).json()["id"]
    amber = client.post("/api/v1/incidents", json=incident_body("Ámbar de B"),
                        headers=bearer(tokens.b)).json()["id"]
    seen_b = {i["id"] for i in client.get("/api/v1/incidents", headers=bearer(tokens.b)).json()}
    assert seen_b == {amber}
    assert client.get(f"/api/v1/incidents/{red}", headers=bearer(tokens.b)).status_code == 404
    staff = bearer(tokens.analyst)
    assert {i["id"] for i in client.get(f"{A}/incidents", headers=staff).json()} == {red, amber}
    assert client.get(f"{A}/incidents/{red}", headers=staff).json()["tlp"] == "red"
    assert client.get(f"{A}/incidents/{red}", headers=bearer(tokens.a)).status_code == 403
    assert audit_actions(api_env, "ana-analyst") == ["incident.read"]
    client.get(f"{A}/incidents/{amber}", headers=staff)
    assert audit_actions(api_env, "ana-analyst") == ["incident.read"]


def test_advisory_feed_shows_each_entity_exactly_its_advisories(
        client: TestClient, api_env: ApiEnv) -> None:
    staff = bearer(api_env.tokens.analyst)
    green = client.post(f"{A}/advisories", json={"title": "Parche VPN", "summary": "Aplicar"},
                        headers=staff).json()
    amber = client.post(f"{A}/advisories", json={
        "title": "Campaña contra B", "summary": "IOC adjuntos", "tlp": "amber",
        "entity_ids": [ENTITY_B]}, headers=staff).json()
    feed_a = client.get("/api/v1/advisories", headers=bearer(api_env.tokens.a)).json()
    feed_b = client.get("/api/v1/advisories", headers=bearer(api_env.tokens.b)).json()
    assert [a["number"] for a in feed_a] == [green["number"]]
    assert [a["number"] for a in feed_b] == [amber["number"], green["number"]]
    listed = client.get(f"{A}/advisories", headers=staff).json()
    assert [a["number"] for a in listed] == [amber["number"], green["number"]]
    assert audit_actions(api_env, "ana-analyst") == ["advisory.publish", "advisory.publish"]


def test_a_published_advisory_reaches_only_its_recipients_inbox(
        client: TestClient, api_env: ApiEnv) -> None:
    """The real path: publish (queues the notice) → the outbox worker delivers → inbox."""
    amber = client.post(f"{A}/advisories", json={
        "title": "Campaña contra B", "summary": "IOC adjuntos", "tlp": "amber",
        "entity_ids": [ENTITY_B]}, headers=bearer(api_env.tokens.analyst)).json()
    drained = build_notifications(api_env.store, api_env.settings.home).worker.run_once()
    assert (drained.sent, drained.dead) == (1, 0)
    inbox_b = client.get("/api/v1/inbox", headers=bearer(api_env.tokens.b)).json()
    assert [m["kind"] for m in inbox_b] == ["advisory-published"]
    assert amber["number"] in inbox_b[0]["subject"]
    assert client.get("/api/v1/inbox", headers=bearer(api_env.tokens.a)).json() == []


def test_inbox_feed_shows_each_entity_only_its_messages(client: TestClient,
                                                        api_env: ApiEnv) -> None:
    # constructed: two delivered inbox rows, as the outbox worker writes them
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    with api_env.store.write() as conn:
        conn.execute(insert(inbox_messages), [
            {"message_id": "<m1@pukara>", "entity_id": ENTITY_A, "kind": "case.opened",
             "subject": "Caso abierto", "body": "Su reporte abrió un caso", "created_at": now},
            {"message_id": "<m2@pukara>", "entity_id": ENTITY_B, "kind": "case.opened",
             "subject": "Caso de B", "body": "Solo para B", "created_at": now}])
    inbox_a = client.get("/api/v1/inbox", headers=bearer(api_env.tokens.a)).json()
    assert [(m["id"], m["subject"]) for m in inbox_a] == [("<m1@pukara>", "Caso abierto")]
    inbox_b = client.get("/api/v1/inbox", headers=bearer(api_env.tokens.b)).json()
    assert [m["id"] for m in inbox_b] == ["<m2@pukara>"]
    too_many = client.get("/api/v1/inbox", params={"limit": 10**6},
                          headers=bearer(api_env.tokens.a))
    assert too_many.status_code == 422


QUERY_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from([
        "entity_id:*", "OR", "AND", "NOT", "_id:1", "severity:>=high", "status:new",
        "observable:192.168.113.110", '"Nmap User-Agent"', "(", ")", "*", "\\", "'", '"',
        "-status:dismissed", "source:suricata", "entity:entidad-b", "since:-1h", "nmap",
    ]), max_size=6).map(" ".join),
)


def test_a_nul_in_the_search_text_is_a_422_not_a_busy_store(desk: Desk) -> None:
    """Found by the property below: a NUL reached SQLite and came back as 503 "busy"."""
    for path in ("/alerts", "/cases", "/search"):
        response = desk.client.get(A + path, params={"q": "0\x00"}, headers=desk.staff)
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["q"]
    lookup = desk.client.get(f"{A}/intel/lookup", params={"value": "1.2.3.4\x00"},
                             headers=desk.staff)
    assert lookup.status_code == 422


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=QUERY_TEXT)
def test_any_search_text_is_a_page_or_a_located_422(desk: Desk, text: str) -> None:
    """B10: query syntax in the search box never errors out and never widens the set."""
    for path in ("/alerts", "/cases", "/search"):
        response = desk.client.get(A + path, params={"q": text}, headers=desk.staff)
        assert response.status_code in (200, 422), (path, text, response.text)
        if response.status_code == 422:
            assert response.json()["errors"] or response.json()["detail"]
        elif path == "/alerts":
            assert response.json()["total"] <= 14
