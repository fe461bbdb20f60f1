"""Expectations scored from what reached the store: the participants' incidents in this run.

A participant's answer to an inject is one of its incidents of this run (``exercise_id``)
reported inside the inject's window (exercise time, pauses excluded). Each incident answers
at most one inject; the (inject, incident) pairs meeting most expectations are matched first,
among equals earlier injects, then earlier incidents. An expectation is **met** when its
incident satisfies it inside the expectation's own ``within_minutes``; after that (or once
the run ended) it is **missed**; before, **pending**.
Coordinators add manual points with a comment (audited). Per-sector aggregates sum entities.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from statistics import mean
from typing import Any

from sqlalchemy import Connection, insert, select

from cases.services import audit
from cases.store import Store
from cases.store.tables import entities, incident_observables, incident_updates, incidents
from cases.store.tables_cases import case_tasks
from playbooks.exercises import runs
from playbooks.exercises.clock import Clock
from playbooks.exercises.model import (
    Expectation,
    ExpectationKind,
    Inject,
    Scenario,
    Status,
)
from playbooks.exercises.tables import exercise_injects, exercise_manual_scores
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType, normalize
from pukara.core.schema import utcnow


@dataclass
class Reported:
    """One participant incident of the run, in exercise time."""

    id: str
    entity_id: str
    seconds: float
    classification: str
    status: str
    observables: set[tuple[str, str]] = field(default_factory=set)
    stages: dict[str, float] = field(default_factory=dict)
    tasks_done: dict[str, float] = field(default_factory=dict)


@dataclass
class Outcome:
    """One expectation of one entity for one inject."""

    entity: str
    inject: str
    expectation: str
    kind: str
    state: str  # met | missed | pending
    points: int
    max_points: int
    seconds: float | None  # exercise seconds from the inject to meeting it


def _load(conn: Connection, exercise_id: str, clock: Clock,
          pauses: list[tuple[datetime, datetime | None]]) -> dict[str, list[Reported]]:
    def at(moment: datetime) -> float:
        return clock.exercise_seconds_of(moment, pauses)

    found: dict[str, Reported] = {}
    for row in conn.execute(select(incidents.c.id, incidents.c.entity_id, incidents.c.created_at,
                                   incidents.c.classification, incidents.c.status,
                                   incidents.c.case_id)
                            .where(incidents.c.exercise_id == exercise_id)):
        found[row.id] = Reported(row.id, row.entity_id, at(row.created_at),
                                 row.classification, row.status)
        for task in conn.execute(select(case_tasks.c.title, case_tasks.c.updated_at).where(
                case_tasks.c.case_id == row.case_id, case_tasks.c.status == "done")):
            found[row.id].tasks_done[task.title] = at(task.updated_at)
    ids = list(found)
    for obs in conn.execute(select(incident_observables.c.incident_id, incident_observables.c.type,
                                   incident_observables.c.value)
                            .where(incident_observables.c.incident_id.in_(ids))):
        found[obs.incident_id].observables.add((obs.type, obs.value))
    for upd in conn.execute(select(incident_updates.c.incident_id, incident_updates.c.stage,
                                   incident_updates.c.created_at)
                            .where(incident_updates.c.incident_id.in_(ids))):
        found[upd.incident_id].stages.setdefault(upd.stage, at(upd.created_at))
    by_entity: dict[str, list[Reported]] = defaultdict(list)
    for item in sorted(found.values(), key=lambda r: r.seconds):
        by_entity[item.entity_id].append(item)
    return by_entity


def _met_at(expectation: Expectation, report: Reported) -> float | None:
    """Exercise second at which ``report`` meets ``expectation`` (None: it does not)."""
    kind = expectation.kind
    if kind is ExpectationKind.REPORT:
        return report.seconds
    if kind is ExpectationKind.CLASSIFICATION:
        return report.seconds if report.classification == expectation.classification else None
    if kind is ExpectationKind.INDICATOR and expectation.indicator is not None:
        kind_of = ObservableType(expectation.indicator.type)
        wanted = (kind_of.value, normalize(kind_of, expectation.indicator.value))
        return report.seconds if wanted in report.observables else None
    if kind is ExpectationKind.STATUS and expectation.status is not None:
        if expectation.status in report.stages:
            return report.stages[expectation.status]
        return report.seconds if report.status == expectation.status else None
    if kind is ExpectationKind.TASKS:
        done = [report.tasks_done.get(title) for title in expectation.tasks]
        return max(d for d in done if d is not None) if all(d is not None for d in done) else None
    return None


def _merit(inject: Inject, report: Reported, fired: float) -> int:
    """How many of the inject's expectations ``report`` meets (0: outside the window)."""
    window = max((e.within_minutes * 60 for e in inject.expectations), default=0.0)
    if not fired <= report.seconds <= fired + window:
        return 0
    return sum(1 for e in inject.expectations
               if _judge(e, report, fired, float("inf"), ended=False)[0] == "met")


def _assign(injects: list[tuple[Inject, float]],
            reports: list[Reported]) -> dict[str, Reported]:
    """Which report answers which inject, one report per inject: the (inject, report) pairs
    meeting most expectations are taken first; among equals, earlier injects, then earlier
    reports."""
    pairs = sorted(((-_merit(inject, report, fired), fired, report.seconds, index, report)
                    for index, (inject, fired) in enumerate(injects) for report in reports),
                   key=lambda pair: pair[:4])
    chosen: dict[str, Reported] = {}
    used: set[str] = set()
    for negative_merit, _fired, _at, index, report in pairs:
        inject_id = injects[index][0].id
        if negative_merit == 0 or inject_id in chosen or report.id in used:
            continue
        chosen[inject_id] = report
        used.add(report.id)
    return chosen


def _judge(expectation: Expectation, report: Reported | None, fired: float,
           now: float, ended: bool) -> tuple[str, float | None]:
    limit = fired + expectation.within_minutes * 60
    met = _met_at(expectation, report) if report is not None else None
    if met is not None and met <= limit:
        return "met", met - fired
    return ("missed" if ended or now > limit else "pending"), None


def outcomes(store: Store, exercise_id: str) -> list[Outcome]:
    """Every (entity, inject, expectation) outcome of a run, as of now."""
    with store.read() as conn:
        current = runs.row(conn, exercise_id)
        pauses = runs.pauses(conn, exercise_id)
        clock = Clock.of(current)
        reports = _load(conn, exercise_id, clock, pauses)
        fired = dict(conn.execute(select(exercise_injects.c.inject_id,
                                         exercise_injects.c.exercise_seconds)
                                  .where(exercise_injects.c.exercise_id == exercise_id,
                                         exercise_injects.c.state == "fired")).all())
        sectors = dict(conn.execute(select(entities.c.id, entities.c.sector)).all())
    scenario = Scenario.model_validate(current["scenario"])
    ended = current["status"] in (Status.FINISHED.value, Status.CANCELED.value)
    now = clock.exercise_seconds(utcnow())
    result: list[Outcome] = []
    for entity_id in current["participants"]:
        member = _Stub(entity_id, sectors.get(entity_id, ""))
        injects = [(i, float(fired[i.id] or 0)) for i in scenario.timeline
                   if i.id in fired and i.expectations and i.target.picks(member)]
        answers = _assign(injects, reports.get(entity_id, []))
        for inject, start in injects:
            for exp in inject.expectations:
                state, seconds = _judge(exp, answers.get(inject.id), start, now, ended)
                result.append(Outcome(entity_id, inject.id, exp.id, exp.kind.value, state,
                                      exp.points if state == "met" else 0, exp.points, seconds))
    return result


@dataclass(frozen=True)
class _Stub:
    id: str
    sector: str


def add_manual_score(store: Store, exercise_id: str, entity_id: str, *, points: int,
                     comment: str, actor: audit.Actor) -> None:
    """A coordinator's points (may be negative) with a mandatory comment; audited."""
    if not comment.strip():
        raise InvalidInput("a manual score needs a comment", field="comment")
    with store.write() as conn:
        current = runs.row(conn, exercise_id)
        if entity_id not in current["participants"]:
            raise InvalidInput(f"{entity_id!r} does not take part in {exercise_id}",
                               field="entity")
        conn.execute(insert(exercise_manual_scores).values(
            exercise_id=exercise_id, entity_id=entity_id, points=points, comment=comment,
            scored_by=actor.name, created_at=utcnow()))
        audit.append(conn, actor, "exercise.score", "exercise", exercise_id,
                     entity_id=entity_id, details={"points": points, "comment": comment})


def scoreboard(store: Store, exercise_id: str) -> dict[str, Any]:
    """Per-entity and per-sector scores (the live scoreboard and the CLI's JSON)."""
    results = outcomes(store, exercise_id)
    with store.read() as conn:
        current = runs.row(conn, exercise_id)
        manual = list(conn.execute(select(exercise_manual_scores).where(
            exercise_manual_scores.c.exercise_id == exercise_id)).mappings())
        sectors = dict(conn.execute(select(entities.c.id, entities.c.sector)).all())
    rows = {e: _empty(e, sectors.get(e, "")) for e in current["participants"]}
    for item in results:
        row = rows[item.entity]
        row["points"] += item.points
        row["max_points"] += item.max_points
        row[item.state] += 1
        if item.kind == ExpectationKind.REPORT.value and item.seconds is not None:
            row["_reports"].append(item.seconds)
    for score in manual:
        rows[score["entity_id"]]["points"] += score["points"]
        rows[score["entity_id"]]["manual"].append(
            {"points": score["points"], "comment": score["comment"], "by": score["scored_by"]})
    scores = [_finish_row(r) for r in rows.values()]
    scores.sort(key=lambda r: (-r["points"], r["entity"]))
    return {"exercise_id": exercise_id, "status": current["status"], "scores": scores,
            "sectors": _sectors(scores), "outcomes": [asdict(o) for o in results]}


def _empty(entity_id: str, sector: str) -> dict[str, Any]:
    return {"entity": entity_id, "sector": sector, "points": 0, "max_points": 0, "met": 0,
            "missed": 0, "pending": 0, "manual": [], "_reports": []}


def _finish_row(row: dict[str, Any]) -> dict[str, Any]:
    reports = row.pop("_reports")
    row["mean_minutes_to_report"] = round(mean(reports) / 60, 2) if reports else None
    return row


def _sectors(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in scores:
        grouped[row["sector"]].append(row)
    return [{"sector": sector, "entities": len(rows),
             "points": sum(r["points"] for r in rows),
             "max_points": sum(r["max_points"] for r in rows),
             "met": sum(r["met"] for r in rows), "missed": sum(r["missed"] for r in rows),
             "pending": sum(r["pending"] for r in rows)}
            for sector, rows in sorted(grouped.items())]
