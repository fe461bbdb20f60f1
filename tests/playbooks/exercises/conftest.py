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
