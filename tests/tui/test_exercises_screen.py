"""The Exercises screen driven by Textual's Pilot, on a real store with a real exercise.

The live test plays the shipped ``ransomware-health`` scenario at 600× with its bot: the
real engine (the pipeline as ``deliver``) and the real entity API on 127.0.0.1, built by
the same :func:`pukara.cli.tui.runtime_control` ``pukara tui`` uses. The store is the
TUI tests' one (see conftest): minsa is its only health entity, so the only participant.
Waits poll with a limit; nothing asserts how fast anything is.

The snapshots show a *constructed* paused run (times, inject states and the manual score
set in the fixture) on the pinned snapshot store, so they are the same every day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, MarkdownViewer, OptionList, Static

from cases.services.audit import Actor
from cases.store.tables import audit_log
from playbooks.exercises import runs
from playbooks.exercises.bots import plan
from playbooks.exercises.loader import load_scenario, shipped_scenarios
from playbooks.exercises.scoring import add_manual_score
from playbooks.exercises.tables import exercise_injects, exercises
from pukara.cli.tui import runtime_control
from pukara.core.config import load_settings
from pukara.core.errors import Conflict
from pukara.wiring import Services, build_services
from tests.tui.conftest import ANALYST, FROZEN, frozen, make_app, plain, settle
from tui.app import PukaraApp
from tui.client.local import LocalClient
from tui.client.remote import RemoteClient
from tui.screens.dialogs import ChoiceDialog, TextDialog
from tui.screens.exercises import SPEEDS, ExercisesScreen, ReportScreen

SCENARIO = "ransomware-health"
COMMENT = "escalated to the ministry before the window"
SNAPSHOT_RUN = "ransomware-health-20260612080000-beef"
SIZES = {"80x24": (80, 24), "160x50": (160, 50)}


async def until(pilot: Pilot[None], condition: Callable[[], bool], limit: float = 30.0) -> bool:
    """Let the app run until ``condition`` holds (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
        await pilot.pause()
    return condition()


async def choose(pilot: Pilot[None], value: str) -> None:
    """Pick the option ``value`` of the open ChoiceDialog with the keyboard."""
    dialog = pilot.app.screen
    assert isinstance(dialog, ChoiceDialog)
    index = [v for v, _ in dialog.choices].index(value)
    options = dialog.query_one(OptionList)
    options.focus()
    await pilot.press("home", *(["down"] * index), "enter")
    await settle(pilot)


async def type_in(pilot: Pilot[None], text: str) -> None:
    """Answer the open TextDialog."""
    assert isinstance(pilot.app.screen, TextDialog)
    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(pilot)


def status(services: Services, exercise_id: str) -> dict[str, Any]:
    """The stored state of the run."""
    return runs.status(services.store, exercise_id)


def outcome(app: PukaraApp, expectation: str) -> str:
    """The screen's last known state of minsa's ``expectation``."""
    screen = app.screen
    assert isinstance(screen, ExercisesScreen) and screen.state is not None
    return next((o["state"] for o in screen.state["outcomes"]
                 if o["entity"] == "minsa" and o["expectation"] == expectation), "none")


@pytest.mark.asyncio
async def test_start_pause_resume_score_report_abort(services: Services) -> None:
    scenario = load_scenario(shipped_scenarios()[SCENARIO])
    decided = plan(scenario.bots, "minsa", "c2-alerts")
    assert decided.respond and decided.delay_minutes < 60  # so report-c2 is met by the bot
    control = runtime_control(services)
    client = LocalClient(services, actor=ANALYST, clock=frozen, exercise_control=control)
    app = make_app(client, start="exercises")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            await pilot.press("n")
            await settle(pilot)
            await choose(pilot, SCENARIO)
            await choose(pilot, "600")
            await choose(pilot, "all")
            screen = app.screen
            assert isinstance(screen, ExercisesScreen)
            assert await until(pilot, lambda: screen.state is not None)
            run = screen.exercise_id
            assert run is not None and run.startswith(f"{SCENARIO}-")
            assert (status(services, run)["participants"], status(services, run)["bots"]) == (
                ["minsa"], ["minsa"])
            assert await until(pilot, lambda: outcome(app, "report-c2") == "met")

            await pilot.press("space")
            await settle(pilot)
            assert status(services, run)["status"] == "PAUSED"
            assert control.engine is not None
            assert [j.id for j in control.engine.scheduler.get_jobs() if run in j.id] == []
            frozen_at = status(services, run)["exercise_seconds"]
            clock_shown = plain(screen.query_one("#ex-clock", Static))
            await asyncio.sleep(0.5)
            await settle(pilot)
            assert status(services, run)["exercise_seconds"] == frozen_at
            assert plain(screen.query_one("#ex-clock", Static)) == clock_shown
            assert "PAUSED" in clock_shown

            await pilot.press("r")
            await settle(pilot)
            assert status(services, run)["status"] in ("RUNNING", "FINISHED")
            assert await until(pilot, lambda: status(services, run)["exercise_seconds"]
                               > frozen_at)

            await _score_by_hand(pilot, services, run)
            await _open_report(pilot, run)

            await pilot.press("K")
            await settle(pilot)
            await choose(pilot, "abort")
            assert await until(pilot, lambda: screen.state is not None
                               and screen.state["status"] in ("CANCELED", "FINISHED"))
            final = status(services, run)
            assert {i["state"] for i in final["injects"]} <= {"fired", "canceled"}
            assert "pending" not in {i["state"] for i in final["injects"]}
    finally:
        control.close()


async def _score_by_hand(pilot: Pilot[None], services: Services, run: str) -> None:
    """m on minsa's row: the whole exercise, +5 points, a comment; the score and its audit."""
    screen = pilot.app.screen
    assert isinstance(screen, ExercisesScreen)
    screen.query_one("#table", DataTable).focus()
    await pilot.press("m")
    await settle(pilot)
    await choose(pilot, "")
    await type_in(pilot, "5")
    await type_in(pilot, COMMENT)
    assert await until(pilot, lambda: bool(screen.state and screen.state["scores"][0]["manual"]))
    row = screen.state["scores"][0] if screen.state else {}
    assert row["entity"] == "minsa"
    assert row["manual"] == [{"points": 5, "comment": COMMENT, "by": ANALYST.name}]
    with services.store.read() as conn:
        entries = list(conn.execute(select(audit_log.c.actor, audit_log.c.entity_id,
                                           audit_log.c.details)
                                    .where(audit_log.c.action == "exercise.score",
                                           audit_log.c.object_id == run)))
    assert [(e.actor, e.entity_id, e.details) for e in entries] == [
        (ANALYST.name, "minsa", {"points": 5, "comment": COMMENT})]


async def _open_report(pilot: Pilot[None], run: str) -> None:
    """o opens the after-action report; escape goes back."""
    await pilot.press("o")
    await settle(pilot)
    report = pilot.app.screen
    assert isinstance(report, ReportScreen)
    assert report.exercise_id == run
    assert run in report.markdown
    assert COMMENT in report.markdown
    assert report.query_one(MarkdownViewer).document.source == report.markdown
    await pilot.press("escape")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ExercisesScreen)


def test_speeds_offered_are_the_engines_bounds() -> None:
    """Every speed offered is one ``runs.create`` accepts (0 < speed ≤ 10000)."""
    assert [float(value) for value, _ in SPEEDS] == [1.0, 60.0, 600.0, 3000.0]


# -- snapshots ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paused_home(snapshot_home: Path) -> Path:
    """The pinned snapshot store plus a constructed paused run at T+00:25:00 (60×): the
    briefing and the C2 alerts fired, minsa's report pending, a manual +5 with a comment."""
    scenario = load_scenario(shipped_scenarios()[SCENARIO])
    coordinator = Actor("coordinator")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUKARA_HOME", str(snapshot_home))
        patch.setattr(runs, "new_id", lambda *_: SNAPSHOT_RUN)
        built = build_services(load_settings())
        try:
            run = runs.create(built.store, scenario, ["minsa"], [], speed=60,
                              actor=coordinator)
            runs.transition(built.store, run, "start", coordinator)
            runs.transition(built.store, run, "pause", coordinator)
            add_manual_score(built.store, run, "minsa", points=5,
                             comment="quick escalation", actor=coordinator)
            _pin(built, run)
        finally:
            built.close()
    return snapshot_home


def _pin(services: Services, run: str) -> None:
    with services.store.write() as conn:
        conn.execute(update(exercises).where(exercises.c.id == run).values(
            created_at=FROZEN - timedelta(minutes=1), started_at=FROZEN - timedelta(seconds=25),
            paused_at=FROZEN, paused_seconds=0.0))
        for inject, fired in (("briefing", 120.4), ("c2-alerts", 600.3)):
            conn.execute(update(exercise_injects).where(
                exercise_injects.c.exercise_id == run,
                exercise_injects.c.inject_id == inject).values(
                state="fired", exercise_seconds=fired, lateness_seconds=0.004,
                fired_at=FROZEN - timedelta(seconds=25 - fired / 60), result={}))


@pytest.fixture
def paused_client(paused_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalClient]:
    """A client on the store with the paused run (no exercise control: nothing plays)."""
    monkeypatch.setenv("PUKARA_HOME", str(paused_home))
    client = LocalClient(build_services(load_settings()), actor=ANALYST, clock=frozen)
    yield client
    client.close()


@pytest.mark.parametrize("size", SIZES)
def test_exercises_snapshot(size: str, paused_client: LocalClient, snap_compare: Any) -> None:
    app = make_app(paused_client, start="exercises")
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


def test_dashboard_snapshot_with_the_paused_exercise(paused_client: LocalClient,
                                             snap_compare: Any) -> None:
    app = make_app(paused_client, start="dashboard")
    assert snap_compare(app, terminal_size=SIZES["160x50"], run_before=settle)


# -- RemoteClient: the exact requests it makes (a MockTransport records them; the same calls
# -- against a real `pukara serve` are in test_remote_exercises.py) -------------------------
def test_remote_exercise_calls_use_the_documented_routes() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.raw_path.decode(), request.content))
        if request.url.path.endswith("/report"):
            return httpx.Response(200, text="# After-action report\n")
        if request.url.path.endswith("/resume"):
            return httpx.Response(409, json={"title": "Conflict",
                                             "detail": "cannot resume while RUNNING"})
        return httpx.Response(200, json={"exercise_id": "ex/1", "status": "PAUSED"})

    client = RemoteClient("https://pukara.example/", "t0ken",
                          transport=httpx.MockTransport(answer))
    assert client.exercise_pause("ex/1")["status"] == "PAUSED"
    client.exercise_score("ex/1", "minsa", None, -3, "late")
    assert client.exercise_report("ex/1") == "# After-action report\n"
    with pytest.raises(Conflict, match="cannot resume while RUNNING"):
        client.exercise_resume("ex/1")
    assert [(m, p) for m, p, _ in seen] == [
        ("POST", "/api/v1/analyst/exercises/ex%2F1/pause"),
        ("POST", "/api/v1/analyst/exercises/ex%2F1/scores"),
        ("GET", "/api/v1/analyst/exercises/ex%2F1/report"),
        ("POST", "/api/v1/analyst/exercises/ex%2F1/resume")]
    assert orjson.loads(seen[1][2]) == {"entity": "minsa", "expectation": None, "points": -3,
                                        "comment": "late"}
