"""Fixtures for the exercise tests: a real store with the demo constituency, and helpers.

Everything runs for real: the store (SQLite in a temp PUKARA_HOME), the pipeline as
``deliver``, the entity API on 127.0.0.1 for the bots. Scenarios written inline here are
constructed test inputs, not samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.services.entity_file import load_entities_file
from playbooks.exercises.loader import parse_scenario
from playbooks.exercises.model import Scenario
from playbooks.exercises.tables import exercise_injects
from pukara.wiring import Services, build_services


@pytest.fixture
def services(pukara_home: Path) -> Iterator[Services]:
    """Services on a fresh home holding the demo constituency (six entities)."""
    built = build_services()
    data = resources.files("pukara.demo_data").joinpath("entities.yaml")
    with resources.as_file(data) as path:
        built.identity.upsert_entities(load_entities_file(path))
    try:
        yield built
    finally:
        built.close()


def scenario(text: str) -> Scenario:
    """A constructed scenario from inline YAML."""
    return parse_scenario(text, "<test>")


def inject_states(services: Services, exercise_id: str) -> dict[str, dict[str, object]]:
    """inject id → its stored row."""
    with services.store.read() as conn:
        rows = conn.execute(select(exercise_injects).where(
            exercise_injects.c.exercise_id == exercise_id)).mappings()
        return {r["inject_id"]: dict(r) for r in rows}


def until(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    """Poll ``condition`` every 20 ms for at most ``limit`` seconds (no timing asserted)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def predicted_points(scenario: Scenario, targets: dict[str, list[str]]) -> dict[str, int]:
    """Points each bot should score, from its seeded plan and the expectations alone.

    ``targets`` maps inject id → the entities it targets. A response lands ``delay`` after
    the inject; an expectation is met when the response lands inside its window and the plan
    got it right (classification, indicator, final report in time).
    """
    from playbooks.exercises.bots import plan
    from playbooks.exercises.model import ExpectationKind

    points: dict[str, int] = {}
    for inject in scenario.timeline:
        for entity_id in targets.get(inject.id, []):
            points.setdefault(entity_id, 0)
            decided = plan(scenario.bots, entity_id, inject.id)
            if not decided.respond:
                continue
            for exp in inject.expectations:
                window = exp.within_minutes
                ok = decided.delay_minutes <= window
                if exp.kind is ExpectationKind.CLASSIFICATION:
                    ok = ok and decided.correct
                if exp.kind is ExpectationKind.INDICATOR:
                    ok = ok and decided.with_indicator
                if exp.kind is ExpectationKind.STATUS:
                    final = decided.final_after_minutes
                    ok = ok and final is not None and decided.delay_minutes + final <= window
                points[entity_id] += exp.points if ok else 0
    return points


def margins(scenario: Scenario, targets: dict[str, list[str]]) -> float:
    """The smallest distance (exercise minutes) between a bot's response and a window edge:
    large enough, and scheduling jitter at 600× cannot change the scores."""
    from playbooks.exercises.bots import plan

    smallest = float("inf")
    for inject in scenario.timeline:
        for entity_id in targets.get(inject.id, []):
            decided = plan(scenario.bots, entity_id, inject.id)
            for exp in inject.expectations:
                landing = decided.delay_minutes + (decided.final_after_minutes or 0
                                                   if exp.kind.value == "status" else 0)
                smallest = min(smallest, abs(exp.within_minutes - landing))
    return smallest
