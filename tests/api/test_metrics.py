"""/metrics (admin only): submissions by kind, rejects by reason, ingested alerts, replays,
latency by route template; and the headers every response carries."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import ApiEnv, Principals, incident_body

bearer = Principals.bearer


def _sample(text: str, name: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(name + " ")]
    assert len(lines) == 1, name
    return float(lines[0].rsplit(" ", 1)[1])


def test_counters_follow_the_traffic(client: TestClient, api_env: ApiEnv) -> None:
    keyed = {**bearer(api_env.tokens.a), "Idempotency-Key": "m-1"}
    client.post("/api/v1/incidents", json=incident_body(), headers=keyed)
    client.post("/api/v1/incidents", json=incident_body(), headers=keyed)
    client.post("/api/v1/incidents", json=incident_body(role="admin"),
                headers=bearer(api_env.tokens.a))
    client.post("/api/v1/alerts", content=b'{"source": "s", "title": "t"}\n{"x": 1}\n',
                headers={**bearer(api_env.tokens.b), "Content-Type": "application/x-ndjson"})
    client.get("/api/v1/incidents")
    client.get("/api/v1/incidents/nope", headers=bearer(api_env.tokens.b))
    text = client.get("/metrics", headers=bearer(api_env.tokens.admin)).text
    assert _sample(text, 'pukara_api_submissions_total{kind="incident"}') == 1
    assert _sample(text, 'pukara_api_submissions_total{kind="alerts"}') == 1
    assert _sample(text, "pukara_api_alerts_ingested_total") == 1
    assert _sample(text, "pukara_api_idempotent_replays_total") == 1
    assert _sample(text, 'pukara_api_rejects_total{reason="invalid-input"}') == 1
    assert _sample(text, 'pukara_api_rejects_total{reason="unauthenticated"}') == 1
    assert _sample(text, 'pukara_api_rejects_total{reason="not-found"}') == 1
    assert _sample(text, 'pukara_api_request_seconds_count{method="POST",'
                         'route="/api/v1/incidents",status="201"}') == 2
    assert _sample(text, 'pukara_api_request_seconds_count{method="GET",'
                         'route="/api/v1/incidents/{incident_id}",status="404"}') == 1


def test_each_app_has_its_own_registry(api_env: ApiEnv) -> None:
    first, second = api_env.app(), api_env.app()
    assert first.state.metrics.registry is not second.state.metrics.registry


def test_every_response_forbids_sniffing_and_caching(client: TestClient, api_env: ApiEnv) -> None:
    for response in (client.get("/healthz"), client.get("/api/v1/incidents"),
                     client.get("/api/v1/incidents", headers=bearer(api_env.tokens.a))):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
