"""End to end: the shipped DDoS and defacement scenario with bots at 600×.

onpe (8–20 min, accurate) meets every expectation: 65 points. sunat answers as fast but
never classifies right (accuracy 0) nor shares the scanner's address (indicator chance 0):
only the two report expectations, 10 + 15 = 25 points.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cases.store.tables import incidents
from playbooks.exercises.loader import load_scenario, shipped_scenarios
from playbooks.exercises.tables import exercise_messages
from pukara.exercise_runtime import RunOptions, run
from pukara.wiring import Services
from tests.playbooks.exercises.conftest import margins, predicted_points

pytestmark = pytest.mark.slow
PARTICIPANTS = ["sunat", "onpe"]


def test_ddos_defacement_scores_follow_the_bot_profiles(services: Services) -> None:
    scenario = load_scenario(shipped_scenarios()["ddos-defacement-government"])
    targets = {i.id: PARTICIPANTS for i in scenario.timeline}
    assert predicted_points(scenario, targets) == {"onpe": 65, "sunat": 25}
    assert margins(scenario, targets) > 2.0

    result = run(services, scenario, RunOptions(speed=600, bots=["all"]))

    assert result["status"] == "FINISHED"
    assert [(s["entity"], s["points"], s["met"], s["missed"]) for s in result["scores"]] == [
        ("onpe", 65, 5, 0), ("sunat", 25, 2, 3)]
    assert [(s["sector"], s["points"], s["max_points"]) for s in result["sectors"]] == [
        ("finance", 25, 65), ("government", 65, 65)]
    injects = {i["id"]: i["result"] for i in result["injects"]}
    assert injects["ddos"] == {"accepted": 2, "duplicates": 0, "rejected": 0, "reports": 2}
    assert injects["defacement"] == {"accepted": 2, "duplicates": 0, "rejected": 0,
                                     "reports": 2}
    assert injects["ransom-note"] == {"messages": 2}
    with services.store.read() as conn:
        subjects = sorted(conn.execute(select(exercise_messages.c.subject).where(
            exercise_messages.c.inject_id == "ransom-note")).scalars())
        classes = sorted(conn.execute(select(incidents.c.classification).where(
            incidents.c.entity_id == "sunat")).scalars())
    assert subjects == ["[EXERCISE] The home page of onpe.example.pe shows a ransom note",
                        "[EXERCISE] The home page of sunat.example.pe shows a ransom note"]
    assert classes == ["information-gathering/scanner", "information-gathering/scanner",
                       "information-gathering/scanner"]
