"""The engine on a real store: pause/resume timing, restart, one leader, kill switch, misfire.

Injects are ``message`` (and one ``traffic``) so the tests exercise the clock, not parsing.
Waits poll the store with a limit; nothing asserts how fast anything is.
"""

from __future__ import annotations

from sqlalchemy import func, select

from cases.services.audit import Actor
from cases.store.tables import audit_log
from playbooks.exercises import leader, runs
from playbooks.exercises.model import Status
from playbooks.exercises.tables import exercise_messages
from pukara.core.schema import utcnow
from pukara.exercise_runtime import build_engine
from pukara.wiring import Services
from tests.playbooks.exercises.conftest import inject_states, scenario, until

COORD = Actor("coordinator-test")
SPEED = 600.0
THREE = scenario("""\
id: clock-test
title: Clock test (constructed)
participants: [{sector: health}]
timeline:
  - {id: one, at: "T+00:10", kind: message, args: {subject: one}}
  - {id: two, at: "T+00:30", kind: message, args: {subject: two}}
  - {id: three, at: "T+00:40", kind: message, args: {subject: three}}
""")


def new_run(services: Services, text_scenario=THREE) -> str:  # type: ignore[no-untyped-def]
    return runs.create(services.store, text_scenario, ["minsa", "essalud"], [], speed=SPEED,
                       actor=COORD)


def state(services: Services, exercise_id: str, inject: str) -> object:
    return inject_states(services, exercise_id)[inject]["state"]


def messages(services: Services, exercise_id: str) -> int:
    with services.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(exercise_messages).where(
            exercise_messages.c.exercise_id == exercise_id)).scalar_one())


def inject_audits(services: Services, exercise_id: str) -> int:
    with services.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.action == "exercise.inject",
            audit_log.c.object_id == exercise_id)).scalar_one())


def test_no_inject_fires_during_a_pause_and_offsets_hold_after_resume(
        services: Services) -> None:
    engine = build_engine(services)
    engine.start()
    try:
        run = new_run(services)
        engine.transition(run, "start", COORD)
        assert until(lambda: state(services, run, "one") == "fired")
        engine.transition(run, "pause", COORD)
        paused_at = utcnow()
        until(lambda: (utcnow() - paused_at).total_seconds() > 3.0, limit=4)
        assert state(services, run, "two") == "pending"  # its unpaused slot has passed
        engine.transition(run, "resume", COORD)
        assert until(lambda: runs.status(services.store, run)["status"] == "FINISHED")
    finally:
        engine.stop()
    rows = inject_states(services, run)
    assert [rows[i]["state"] for i in ("one", "two", "three")] == ["fired"] * 3
    assert rows["two"]["exercise_seconds"] >= 1800.0  # never early after the pause
    assert rows["three"]["exercise_seconds"] >= 2400.0
    assert rows["two"]["fired_at"] > paused_at
    assert messages(services, run) == 6  # 3 injects × 2 health entities
    with services.store.read() as conn:
        assert len(runs.pauses(conn, run)) == 1


def test_a_restart_resumes_where_the_exercise_was(services: Services) -> None:
    first = build_engine(services)
    first.start()
    run = new_run(services)
    first.transition(run, "start", COORD)
    assert until(lambda: state(services, run, "one") == "fired")
    first.transition(run, "pause", COORD)
    first.stop()  # the process goes away while the run is paused
    second = build_engine(services)
    second.start()
    try:
        assert until(lambda: second.is_leader)
        assert runs.status(services.store, run)["status"] == "PAUSED"
        assert state(services, run, "two") == "pending"
        second.transition(run, "resume", COORD)
        assert until(lambda: runs.status(services.store, run)["status"] == "FINISHED")
    finally:
        second.stop()
    assert [state(services, run, i) for i in ("one", "two", "three")] == ["fired"] * 3
    assert inject_audits(services, run) == 3  # each inject ran exactly once
    assert messages(services, run) == 6


def test_two_engines_one_leader_each_inject_once(services: Services) -> None:
    engines = [build_engine(services), build_engine(services)]
    for engine in engines:
        engine.start()
    try:
        assert until(lambda: any(e.is_leader for e in engines))
        run = new_run(services)
        runs.transition(services.store, run, "start", COORD)
        assert until(lambda: runs.status(services.store, run)["status"] == "FINISHED")
        leaders = [e for e in engines if e.is_leader]
        assert len(leaders) == 1
        assert leader.holder_of(services.store) == leaders[0].holder
    finally:
        for engine in engines:
            engine.stop()
    assert inject_audits(services, run) == 3
    assert messages(services, run) == 6


def test_kill_switch_stops_a_running_inject_and_cancels_the_rest(services: Services) -> None:
    flood = scenario("""\
id: kill-test
title: Kill switch (constructed)
participants: [{entity: minsa}]
timeline:
  - {id: scan, at: 60, kind: traffic, args: {pattern: port_scan, ports: 19000}}
  - {id: later, at: "T+00:30", kind: message, args: {subject: never}}
""")
    engine = build_engine(services)
    engine.start()
    try:
        run = runs.create(services.store, flood, ["minsa"], [], speed=SPEED, actor=COORD)
        engine.transition(run, "start", COORD)
        assert until(lambda: state(services, run, "scan") == "running")
        engine.abort(run, COORD)
        assert until(lambda: state(services, run, "scan") == "canceled", limit=1.0)
        assert not engine._executing
    finally:
        engine.stop()
    status = runs.status(services.store, run)
    assert status["status"] == Status.CANCELED.value
    assert state(services, run, "later") == "canceled"
    assert status["injects"][0]["result"] == {"error": "aborted by the kill switch"}


def test_an_inject_that_missed_its_slot_is_reported_missed_never_run(
        services: Services) -> None:
    late = scenario("""\
id: misfire-test
title: Misfire (constructed)
participants: [{entity: minsa}]
timeline:
  - {id: early, at: "T+00:05", kind: message, args: {subject: early}}
  - {id: later, at: "T+00:50", kind: message, args: {subject: later}}
""")
    run = runs.create(services.store, late, ["minsa"], [], speed=SPEED, actor=COORD)
    runs.transition(services.store, run, "start", COORD)  # no engine is running
    started = utcnow()
    until(lambda: (utcnow() - started).total_seconds() > 2.0, limit=3)
    engine = build_engine(services, misfire_grace=1)
    engine.start()
    try:
        assert until(lambda: runs.status(services.store, run)["status"] == "FINISHED")
        engine.sync()
    finally:
        engine.stop()
    rows = inject_states(services, run)
    assert rows["early"]["state"] == "missed"
    assert rows["early"]["lateness_seconds"] > 1.0
    assert rows["later"]["state"] == "fired"
    assert messages(services, run) == 1  # only "later" delivered
