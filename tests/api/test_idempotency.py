"""H1–H4, H6, H7: ``Idempotency-Key`` makes a retried POST take effect once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from cases.api.idempotency import FaultHooks
from cases.store.tables import (
    alerts,
    audit_log,
    idempotency_keys,
    incident_updates,
    incidents,
)
from pukara.server import build_app
from tests.api.conftest import ENTITY_A, ENTITY_B, PEPPER, ApiEnv, Principals, incident_body
from tests.api.live import LiveServer

bearer = Principals.bearer


def _keyed(token: str, key: str | bytes) -> dict[str, Any]:
    return {**bearer(token), "Idempotency-Key": key}


def _count(env: ApiEnv, table: Any, **where: Any) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with env.store.read() as conn:
        return int(conn.execute(query).scalar_one())


def test_a_retry_replays_the_first_answer(client: TestClient, api_env: ApiEnv) -> None:
    first = client.post("/api/v1/incidents", json=incident_body(),
                        headers=_keyed(api_env.tokens.a, "k-1"))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    retries = [client.post("/api/v1/incidents", json=incident_body(),
                           headers=_keyed(api_env.tokens.a, "k-1")) for _ in range(10)]
    for retry in retries:
        assert retry.status_code == 201
        assert retry.content == first.content
        assert retry.headers["idempotent-replayed"] == "true"
    assert _count(api_env, incidents) == 1
    assert first.json()["tracking_number"].endswith("000001")


def test_another_token_of_the_same_entity_shares_the_key(client: TestClient,
                                                         api_env: ApiEnv) -> None:
    first = client.post("/api/v1/incidents", json=incident_body(),
                        headers=_keyed(api_env.tokens.a, "shared"))
    again = client.post("/api/v1/incidents", json=incident_body(),
                        headers=_keyed(api_env.tokens.a2, "shared"))
    assert again.content == first.content
    assert _count(api_env, incidents) == 1


def test_the_same_key_with_another_payload_is_422(client: TestClient, api_env: ApiEnv) -> None:
    client.post("/api/v1/incidents", json=incident_body("uno"),
                headers=_keyed(api_env.tokens.a, "k-2"))
    for body in (incident_body("dos"), incident_body("uno", severity="low")):
        response = client.post("/api/v1/incidents", json=body,
                               headers=_keyed(api_env.tokens.a, "k-2"))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    other_route = client.post("/api/v1/alerts", content=b"",
                              headers={**_keyed(api_env.tokens.a, "k-2"),
                                       "Content-Type": "application/x-ndjson"})
    assert other_route.status_code == 422
    assert _count(api_env, incidents) == 1


def test_keys_are_scoped_to_the_entity(client: TestClient, api_env: ApiEnv) -> None:
    body = incident_body("mismo cuerpo")
    from_a = client.post("/api/v1/incidents", json=body, headers=_keyed(api_env.tokens.a, "k"))
    from_b = client.post("/api/v1/incidents", json=body, headers=_keyed(api_env.tokens.b, "k"))
    assert from_a.status_code == from_b.status_code == 201
    assert "idempotent-replayed" not in from_b.headers
    assert from_b.json()["entity_id"] == ENTITY_B
    assert from_b.json()["id"] != from_a.json()["id"]
    assert _count(api_env, incidents, entity_id=ENTITY_A) == 1
    assert _count(api_env, incidents, entity_id=ENTITY_B) == 1
    with api_env.store.read() as conn:
        scopes = sorted(conn.execute(select(idempotency_keys.c.principal)).scalars())
    assert scopes == [f"entity:{ENTITY_A}", f"entity:{ENTITY_B}"]


@pytest.mark.parametrize("key", ["", " ", "a" * 256, "clé".encode(), "two words", "tab\tkey"])
def test_malformed_keys_are_400(client: TestClient, api_env: ApiEnv, key: str | bytes) -> None:
    response = client.post("/api/v1/incidents", json=incident_body(),
                           headers=_keyed(api_env.tokens.a, key))
    assert response.status_code in (400, 422)
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _count(api_env, incidents) == 0


def test_updates_and_alerts_are_idempotent_too(client: TestClient, api_env: ApiEnv) -> None:
    incident_id = client.post("/api/v1/incidents", json=incident_body(),
                              headers=bearer(api_env.tokens.a)).json()["id"]
    update_body = {"stage": "notification", "description": "evaluación inicial"}
    answers = {client.post(f"/api/v1/incidents/{incident_id}/updates", json=update_body,
                           headers=_keyed(api_env.tokens.a, "u-1")).content for _ in range(3)}
    assert len(answers) == 1
    assert _count(api_env, incident_updates, incident_id=incident_id) == 2
    ndjson = b"".join(b'{"source": "ids", "title": "Escaneo %d", "signature_id": "%d"}\n'
                      % (i, i) for i in range(5))
    replies = [client.post("/api/v1/alerts", content=ndjson,
                           headers={**_keyed(api_env.tokens.a, "a-1"),
                                    "Content-Type": "application/x-ndjson"}) for _ in range(3)]
    assert [r.json()["accepted"] for r in replies] == [5, 5, 5]
    assert _count(api_env, alerts) == 5
    with api_env.store.read() as conn:
        assert conn.execute(select(func.max(alerts.c.count))).scalar_one() == 1


@pytest.mark.parametrize("point", ["after_write_before_commit", "after_commit_before_response"])
def test_a_fault_then_a_retry_leaves_exactly_one(api_env: ApiEnv, point: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUKARA_FAULT", point)
    faulty = build_app(api_env.settings)
    monkeypatch.delenv("PUKARA_FAULT")
    with TestClient(faulty, raise_server_exceptions=False) as client:
        failed = client.post("/api/v1/incidents", json=incident_body(),
                             headers=_keyed(api_env.tokens.a, "crash-1"))
    assert failed.status_code == 500
    assert failed.json()["detail"] == "internal error; the request was not completed"
    committed = point == "after_commit_before_response"
    assert _count(api_env, incidents) == int(committed)
    assert _count(api_env, idempotency_keys) == int(committed)
    with TestClient(build_app(api_env.settings)) as client:
        retries = [client.post("/api/v1/incidents", json=incident_body(),
                               headers=_keyed(api_env.tokens.a, "crash-1")) for _ in range(3)]
    assert {r.status_code for r in retries} == {201}
    assert len({r.content for r in retries}) == 1
    assert _count(api_env, incidents) == 1


def test_fault_hooks_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUKARA_FAULT", "after_write_before_commit:exit, unknown_point")
    assert FaultHooks.from_env().armed == {"after_write_before_commit": True}
    monkeypatch.delenv("PUKARA_FAULT")
    assert FaultHooks.from_env().armed == {}


def test_after_the_ttl_a_key_is_forgotten_but_external_ids_still_refuse(
        client: TestClient, api_env: ApiEnv) -> None:
    body = incident_body(external_id="TICKET-2026-77")
    first = client.post("/api/v1/incidents", json=body, headers=_keyed(api_env.tokens.a, "old"))
    assert first.status_code == 201
    with api_env.store.write() as conn:
        conn.execute(update(idempotency_keys).values(expires_at=func.datetime("now", "-1 hour")))
    late = client.post("/api/v1/incidents", json=body, headers=_keyed(api_env.tokens.a, "old"))
    assert late.status_code == 409
    assert late.json()["errors"][0]["field"] == "external_id"
    assert _count(api_env, incidents) == 1
    fresh = client.post("/api/v1/incidents", json=incident_body("otro"),
                        headers=_keyed(api_env.tokens.a, "old"))
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert _count(api_env, incidents) == 2


def test_ten_parallel_duplicates_on_a_real_server_make_one_incident(
        api_env: ApiEnv, tmp_path: Path) -> None:
    api_env.store.close()
    body = incident_body("paralelo")
    with LiveServer(api_env.settings.home, pepper=PEPPER, log=tmp_path / "server.log") as server:
        def send(_: int) -> httpx.Response:
            return httpx.post(f"{server.url}/api/v1/incidents", json=body, timeout=30,
                              headers=_keyed(api_env.tokens.a, "parallel-1"))

        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(send, range(10)))
    api_env.store.open()
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    assert _count(api_env, incidents) == 1


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_write_before_commit", "after_commit_before_response"])
def test_a_server_that_dies_mid_request_then_a_retry_leaves_exactly_one(
        api_env: ApiEnv, tmp_path: Path, point: str) -> None:
    api_env.store.close()
    home, log = api_env.settings.home, tmp_path / "server.log"
    body = incident_body("se cae el servidor")
    dying = LiveServer(home, pepper=PEPPER, log=log, extra_env={"PUKARA_FAULT": f"{point}:exit"})
    with dying:
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{dying.url}/api/v1/incidents", json=body, timeout=30,
                       headers=_keyed(api_env.tokens.a, "dies-1"))
        assert dying.process is not None and dying.process.wait(timeout=10) == 70
    with LiveServer(home, pepper=PEPPER, log=log, port=dying.port) as server:
        retries = [httpx.post(f"{server.url}/api/v1/incidents", json=body, timeout=30,
                              headers=_keyed(api_env.tokens.a, "dies-1")) for _ in range(3)]
    api_env.store.open()
    assert [r.status_code for r in retries] == [201] * 3
    assert len({r.content for r in retries}) == 1
    replayed = [r.headers.get("idempotent-replayed") == "true" for r in retries]
    assert replayed == ([True] * 3 if point == "after_commit_before_response"
                        else [False, True, True])
    assert _count(api_env, incidents) == 1


def test_a_replay_writes_no_second_audit_entry(client: TestClient, api_env: ApiEnv) -> None:
    headers = _keyed(api_env.tokens.a, "audit-1")
    first = client.post("/api/v1/incidents", json=incident_body(), headers=headers)
    for _ in range(3):
        client.post("/api/v1/incidents", json=incident_body(), headers=headers)
    with api_env.store.read() as conn:
        entries = conn.execute(select(audit_log.c.actor, audit_log.c.entity_id,
                                      audit_log.c.object_id, audit_log.c.request_id)
                               .where(audit_log.c.action == "incident.submit")).all()
    assert [tuple(e) for e in entries] == [(f"entity:{ENTITY_A}", ENTITY_A, first.json()["id"],
                                           first.headers["x-request-id"])]
