"""B1, B2, B3, B9, B11, A4: entity B never sees, changes or learns about A's objects.

Exact visible sets are asserted (TheHive ShareCtrlTest style); every route that takes an
incident id is found from the app's routes, so a new one joins the matrix by itself.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cases.api.models import SERVER_OWNED, IncidentSubmission
from cases.api.problems import NOT_FOUND_DETAIL
from cases.store.tables import alerts, evidence, incident_updates, incidents
from pukara.core.schema import IncidentReport
from tests.api.conftest import ENTITY_A, ENTITY_B, ApiEnv, Principals, incident_body
from tests.api.test_route_auth_matrix import routes_of

bearer = Principals.bearer
ID_ROUTE_CALLS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/incidents/{incident_id}"): {},
    ("POST", "/api/v1/incidents/{incident_id}/updates"): {
        "json": {"stage": "notification", "description": "B intenta escribir"}},
    ("POST", "/api/v1/incidents/{incident_id}/evidence"): {
        "files": {"file": ("b.txt", b"evidence from B", "text/plain")}},
}


def _submit(client: TestClient, token: str, title: str) -> str:
    response = client.post("/api/v1/incidents", json=incident_body(title), headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _count(env: ApiEnv, table: Any, **where: Any) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with env.store.read() as conn:
        return int(conn.execute(query).scalar_one())


def test_lists_show_exactly_the_callers_incidents(client: TestClient, api_env: ApiEnv) -> None:
    tokens = api_env.tokens
    a1 = _submit(client, tokens.a, "A uno")
    a2 = _submit(client, tokens.a2, "A dos")
    b1 = _submit(client, tokens.b, "B uno")
    seen_a = {i["id"] for i in client.get("/api/v1/incidents", headers=bearer(tokens.a)).json()}
    seen_b = {i["id"] for i in client.get("/api/v1/incidents", headers=bearer(tokens.b)).json()}
    assert seen_a == {a1, a2}
    assert seen_b == {b1}
    titles_b = [i["title"] for i in client.get("/api/v1/incidents?limit=500",
                                                headers=bearer(tokens.b)).json()]
    assert titles_b == ["B uno"]


def test_every_id_route_gives_b_the_same_404_as_a_missing_id(client: TestClient,
                                                              api_env: ApiEnv) -> None:
    tokens = api_env.tokens
    a_id = _submit(client, tokens.a, "Solo para A")
    id_routes = {(m, r.path) for r in routes_of(client.app) for m in (r.methods or ())  # type: ignore[arg-type]
                 if r.path and "{incident_id}" in r.path}
    staff_routes = {(m, p) for m, p in id_routes if p.startswith("/api/v1/analyst/")}
    assert staff_routes == {("GET", "/api/v1/analyst/incidents/{incident_id}")}
    assert id_routes - staff_routes == set(ID_ROUTE_CALLS)
    for method, path in staff_routes:  # an entity never reaches a staff route: 403 either way
        on_a = client.request(method, path.replace("{incident_id}", a_id),
                              headers=bearer(tokens.b))
        missing = client.request(method, path.replace("{incident_id}", str(uuid.uuid4())),
                                 headers=bearer(tokens.b))
        assert on_a.status_code == missing.status_code == 403
        assert on_a.content == missing.content
    for (method, path), kwargs in ID_ROUTE_CALLS.items():
        on_a = client.request(method, path.replace("{incident_id}", a_id),
                              headers=bearer(tokens.b), **kwargs)
        missing = client.request(method, path.replace("{incident_id}", str(uuid.uuid4())),
                                 headers=bearer(tokens.b), **kwargs)
        assert on_a.status_code == missing.status_code == 404, (method, path, on_a.text)
        assert on_a.content == missing.content
        assert on_a.json()["detail"] == NOT_FOUND_DETAIL
    assert _count(api_env, incident_updates, incident_id=a_id) == 1
    assert _count(api_env, evidence) == 0
    own = client.get(f"/api/v1/incidents/{a_id}", headers=bearer(tokens.a))
    assert own.status_code == 200 and own.json()["title"] == "Solo para A"


def test_malformed_ids_are_the_same_404(client: TestClient, api_env: ApiEnv) -> None:
    bodies = {client.get(f"/api/v1/incidents/{value}", headers=bearer(api_env.tokens.b)).content
              for value in ("x", "1 OR 1=1", "..%2F..%2Fetc", str(uuid.uuid4()))}
    assert len(bodies) == 1


def test_staff_tokens_cannot_use_entity_routes(client: TestClient, api_env: ApiEnv) -> None:
    a_id = _submit(client, api_env.tokens.a, "A")
    for token in (api_env.tokens.analyst, api_env.tokens.admin):
        for method, path in (("GET", "/api/v1/incidents"), ("GET", f"/api/v1/incidents/{a_id}"),
                             ("GET", "/api/v1/inbox"), ("POST", "/api/v1/alerts")):
            response = client.request(method, path, headers=bearer(token))
            assert response.status_code == 403, (method, path)


def test_submission_model_is_the_report_minus_server_owned_fields() -> None:
    assert set(IncidentSubmission.model_fields) == set(IncidentReport.model_fields) - SERVER_OWNED
    assert {"entity_id", "source", "raw", "exercise_id", "attachments"} == SERVER_OWNED


@pytest.mark.parametrize("field, value", [
    ("entity_id", ENTITY_B), ("created_by", "admin"), ("stored_path", "/etc/passwd"),
    ("sha256", "0" * 64), ("tlp_origin", ENTITY_B), ("role", "admin"), ("token", "pk_x"),
    ("is_exercise", True), ("exercise_id", "ex-1"), ("source", "misp"), ("raw", "forged"),
    ("attachments", []), ("id", "6f99d8bd-42d0-4a2f-8c97-3f07963b4a3f"),
    ("tracking_number", "INC-1"),
    ("status", "closed"),
])
def test_mass_assignment_is_refused(client: TestClient, api_env: ApiEnv, field: str,
                                    value: Any) -> None:
    body = incident_body(**{field: value})
    response = client.post("/api/v1/incidents", json=body, headers=bearer(api_env.tokens.a))
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"] == [{"field": field, "loc": ["body", field],
                                  "message": "Extra inputs are not permitted"}]
    assert _count(api_env, incidents) == 0


def test_mass_assignment_on_updates_is_refused(client: TestClient, api_env: ApiEnv) -> None:
    a_id = _submit(client, api_env.tokens.a, "A")
    for field in ("entity_id", "number", "created_by", "tlp"):
        response = client.post(f"/api/v1/incidents/{a_id}/updates",
                               json={"stage": "notification", field: "x"},
                               headers=bearer(api_env.tokens.a))
        assert response.status_code == 422, field
        assert response.json()["errors"][0]["field"] == field
    assert _count(api_env, incident_updates, incident_id=a_id) == 1


def test_entity_headers_and_parameters_are_ignored(client: TestClient, api_env: ApiEnv) -> None:
    spoof = {"X-Entity": ENTITY_B, "X-Internal": "true", "X-Sync": "1",
             "synchronized-upsert": "true", "X-Forwarded-User": "adm-admin"}
    response = client.post(f"/api/v1/incidents?entity_id={ENTITY_B}", json=incident_body("A"),
                           headers={**bearer(api_env.tokens.a), **spoof})
    assert response.status_code == 201
    assert response.json()["entity_id"] == ENTITY_A
    assert _count(api_env, incidents, entity_id=ENTITY_A) == 1
    assert _count(api_env, incidents, entity_id=ENTITY_B) == 0
    listed = client.get(f"/api/v1/incidents?entity_id={ENTITY_A}",
                        headers={**bearer(api_env.tokens.b), "X-Entity": ENTITY_A,
                                 "synchronized-upsert": "true"})
    assert listed.status_code == 200 and listed.json() == []


def test_alerts_take_the_entity_of_the_token(client: TestClient, api_env: ApiEnv) -> None:
    ndjson = (b'{"source": "ids-a", "title": "Escaneo", "entity_id": "entidad-b",'
              b' "signature_id": "2001219"}\n')
    response = client.post(f"/api/v1/alerts?entity_id={ENTITY_B}", content=ndjson,
                           headers={**bearer(api_env.tokens.a), "X-Entity": ENTITY_B,
                                    "content-type": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "skipped": 0,
                               "errors": []}
    assert _count(api_env, alerts, entity_id=ENTITY_A) == 1
    assert _count(api_env, alerts, entity_id=ENTITY_B) == 0


@pytest.mark.parametrize("query, field", [
    ("sort=(SELECT 1)", "sort"), ("sort=entity_id", "sort"), ("sort=title", "sort"),
    ("sort=-created_at;DROP TABLE incidents", "sort"), ("limit=1000000000", "limit"),
    ("limit=0", "limit"), ("offset=-1", "offset"), ("status=x' OR '1'='1", "status"),
])
def test_sort_filter_and_limit_are_allow_listed(client: TestClient, api_env: ApiEnv,
                                               query: str, field: str) -> None:
    response = client.get(f"/api/v1/incidents?{query}", headers=bearer(api_env.tokens.a))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_allowed_sorts_order_the_list(client: TestClient, api_env: ApiEnv) -> None:
    first = _submit(client, api_env.tokens.a, "primero")
    second = _submit(client, api_env.tokens.a, "segundo")
    for sort, expected in (("created_at", [first, second]), ("-created_at", [second, first]),
                           ("tracking_number", [first, second])):
        listed = client.get(f"/api/v1/incidents?sort={sort}", headers=bearer(api_env.tokens.a))
        assert [i["id"] for i in listed.json()] == expected, sort
    one = client.get("/api/v1/incidents?limit=1&offset=1&sort=created_at",
                     headers=bearer(api_env.tokens.a))
    assert [i["id"] for i in one.json()] == [second]


def test_inbox_and_advisories_are_empty_collections(client: TestClient, api_env: ApiEnv) -> None:
    for path in ("/api/v1/inbox", "/api/v1/advisories"):
        response = client.get(path, headers=bearer(api_env.tokens.a))
        assert response.status_code == 200 and response.json() == []
