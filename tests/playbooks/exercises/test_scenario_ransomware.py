"""End to end: the shipped health-sector ransomware scenario with bots at 600×.

Real store, real pipeline as ``deliver``, real API on loopback for the bots. The scores
follow from the seeded profiles in the scenario: minsa (fast, accurate, final report after
40 min) meets all six expectations; essalud (50–58 min, never shares indicators) reports the
C2 alert and the beacon inside their 60-minute windows and misses the rest.
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from cases.store.tables import alerts, incidents
from cases.store.tables_cases import cases
from playbooks.exercises.loader import load_scenario, shipped_scenarios
from pukara.exercise_runtime import RunOptions, run
from pukara.wiring import Services
from tests.playbooks.exercises.conftest import margins, predicted_points

pytestmark = pytest.mark.slow
HEALTH = ["minsa", "essalud"]


def test_ransomware_health_scores_follow_the_bot_profiles(services: Services) -> None:
    scenario = load_scenario(shipped_scenarios()["ransomware-health"])
    targets = {i.id: HEALTH for i in scenario.timeline}
    assert predicted_points(scenario, targets) == {"minsa": 110, "essalud": 20}
    assert margins(scenario, targets) > 2.0

    result = run(services, scenario, RunOptions(speed=600, bots=["all"]))

    assert result["status"] == "FINISHED"
    assert result["bot_errors"] == []
    scores = {s["entity"]: s for s in result["scores"]}
    assert (scores["minsa"]["points"], scores["minsa"]["met"], scores["minsa"]["missed"]) == (
        110, 6, 0)
    assert (scores["essalud"]["points"], scores["essalud"]["met"],
            scores["essalud"]["missed"]) == (20, 2, 4)
    assert result["sectors"] == [{"sector": "health", "entities": 2, "points": 130,
                                  "max_points": 220, "met": 8, "missed": 4, "pending": 0}]
    injects = {i["id"]: i for i in result["injects"]}
    assert {i["state"] for i in injects.values()} == {"fired"}
    assert injects["briefing"]["result"]["messages"] == 2
    assert injects["c2-alerts"]["result"] == {"accepted": 2, "duplicates": 4, "rejected": 0,
                                              "reports": 1}  # one feed, routed by address
    assert injects["c2-traffic"]["result"]["captures"] == 2
    assert injects["partner-iocs"]["result"]["indicators"] == 2
    _assert_the_live_path_saw_it(services, result["exercise_id"])


def _assert_the_live_path_saw_it(services: Services, exercise_id: str) -> None:
    with services.store.read() as conn:
        stored = [orjson.loads(r.doc) for r in conn.execute(
            select(alerts.c.doc).where(alerts.c.exercise_id == exercise_id))]
        reported = list(conn.execute(select(incidents.c.entity_id, incidents.c.regime,
                                            incidents.c.case_id)
                                     .where(incidents.c.exercise_id == exercise_id)))
        case_marks = {r.exercise_id for r in conn.execute(
            select(cases.c.exercise_id).where(cases.c.id.in_([r.case_id for r in reported])))}
    yara = {(a["entity_id"], a["title"], h["rule"]) for a in stored for h in a["hits"]
            if h["kind"] == "yara"}
    beacon = "HTTP GET http://telemetry-update.example.net/gate.php"
    assert yara == {("minsa", beacon, "PUKARA_EICAR_Test_File"),
                    ("essalud", beacon, "PUKARA_EICAR_Test_File")}
    rematched = {(a["entity_id"], a["title"]) for a in stored for h in a["hits"]
                 if h.get("source") == f"exercise:{exercise_id}"}
    assert ("minsa", "DNS A telemetry-update.example.net") in rematched
    assert ("essalud", "DNS A telemetry-update.example.net") in rematched
    assert sorted(r.entity_id for r in reported) == ["essalud", "essalud", "essalud", "minsa",
                                                     "minsa", "minsa"]
    assert {r.regime for r in reported} == {"exercise"}
    assert case_marks == {exercise_id}
