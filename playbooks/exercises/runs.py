"""The state of exercise runs in the store: create, start, pause, resume, abort, finish.

These functions only write rows (audited); the scheduler leader (:mod:`.engine`) follows the
rows. Any process may call them — the CLI pausing an exercise another process runs included.
Transitions follow OpenAEV's simulation states:
SCHEDULED → RUNNING ⇄ PAUSED → CANCELED | FINISHED.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from cases.services import audit
from cases.store import Store
from playbooks.exercises.clock import Clock
from playbooks.exercises.model import Scenario, Status
from playbooks.exercises.tables import (
    ensure_tables,
    exercise_injects,
    exercise_pauses,
    exercises,
)
from pukara.core.errors import Conflict, NotFound
from pukara.core.schema import utcnow

#: which statuses each action may start from
ALLOWED = {
    "start": {Status.SCHEDULED},
    "pause": {Status.RUNNING},
    "resume": {Status.PAUSED},
    "abort": {Status.SCHEDULED, Status.RUNNING, Status.PAUSED},
    "finish": {Status.RUNNING},
}


def new_id(scenario_id: str, now: datetime) -> str:
    """A readable, unique run id: ``<scenario>-<yyyymmddHHMMSS>-<4 hex>``."""
    return f"{scenario_id[:40]}-{now:%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


def create(store: Store, scenario: Scenario, participants: list[str], bots: list[str], *,
           speed: float, actor: audit.Actor) -> str:
    """Record a new SCHEDULED run of ``scenario`` with its injects pending."""
    if speed <= 0 or speed > 10_000:
        raise ValueError("speed must be in (0, 10000]")
    ensure_tables(store.engine)
    now = utcnow()
    exercise_id = new_id(scenario.id, now)
    with store.write() as conn:
        conn.execute(insert(exercises).values(
            id=exercise_id, scenario_id=scenario.id, title=scenario.title,
            scenario=scenario.model_dump(mode="json"), participants=participants, bots=bots,
            status=Status.SCHEDULED.value, speed=speed, created_at=now,
            created_by=actor.name, paused_seconds=0.0))
        conn.execute(insert(exercise_injects), [
            {"exercise_id": exercise_id, "inject_id": inject.id, "offset_seconds": inject.at,
             "kind": inject.kind, "state": "pending"} for inject in scenario.timeline])
        audit.append(conn, actor, "exercise.create", "exercise", exercise_id,
                     details={"scenario": scenario.id, "speed": speed,
                              "participants": len(participants), "bots": len(bots)})
    return exercise_id


def row(conn: Connection, exercise_id: str) -> RowMapping:
    """The ``exercises`` row, or NotFound."""
    found = conn.execute(select(exercises).where(exercises.c.id == exercise_id)).mappings().first()
    if found is None:
        raise NotFound(f"no exercise {exercise_id!r}")
    return found


def _guard(current: RowMapping, action: str) -> None:
    if Status(current["status"]) not in ALLOWED[action]:
        raise Conflict(f"cannot {action} exercise {current['id']} while {current['status']}",
                       field="status")


def transition(store: Store, exercise_id: str, action: str, actor: audit.Actor) -> Status:
    """Apply ``action`` (start|pause|resume|abort|finish); returns the new status."""
    now = utcnow()
    with store.write() as conn:
        current = row(conn, exercise_id)
        _guard(current, action)
        values, status = _changes(conn, current, action, now)
        conn.execute(update(exercises).where(exercises.c.id == exercise_id).values(**values))
        if status in (Status.CANCELED, Status.FINISHED):
            conn.execute(update(exercise_injects)
                         .where(exercise_injects.c.exercise_id == exercise_id,
                                exercise_injects.c.state == "pending")
                         .values(state="canceled"))
        audit.append(conn, actor, f"exercise.{action}", "exercise", exercise_id,
                     before={"status": current["status"]}, after={"status": status.value},
                     details={"exercise_seconds": Clock.of(current).exercise_seconds(now)})
    return status


def _changes(conn: Connection, current: RowMapping, action: str,
             now: datetime) -> tuple[dict[str, Any], Status]:
    clock = Clock.of(current)
    if action == "start":
        return {"status": Status.RUNNING.value, "started_at": now}, Status.RUNNING
    if action == "pause":
        conn.execute(insert(exercise_pauses).values(
            exercise_id=current["id"], paused_at=now,
            exercise_seconds=clock.exercise_seconds(now)))
        return {"status": Status.PAUSED.value, "paused_at": now}, Status.PAUSED
    if action == "resume":
        paused = (now - current["paused_at"]).total_seconds()
        conn.execute(update(exercise_pauses)
                     .where(exercise_pauses.c.exercise_id == current["id"],
                            exercise_pauses.c.resumed_at.is_(None))
                     .values(resumed_at=now))
        return {"status": Status.RUNNING.value, "paused_at": None,
                "paused_seconds": clock.paused_seconds + paused}, Status.RUNNING
    status = Status.CANCELED if action == "abort" else Status.FINISHED
    return {"status": status.value, "ended_at": current["paused_at"] or now}, status


def pauses(conn: Connection, exercise_id: str) -> list[tuple[datetime, datetime | None]]:
    """The pause records of a run, oldest first."""
    rows = conn.execute(select(exercise_pauses.c.paused_at, exercise_pauses.c.resumed_at)
                        .where(exercise_pauses.c.exercise_id == exercise_id)
                        .order_by(exercise_pauses.c.id))
    return [(r.paused_at, r.resumed_at) for r in rows]


def status(store: Store, exercise_id: str) -> dict[str, Any]:
    """The run's state: status, clock, and each inject's state."""
    now = utcnow()
    with store.read() as conn:
        current = row(conn, exercise_id)
        injects = list(conn.execute(select(exercise_injects)
                                    .where(exercise_injects.c.exercise_id == exercise_id)
                                    .order_by(exercise_injects.c.offset_seconds)).mappings())
    clock = Clock.of(current)
    return {
        "exercise_id": exercise_id, "scenario": current["scenario_id"],
        "title": current["title"], "status": current["status"], "speed": current["speed"],
        "exercise_seconds": round(clock.exercise_seconds(now), 3),
        "ends_at_seconds": Scenario.model_validate(current["scenario"]).ends_at,
        "started_at": _iso(current["started_at"]), "ended_at": _iso(current["ended_at"]),
        "participants": current["participants"], "bots": current["bots"],
        "injects": [{"id": i["inject_id"], "kind": i["kind"], "offset_seconds": i["offset_seconds"],
                     "state": i["state"], "fired_at": _iso(i["fired_at"]),
                     "exercise_seconds": i["exercise_seconds"],
                     "lateness_seconds": i["lateness_seconds"],
                     "duration_seconds": i["duration_seconds"], "result": i["result"]}
                    for i in injects],
    }


def list_runs(store: Store) -> list[dict[str, Any]]:
    """Every run, newest first."""
    ensure_tables(store.engine)
    with store.read() as conn:
        rows = conn.execute(select(exercises.c.id, exercises.c.scenario_id, exercises.c.title,
                                   exercises.c.status, exercises.c.speed,
                                   exercises.c.created_at)
                            .order_by(exercises.c.created_at.desc()))
        return [{"id": r.id, "scenario": r.scenario_id, "title": r.title, "status": r.status,
                 "speed": r.speed, "created_at": _iso(r.created_at)} for r in rows]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
