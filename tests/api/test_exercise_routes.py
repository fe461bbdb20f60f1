"""The analyst exercise routes on the app ``pukara serve`` runs, through a TestClient.

The store holds the test principals plus the demo constituency (pukara/demo_data), so the
shipped ``ransomware-health`` scenario has its two health entities as participants. The run
is played for real: the server's exercise control starts the engine, whose injects go
through the real pipeline. Waits poll with a limit; nothing asserts how fast anything is.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cases.services.audit import Actor
from cases.services.entity_file import load_entities_file
from cases.services.identity import Identity
from cases.store.tables import audit_log
from playbooks.exercises import runs
from playbooks.exercises.loader import load_scenario, shipped_scenarios
from pukara.exercise_routes import build_served_app
from tests.api.conftest import PEPPER, ApiEnv, Principals
from tests.playbooks.exercises.conftest import until

EXERCISES = "/api/v1/analyst/exercises"
SCENARIO = "ransomware-health"
SHIPPED = {"ransomware-health", "phishing-data-breach", "ddos-defacement-government"}


@pytest.fixture
def served(api_env: ApiEnv) -> Iterator[TestClient]:
    """The served app on a home holding the demo constituency."""
    data = resources.files("pukara.demo_data").joinpath("entities.yaml")
    with resources.as_file(data) as path:
        Identity(api_env.store, pepper=PEPPER).upsert_entities(load_entities_file(path))
    with TestClient(build_served_app(api_env.settings),
                    raise_server_exceptions=False) as test_client:
        yield test_client


def call(client: TestClient, token: str, method: str, path: str = "",
         **kwargs: Any) -> Any:
    """One request to the exercise routes as ``token``; the response."""
    return client.request(method, EXERCISES + path, headers=Principals.bearer(token),
                          **kwargs)


def test_start_pause_resume_score_abort_and_report(served: TestClient,
                                                   api_env: ApiEnv) -> None:
    analyst = api_env.tokens.analyst
    listing = call(served, analyst, "GET").json()
    assert {s["id"] for s in listing["scenarios"]} == SHIPPED
    assert listing["runs"] == []

    started = call(served, analyst, "POST",
                   json={"scenario": SCENARIO, "speed": 600, "bots": []})
    assert started.status_code == 201, started.text
    run = started.json()
    exercise_id = run["exercise_id"]
    assert exercise_id.startswith(f"{SCENARIO}-")
    assert (run["status"], run["bots"]) == ("RUNNING", [])
    assert sorted(run["participants"]) == ["essalud", "minsa"]
    assert {s["entity"] for s in run["scores"]} == {"essalud", "minsa"}
    assert [s["sector"] for s in run["sectors"]] == ["health"]

    def fired(inject: str) -> bool:
        state = call(served, analyst, "GET", f"/{exercise_id}").json()
        return bool(next(i for i in state["injects"] if i["id"] == inject)["state"] == "fired")

    assert until(lambda: fired("c2-alerts"))
    paused = call(served, analyst, "POST", f"/{exercise_id}/pause")
    assert (paused.status_code, paused.json()["status"]) == (200, "PAUSED")
    assert call(served, analyst, "POST", f"/{exercise_id}/pause").status_code == 409
    resumed = call(served, analyst, "POST", f"/{exercise_id}/resume").json()
    assert resumed["status"] == "RUNNING"

    scored = call(served, api_env.tokens.coordinator, "POST", f"/{exercise_id}/scores",
                  json={"entity": "minsa", "expectation": "report-c2", "points": -3,
                        "comment": "reported by phone, not through the API"})
    assert scored.status_code == 200, scored.text
    minsa = next(s for s in scored.json()["scores"] if s["entity"] == "minsa")
    assert minsa["manual"] == [{"points": -3, "by": "coco-coordinator",
                                "comment": "[report-c2] reported by phone, not through the API"}]

    aborted = call(served, analyst, "POST", f"/{exercise_id}/abort").json()
    assert aborted["status"] == "CANCELED"
    assert all(i["state"] != "pending" for i in aborted["injects"])
    refused = call(served, analyst, "POST", f"/{exercise_id}/resume")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == f"cannot resume exercise {exercise_id} while CANCELED"

    report = call(served, analyst, "GET", f"/{exercise_id}/report")
    assert report.status_code == 200
    assert report.headers["content-type"] == "text/markdown; charset=utf-8"
    assert "Operación Hipócrates" in report.text and "minsa" in report.text
    assert [r["id"] for r in call(served, analyst, "GET").json()["runs"]] == [exercise_id]

    with api_env.store.read() as conn:
        actions = conn.execute(select(audit_log.c.action, audit_log.c.actor).where(
            audit_log.c.object_id == exercise_id).order_by(audit_log.c.seq)).all()
    assert [(a, who.split(":")[0]) for a, who in actions if a != "exercise.inject"] == [
        ("exercise.create", "ana-analyst"), ("exercise.start", "ana-analyst"),
        ("exercise.pause", "ana-analyst"), ("exercise.resume", "ana-analyst"),
        ("exercise.score", "coco-coordinator"), ("exercise.abort", "ana-analyst")]


def test_bad_requests_are_problems_and_entities_are_refused(served: TestClient,
                                                            api_env: ApiEnv) -> None:
    analyst = api_env.tokens.analyst
    for body in ({"scenario": SCENARIO, "speed": 0, "bots": []},
                 {"scenario": SCENARIO, "speed": 600, "bots": [], "created_by": "x"},
                 {"scenario": "no-such-scenario", "speed": 600, "bots": []}):
        answer = call(served, analyst, "POST", json=body)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"
    assert call(served, analyst, "GET", "/..%2F..%2Fcases").status_code == 404
    entity = call(served, api_env.tokens.a, "POST",
                  json={"scenario": SCENARIO, "speed": 600, "bots": []})
    assert (entity.status_code, entity.json()["detail"]) == (
        403, "this route takes a staff token")
    assert call(served, analyst, "GET").json()["runs"] == []


def test_a_restarted_server_goes_on_with_a_running_run(api_env: ApiEnv) -> None:
    """A run left RUNNING (recorded by a server that stopped) is played once the served app
    starts again, before any exercise route is called."""
    data = resources.files("pukara.demo_data").joinpath("entities.yaml")
    with resources.as_file(data) as path:
        Identity(api_env.store, pepper=PEPPER).upsert_entities(load_entities_file(path))
    scenario = load_scenario(shipped_scenarios()[SCENARIO])
    coordinator = Actor("exercise-coordinator")
    exercise_id = runs.create(api_env.store, scenario, ["minsa"], [], speed=600,
                              actor=coordinator)
    runs.transition(api_env.store, exercise_id, "start", coordinator)

    def briefing_state() -> str:
        return str(runs.status(api_env.store, exercise_id)["injects"][0]["state"])

    with TestClient(build_served_app(api_env.settings), raise_server_exceptions=False):
        assert until(lambda: briefing_state() == "fired")
