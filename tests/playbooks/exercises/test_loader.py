"""Scenario files: offsets, located errors (file:line), the shipped scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbooks.exercises.loader import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    shipped_scenarios,
)
from playbooks.exercises.model import check_participants, format_offset, parse_offset
from pukara.core.schema import Entity

GOOD = """\
id: tiny-exercise
title: Tiny
participants:
  - sector: health
timeline:
  - id: first
    at: T+00:05
    kind: message
    args: {subject: hello}
"""


def test_offsets_in_both_forms() -> None:
    assert parse_offset("T+00:05") == 300.0
    assert parse_offset("T+1:30:00") == 5400.0
    assert parse_offset("T+2:00") == 7200.0
    assert format_offset(5400.0) == "T+1:30:00"
    with pytest.raises(ValueError, match="T\\+HH:MM"):
        parse_offset("T+5")


def test_a_good_scenario_parses() -> None:
    scenario = parse_scenario(GOOD, "tiny.yaml")
    assert scenario.timeline[0].at == 300.0
    assert scenario.ends_at == 300.0


def test_every_problem_is_located_by_line() -> None:
    text = GOOD.replace("    at: T+00:05\n", "    at: T+5\n    colour: red\n") + (
        "  - id: second\n    at: T+00:10\n    kind: alert\n    expectations:\n"
        "      - {id: cls, kind: classification, points: 5, within_minutes: 30}\n")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.yaml")
    problems = caught.value.problems
    assert problems[0].startswith("bad.yaml:7: timeline.0.at:")
    assert problems[1] == "bad.yaml:8: timeline.0.colour: Extra inputs are not permitted"
    assert problems[2].startswith("bad.yaml:15: timeline.1.expectations.0:")
    assert "needs 'classification'" in problems[2]


def test_unknown_inject_kind_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(GOOD.replace("kind: message", "kind: sms"), "k.yaml")
    assert caught.value.problems == [
        "k.yaml:8: timeline.0.kind: unknown inject kind 'sms'; known: alert, intel, message, "
        "traffic"]


def test_invalid_yaml_is_located(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\ntitle: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml:3: not valid YAML"):
        load_scenario(path)


def test_shipped_scenarios_are_valid_and_use_the_demo_constituency() -> None:
    shipped = shipped_scenarios()
    assert sorted(shipped) == ["ddos-defacement-government", "phishing-data-breach",
                               "ransomware-health"]
    demo = [Entity(id="minsa", name="m", sector="health"),
            Entity(id="essalud", name="e", sector="health"),
            Entity(id="sunat", name="s", sector="finance"),
            Entity(id="onpe", name="o", sector="government"),
            Entity(id="minedu", name="e", sector="education")]
    for path in shipped.values():
        scenario = load_scenario(path)
        assert check_participants(scenario, demo) == []
    health = load_scenario(shipped["ransomware-health"])
    assert health.participant_ids(demo) == ["minsa", "essalud"]
    assert [i.kind for i in health.timeline] == ["message", "alert", "traffic", "intel", "alert"]
