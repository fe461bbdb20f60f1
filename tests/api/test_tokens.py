"""A1–A3, A5, A9, A10, K1–K3: bearer tokens fail uniformly, revoke at once, never leak."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cases.api.problems import UNAUTHORIZED_DETAIL
from cases.services.identity import Identity
from cases.store.tables import audit_log, tokens
from tests.api.conftest import ENTITY_A, PEPPER, ApiEnv, Principals, incident_body
from tests.api.live import LiveServer

bearer = Principals.bearer
UNAUTHORIZED = {"type": "urn:pukara:problem:unauthorized", "title": "Unauthorized",
                "status": 401, "detail": UNAUTHORIZED_DETAIL, "errors": []}


def _stored(env: ApiEnv) -> list[dict[str, object]]:
    with env.store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tokens))]


def test_every_bad_credential_form_gets_the_same_401(client: TestClient, api_env: ApiEnv) -> None:
    valid = api_env.tokens.a
    forms = [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz",
             f"Token {valid}", f"Bearer{valid}", "Bearer " + "x" * 10_240,
             "Bearer pk_" + "A" * 10_240, f"Bearer {valid}x", f"Bearer {valid[:-1]}",
             f"Bearer {api_env.tokens.revoked}", f"Bearer {api_env.tokens.expired}"]
    bodies = set()
    for form in forms:
        headers = {} if form is None else {"Authorization": form}
        response = client.get("/api/v1/incidents", headers=headers)
        assert response.status_code == 401, form
        assert response.json() == UNAUTHORIZED
        assert response.headers["www-authenticate"] == 'Bearer realm="pukara"'
        bodies.add(response.content)
    assert len(bodies) == 1
    assert client.get("/api/v1/incidents", headers={"Authorization": f"bearer {valid}"}
                      ).status_code == 200


def test_identifiers_prefixes_and_hashes_are_not_tokens(client: TestClient,
                                                        api_env: ApiEnv) -> None:
    rows = _stored(api_env)
    candidates = [ENTITY_A, "1", "2", "pk_" + ENTITY_A, api_env.tokens.a[:7],
                  "pk_" + str(rows[0]["prefix"])]
    for row in rows:
        candidates += [str(row["hash"]), "pk_" + str(row["hash"]), str(row["id"])]
    for candidate in candidates:
        response = client.get("/api/v1/incidents", headers=bearer(candidate))
        assert response.status_code == 401, candidate
        assert response.json() == UNAUTHORIZED


def test_cookies_and_forms_are_not_credentials(client: TestClient, api_env: ApiEnv) -> None:
    cookie = {"Cookie": f"session={api_env.tokens.a}; token={api_env.tokens.a}"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = client.post("/api/v1/incidents", content=b"title=x",
                               headers={**cookie, "Content-Type": content_type})
        assert response.status_code == 401
        authed = client.post("/api/v1/incidents", content=b"title=x",
                             headers={**bearer(api_env.tokens.a), "Content-Type": content_type})
        assert authed.status_code == 415
    form = client.post("/api/v1/alerts", data={"x": "1"}, headers=bearer(api_env.tokens.a))
    assert form.status_code == 415


def test_roles_metrics_is_admin_only(client: TestClient, api_env: ApiEnv) -> None:
    for token in (api_env.tokens.a, api_env.tokens.b, api_env.tokens.analyst):
        response = client.get("/metrics", headers=bearer(token))
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
    metrics = client.get("/metrics", headers=bearer(api_env.tokens.admin))
    assert metrics.status_code == 200
    assert "pukara_api_request_seconds_bucket" in metrics.text


def test_no_route_manages_or_returns_tokens(client: TestClient, api_env: ApiEnv) -> None:
    document = client.get("/openapi.json", headers=bearer(api_env.tokens.a)).json()
    assert not [p for p in document["paths"] if "token" in p or "user" in p]
    created = client.post("/api/v1/incidents", json=incident_body(), headers=bearer(
        api_env.tokens.a))
    assert api_env.tokens.a not in created.text


def test_revocation_applies_to_the_next_request_on_a_keep_alive_connection(
        api_env: ApiEnv, tmp_path: Path) -> None:
    api_env.store.close()
    identity = Identity(api_env.store.open(), pepper=PEPPER)
    token = identity.issue_entity_token("entidad-b")
    with LiveServer(api_env.settings.home, pepper=PEPPER, log=tmp_path / "server.log") as server, \
            httpx.Client(base_url=server.url, headers=bearer(token)) as http:
        first = http.get("/api/v1/incidents")
        assert first.status_code == 200
        stream_before = first.extensions["network_stream"]
        identity.revoke(entity_id="entidad-b")
        second = http.get("/api/v1/incidents")
        assert second.status_code == 401
        assert second.json() == UNAUTHORIZED
        assert second.extensions["network_stream"] is stream_before
    with api_env.store.read() as conn:
        actions = [r.action for r in conn.execute(select(audit_log.c.action))]
    assert actions.count("token.revoke") == 2


def test_database_holds_only_peppered_hashes_and_prefixes(client: TestClient,
                                                          api_env: ApiEnv) -> None:
    client.post("/api/v1/incidents", json=incident_body(), headers=bearer(api_env.tokens.a))
    every_token = list(vars(api_env.tokens).values())
    rows = _stored(api_env)
    assert len(rows) == len(every_token)
    hashes = {row["hash"] for row in rows}
    for token in every_token:
        assert hmac.new(PEPPER.encode(), token.encode(), hashlib.sha256).hexdigest() in hashes
        assert hashlib.sha256(token.encode()).hexdigest() not in hashes
    assert {len(str(row["prefix"])) for row in rows} == {4}
    api_env.store.engine.dispose()
    for path in api_env.settings.home.glob("pukara.db*"):
        data = path.read_bytes()
        for token in every_token:
            assert token.encode() not in data, path.name
            assert token[3:].encode() not in data, path.name


def _exercise(http: httpx.Client | TestClient, env: ApiEnv) -> list[str]:
    """Requests of every kind with every principal; returns the response texts."""
    texts = []
    for token in vars(env.tokens).values():
        for method, path, kwargs in (
                ("GET", "/api/v1/incidents", {}),
                ("POST", "/api/v1/incidents", {"json": incident_body(f"t{token[-4:]}")}),
                ("POST", "/api/v1/incidents", {"content": b"{bad", "headers": {
                    "Content-Type": "application/json"}}),
                ("GET", "/metrics", {}), ("GET", "/nope", {})):
            headers = {**bearer(token), **kwargs.pop("headers", {})}
            texts.append(http.request(method, path, headers=headers, **kwargs).text)
    return texts


def test_no_token_or_authorization_value_in_logs_or_responses(
        api_env: ApiEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TestClient(api_env.app(), raise_server_exceptions=False) as test_client:
        texts = _exercise(test_client, api_env)
    log = tmp_path / "server.log"
    api_env.store.close()
    with LiveServer(api_env.settings.home, pepper=PEPPER, log=log) as server, \
            httpx.Client(base_url=server.url) as http:
        texts += _exercise(http, api_env)
    server_log = log.read_text()
    assert '"POST /api/v1/incidents HTTP/1.1" 201' in server_log  # access log was captured
    captured = caplog.text + server_log + "\n".join(texts)
    for token in vars(api_env.tokens).values():
        assert token not in captured
        assert token[3:23] not in captured
    assert "Bearer pk_" not in captured
    assert "authorization" not in captured.lower()
