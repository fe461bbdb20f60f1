"""POST /api/v1/alerts with every enricher (real SQLite store): the indicator hit, the
correlation sightings and the 3-entity campaign are written in the request's own write
transaction (BEGIN IMMEDIATE) — no enricher waits for that lock on a connection of its own.
The EVE lines are CONSTRUCTED (see tests/pukara/test_pipeline_transaction.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cases.services.identity import Identity
from enrichment.intel.store import IntelStore
from pukara.core.schema import Entity
from pukara.server import build_app
from tests.api.conftest import PEPPER, ApiEnv, Principals
from tests.pukara.test_pipeline_transaction import _counts, _eve, _indicator


def test_the_alerts_route_runs_every_enricher(api_env: ApiEnv) -> None:
    identity = Identity(api_env.store, pepper=PEPPER)
    identity.add_entity(Entity(id="entidad-d", name="Entidad D", sector="gobierno"))
    tokens = [api_env.tokens.a, api_env.tokens.b, identity.issue_entity_token("entidad-d")]
    IntelStore(api_env.store.engine).upsert([_indicator()])
    with TestClient(build_app(api_env.settings), raise_server_exceptions=False) as client:
        for number, token in enumerate(tokens, start=1):
            response = client.post("/api/v1/alerts?format=suricata", content=_eve(number, number),
                                   headers={**Principals.bearer(token),
                                            "Content-Type": "application/octet-stream"})
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 1
    assert _counts(api_env.store.engine) == (3, 3, 1, 3, 1)
