"""A6: every route not on the public allow-list needs a token, generated from app.routes.

Two checks per route: declarative (the route's dependency tree includes
``current_principal``) and behavioural (every method answers 401 without a token, with the
one uniform body). The declarative check is what catches a new route added without the
dependency even though the gate would still cover it; the test proves it by adding one.
The app checked is the one ``pukara serve`` runs (the server's app plus the exercise routes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Route

from cases.api.auth import PUBLIC_PATHS, current_principal
from cases.api.problems import UNAUTHORIZED_DETAIL
from pukara.exercise_routes import build_served_app
from tests.api.conftest import ApiEnv, Principals

SAMPLE_PATH_VALUES = {"incident_id": "8d3c1c55-7d7b-4c6e-9a51-3f1d9b8f0f11",
                      "alert_id": "999999", "ref": "CASE-2026-999999",
                      "task_id": "no-such-task", "key": "no-such-group",
                      "entity_id": "no-such-entity",
                      "run": "8d3c1c55-0000-4c6e-9a51-3f1d9b8f0f11", "step": "contain",
                      "exercise_id": "ransomware-health-20260101000000-0000"}
UNAUTHORIZED_BODY = {"type": "urn:pukara:problem:unauthorized", "title": "Unauthorized",
                     "status": 401, "detail": UNAUTHORIZED_DETAIL, "errors": []}


def served_app(api_env: ApiEnv) -> FastAPI:
    """A fresh app as ``pukara serve`` builds it, on this home."""
    return build_served_app(api_env.settings)


@pytest.fixture
def client(api_env: ApiEnv) -> Iterator[TestClient]:
    """A TestClient on the served app (exercise routes included)."""
    with TestClient(served_app(api_env), raise_server_exceptions=False) as test_client:
        yield test_client


def _calls(dependant: Any) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def routes_of(app: FastAPI) -> list[RouteContext]:
    """Every route of ``app``, included routers flattened (FastAPI keeps them nested)."""
    return list(iter_route_contexts(app.routes))


def unguarded_routes(app: FastAPI) -> list[str]:
    """Routes outside PUBLIC_PATHS whose dependencies do not authenticate."""
    flagged = []
    for route in routes_of(app):
        path = route.path or ""
        if path in PUBLIC_PATHS:
            continue
        dependant = getattr(route, "dependant", None)
        if not isinstance(route.original_route, APIRoute) or dependant is None or (
                current_principal not in _calls(dependant)):
            flagged.append(path)
    return flagged


def concrete(path: str) -> str:
    """A route path with sample values for its parameters."""
    for name, value in SAMPLE_PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    pairs = []
    for route in routes_of(app):
        for method in sorted(route.methods or {"GET"}):
            pairs.append((method, route.path or ""))
    return pairs


def test_public_allow_list_is_only_healthz(client: TestClient) -> None:
    assert frozenset({"/healthz"}) == PUBLIC_PATHS
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_every_route_of_the_app_is_guarded(api_env: ApiEnv) -> None:
    app = served_app(api_env)
    paths = {r.path for r in routes_of(app)}
    assert {"/api/v1/incidents", "/api/v1/incidents/{incident_id}",
            "/api/v1/incidents/{incident_id}/updates", "/api/v1/incidents/{incident_id}/evidence",
            "/api/v1/alerts", "/api/v1/inbox", "/api/v1/advisories", "/healthz", "/metrics",
            "/openapi.json", "/docs"} | {path for _, path in ANALYST_CALLS} == paths
    assert unguarded_routes(app) == []


def test_every_route_and_method_answers_401_without_a_token(client: TestClient) -> None:
    checked = 0
    for method, path in _routes(client.app):  # type: ignore[arg-type]
        if path in PUBLIC_PATHS or method == "HEAD":
            continue
        response = client.request(method, concrete(path))
        assert response.status_code == 401, (method, path)
        assert response.json() == UNAUTHORIZED_BODY, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        checked += 1
    assert checked == 11 + len(ANALYST_CALLS)


def test_openapi_paths_are_all_guarded(client: TestClient, api_env: ApiEnv) -> None:
    document = client.get("/openapi.json", headers=Principals.bearer(api_env.tokens.a)).json()
    for path, operations in document["paths"].items():
        for method in operations:
            if path in PUBLIC_PATHS:
                continue
            response = client.request(method.upper(), concrete(path))
            assert response.status_code == 401, (method, path)
    assert len(document["paths"]) == 9 + len({path for _, path in ANALYST_CALLS})


def test_docs_and_openapi_need_a_token(client: TestClient, api_env: ApiEnv) -> None:
    for path in ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 401
    docs = client.get("/docs", headers=Principals.bearer(api_env.tokens.a))
    assert docs.status_code == 200
    assert "/api/v1/incidents" in docs.text  # the spec is inlined, not fetched unauthenticated


def test_unknown_paths_are_401_not_404_without_a_token(client: TestClient,
                                                        api_env: ApiEnv) -> None:
    for path in ("/admin", "/api/v1/users", "/api/v1/tokens", "/static/x.js", "/debug",
                 "/config", "/api/v1/incidents/x/attachments/y"):
        assert client.get(path).status_code == 401, path
        with_token = client.get(path, headers=Principals.bearer(api_env.tokens.admin))
        assert with_token.status_code == 404, path  # no debug or config route exists (K4)


def test_the_check_flags_a_new_unauthenticated_route(api_env: ApiEnv) -> None:
    app = served_app(api_env)
    assert unguarded_routes(app) == []

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"leak": "yes"}

    async def raw_endpoint(_request: Any) -> Any:
        return None

    app.router.routes.append(Route("/raw-stream", raw_endpoint))
    assert unguarded_routes(app) == ["/api/v1/forgotten", "/raw-stream"]


A = "/api/v1/analyst"
#: every analyst route: the request an analyst makes in the matrix (on a store holding only
#: the seeded principals, so ids name nothing) and the status it gets
ANALYST_CALLS: dict[tuple[str, str], tuple[dict[str, Any], int]] = {
    ("GET", f"{A}/dashboard"): ({}, 200),
    ("GET", f"{A}/alerts"): ({"params": {"q": "status:new", "sort": "-count"}}, 200),
    ("GET", f"{A}/alerts/{{alert_id}}"): ({}, 404),
    ("POST", f"{A}/alerts/ack"): ({"json": {"ids": [999999]}}, 404),
    ("POST", f"{A}/alerts/dismiss"): ({"json": {"ids": [999999], "reason": "duplicate"}}, 404),
    ("POST", f"{A}/alerts/promote"): ({"json": {"ids": [999999]}}, 422),
    ("GET", f"{A}/alerts/groups"): ({}, 200),
    ("POST", f"{A}/alerts/groups/{{key}}"): ({"json": {"action": "ack"}}, 404),
    ("GET", f"{A}/cases"): ({"params": {"include_closed": "true"}}, 200),
    ("POST", f"{A}/cases"): ({"json": {"title": "Caso de la matriz"}}, 201),
    ("GET", f"{A}/cases/{{ref}}"): ({}, 404),
    ("PATCH", f"{A}/cases/{{ref}}"): ({"json": {"severity": "high"}}, 404),
    ("POST", f"{A}/cases/{{ref}}/close"): (
        {"json": {"resolution": "duplicate", "summary": "duplicado"}}, 404),
    ("POST", f"{A}/cases/{{ref}}/merge"): ({"json": {"source": "CASE-2026-999998"}}, 404),
    ("POST", f"{A}/cases/{{ref}}/tasks"): ({"json": {"title": "Aislar el host"}}, 404),
    ("PATCH", f"{A}/tasks/{{task_id}}"): ({"json": {"status": "done"}}, 404),
    ("POST", f"{A}/cases/{{ref}}/notes"): ({"json": {"text": "nota"}}, 404),
    ("POST", f"{A}/cases/{{ref}}/comments"): ({"json": {"text": "comentario"}}, 404),
    ("GET", f"{A}/cases/{{ref}}/export"): ({"params": {"format": "markdown"}}, 404),
    ("GET", f"{A}/advisories"): ({}, 200),
    ("POST", f"{A}/advisories"): ({"json": {"title": "Aviso", "summary": "Parchear"}}, 201),
    ("GET", f"{A}/search"): ({"params": {"q": "lockbit"}}, 200),
    ("GET", f"{A}/intel/lookup"): ({"params": {"value": "203.0.113.45"}}, 200),
    ("GET", f"{A}/intel/stats"): ({}, 200),
    ("GET", f"{A}/entities"): ({}, 200),
    ("GET", f"{A}/entities/{{entity_id}}"): ({}, 404),
    ("GET", f"{A}/incidents"): ({}, 200),
    ("GET", f"{A}/incidents/{{incident_id}}"): ({}, 404),
    ("GET", f"{A}/playbooks"): ({}, 200),
    ("GET", f"{A}/cases/{{ref}}/playbooks"): ({}, 404),
    ("POST", f"{A}/cases/{{ref}}/playbooks"): ({"json": {"playbook": "ransomware"}}, 404),
    ("POST", f"{A}/playbook-runs/{{run}}/steps/{{step}}/done"): ({}, 404),
    ("POST", f"{A}/playbook-runs/{{run}}/steps/{{step}}/approve"): (
        {"json": {"comment": "ok"}}, 404),
    ("POST", f"{A}/playbook-runs/{{run}}/steps/{{step}}/retry"): ({}, 404),
    ("GET", f"{A}/exercises"): ({}, 200),
    ("POST", f"{A}/exercises"): (
        {"json": {"scenario": "no-such-scenario", "speed": 600, "bots": []}}, 422),
    ("GET", f"{A}/exercises/{{exercise_id}}"): ({}, 404),
    ("POST", f"{A}/exercises/{{exercise_id}}/pause"): ({}, 404),
    ("POST", f"{A}/exercises/{{exercise_id}}/resume"): ({}, 404),
    ("POST", f"{A}/exercises/{{exercise_id}}/abort"): ({}, 404),
    ("POST", f"{A}/exercises/{{exercise_id}}/scores"): (
        {"json": {"entity": "entidad-a", "expectation": None, "points": 5,
                  "comment": "informe a tiempo"}}, 404),
    ("GET", f"{A}/exercises/{{exercise_id}}/report"): ({}, 404),
}


def test_every_analyst_route_takes_a_staff_token(client: TestClient, api_env: ApiEnv) -> None:
    """No token → 401, entity and dead tokens → 401/403, staff → the designed status."""
    routes = {(m, p) for m, p in _routes(client.app)  # type: ignore[arg-type]
              if p.startswith(A + "/") and m != "HEAD"}
    assert routes == set(ANALYST_CALLS)
    tokens = api_env.tokens
    for (method, path), (kwargs, expected) in ANALYST_CALLS.items():
        url = concrete(path)
        got = [client.request(method, url, headers=Principals.bearer(token), **kwargs)
               for token in (tokens.a, tokens.b, tokens.revoked, tokens.expired)]
        assert [r.status_code for r in got] == [403, 403, 401, 401], (method, path)
        assert got[0].json()["detail"] == "this route takes a staff token"
        assert client.request(method, url, **kwargs).status_code == 401, (method, path)
        for token in (tokens.analyst, tokens.coordinator, tokens.admin):
            answer = client.request(method, url, headers=Principals.bearer(token), **kwargs)
            assert answer.status_code == expected, (method, path, answer.text)


PRINCIPAL_NAMES = ("none", "a", "b", "revoked", "expired", "analyst", "admin")
#: expected status per principal, in PRINCIPAL_NAMES order
READ_MATRIX = {
    "/healthz": (200, 200, 200, 200, 200, 200, 200),
    "/api/v1/incidents": (401, 200, 200, 401, 401, 403, 403),
    "/api/v1/inbox": (401, 200, 200, 401, 401, 403, 403),
    "/api/v1/advisories": (401, 200, 200, 401, 401, 403, 403),
    "/metrics": (401, 403, 403, 401, 401, 403, 200),
    "/openapi.json": (401, 200, 200, 401, 401, 200, 200),
    "/docs": (401, 200, 200, 401, 401, 200, 200),
    "/api/v1/analyst/dashboard": (401, 403, 403, 401, 401, 200, 200),
    "/api/v1/analyst/alerts": (401, 403, 403, 401, 401, 200, 200),
}


def test_every_principal_on_every_read_route(client: TestClient, api_env: ApiEnv) -> None:
    tokens = {name: getattr(api_env.tokens, name) for name in PRINCIPAL_NAMES[1:]}
    for path, expected in READ_MATRIX.items():
        got = []
        for name in PRINCIPAL_NAMES:
            headers = Principals.bearer(tokens[name]) if name in tokens else {}
            got.append(client.get(path, headers=headers).status_code)
        assert tuple(got) == expected, path
