"""End to end: the shipped phishing → data breach scenario with bots at 600×.

sunat (5–15 min, final report 30 min later) meets all six expectations: 90 points. minedu
answers after 35–50 min: too late for the phishing (30-minute window) but in time for the
breach report and its classification (60 minutes); its final report comes 80 minutes later,
past the 120-minute window: 40 points.
"""

from __future__ import annotations

import pytest

from playbooks.exercises.loader import load_scenario, shipped_scenarios
from playbooks.exercises.report import markdown
from pukara.exercise_runtime import RunOptions, run
from pukara.wiring import Services
from tests.playbooks.exercises.conftest import margins, predicted_points

pytestmark = pytest.mark.slow
PARTICIPANTS = ["sunat", "minedu"]


def test_phishing_breach_scores_follow_the_bot_profiles(services: Services) -> None:
    scenario = load_scenario(shipped_scenarios()["phishing-data-breach"])
    targets = {i.id: PARTICIPANTS for i in scenario.timeline}
    assert predicted_points(scenario, targets) == {"sunat": 90, "minedu": 40}
    assert margins(scenario, targets) > 2.0

    result = run(services, scenario, RunOptions(speed=600, bots=["all"]))

    assert result["status"] == "FINISHED"
    assert [(s["entity"], s["points"], s["met"], s["missed"]) for s in result["scores"]] == [
        ("sunat", 90, 6, 0), ("minedu", 40, 2, 4)]
    report = markdown(services.store, result["exercise_id"])
    assert "| minedu | phishing-wave | share-lure | 10 |" in report
    assert "| minedu | exfiltration | final-breach | 20 |" in report
