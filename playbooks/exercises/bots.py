"""Simulated participants: answer injects through the real HTTP API with a seeded profile.

Each (entity, inject) gets its own ``random.Random`` seeded from ``(seed, entity, inject)``,
and every draw is made in a fixed order, so what a bot does never depends on timing or on the
other bots: respond or miss, reaction delay (exercise minutes), right or wrong classification,
indicator included or not. Responses are due in *exercise* time, read from the stored clock at
each tick, so a pause holds the bots too. Requests carry an ``Idempotency-Key`` so a retry
never reports twice.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from cases.store import Store
from playbooks.exercises import runs
from playbooks.exercises.clock import Clock
from playbooks.exercises.engine import targets
from playbooks.exercises.model import (
    Bots,
    ExpectationKind,
    Inject,
    ReactionTime,
    Scenario,
    Status,
)
from playbooks.exercises.tables import exercise_injects
from pukara.core.schema import utcnow

TICK_SECONDS = 0.05
WRONG_CLASSES = ("information-gathering/scanner", "other/undetermined")


@dataclass(frozen=True)
class Plan:
    """What one bot will do about one inject."""

    entity_id: str
    inject_id: str
    respond: bool
    delay_minutes: float
    correct: bool
    with_indicator: bool
    final_after_minutes: float | None


def draw_delay(reaction: ReactionTime, rng: random.Random) -> float:
    """A reaction delay in exercise minutes."""
    if reaction.distribution == "uniform":
        return rng.uniform(reaction.low, reaction.high)
    return rng.lognormvariate(0.0, reaction.sigma) * reaction.median


def plan(bots: Bots, entity_id: str, inject_id: str) -> Plan:
    """The deterministic plan of ``entity_id``'s bot for ``inject_id``."""
    profile = bots.profile(entity_id)
    rng = random.Random(f"{bots.seed}:{entity_id}:{inject_id}")
    respond = rng.random() >= profile.miss_chance
    delay = draw_delay(profile.reaction, rng)
    correct = rng.random() < profile.accuracy
    with_indicator = rng.random() < profile.indicator_chance
    return Plan(entity_id, inject_id, respond, delay, correct, with_indicator,
                profile.final_after_minutes)


def incident_body(inject: Inject, entity_id: str, decided: Plan, now: datetime) -> dict[str, Any]:
    """The incident a bot reports for an inject (the real API's minimal body)."""
    wanted = next((e.classification for e in inject.expectations if e.classification), None)
    wanted = wanted or str(inject.args.get("classification", "other/undetermined"))
    chosen = wanted if decided.correct else next(c for c in WRONG_CLASSES if c != wanted)
    observables = [{"type": e.indicator.type, "value": e.indicator.value}
                   for e in inject.expectations if e.indicator and decided.with_indicator]
    return {"title": f"{inject.title or inject.id} ({entity_id})", "classification": chosen,
            "detected_at": now.isoformat(), "description": f"Reported by the {entity_id} bot",
            "severity": "high", "tlp": "amber", "observables": observables}


@dataclass
class _Task:
    due: float
    kind: str
    plan: Plan
    inject: Inject


class BotSwarm:
    """The bots of one run, ticking in a thread and posting through a small worker pool."""

    def __init__(self, store: Store, exercise_id: str, base_url: str,
                 tokens: dict[str, str], *, workers: int = 4) -> None:
        self.store = store
        self.exercise_id = exercise_id
        self.tokens = tokens
        self.client = httpx.Client(base_url=base_url, timeout=30.0)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="exercise-bot")
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="exercise-bots", daemon=True)
        self.tasks: list[_Task] = []
        self._tasks_lock = threading.Lock()
        self.planned: set[str] = set()
        self.incidents: dict[tuple[str, str], str] = {}
        self.sent: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.latencies: list[float] = []

    def start(self) -> None:
        """Start ticking."""
        self.thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for requests in flight."""
        self.stop_event.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True)
        self.client.close()

    def _loop(self) -> None:
        while not self.stop_event.wait(TICK_SECONDS):
            with self.store.read() as conn:
                current = runs.row(conn, self.exercise_id)
                fired = list(conn.execute(select(exercise_injects.c.inject_id,
                                                 exercise_injects.c.exercise_seconds)
                                          .where(exercise_injects.c.exercise_id
                                                 == self.exercise_id,
                                                 exercise_injects.c.state == "fired")))
            if current["status"] in (Status.FINISHED.value, Status.CANCELED.value):
                return
            scenario = Scenario.model_validate(current["scenario"])
            for inject_id, seconds in fired:
                if inject_id not in self.planned:
                    self.planned.add(inject_id)
                    self._plan(scenario, current["participants"], inject_id, seconds or 0.0)
            now_seconds = Clock.of(current).exercise_seconds(utcnow())
            with self._tasks_lock:
                due = [t for t in self.tasks if t.due <= now_seconds]
                self.tasks = [t for t in self.tasks if t.due > now_seconds]
            for task in sorted(due, key=lambda t: t.due):
                self.pool.submit(self._perform, task)

    def _plan(self, scenario: Scenario, participants: list[str], inject_id: str,
              fired_seconds: float) -> None:
        inject = next(i for i in scenario.timeline if i.id == inject_id)
        if not inject.expectations:
            return
        for entity in targets(self.store, participants, inject.target):
            if entity.id not in self.tokens:
                continue
            decided = plan(scenario.bots, entity.id, inject_id)
            if not decided.respond:
                continue
            due = fired_seconds + decided.delay_minutes * 60
            planned = [_Task(due, "report", decided, inject)]
            wants_final = any(e.kind is ExpectationKind.STATUS for e in inject.expectations)
            if wants_final and decided.final_after_minutes is not None:
                planned.append(_Task(due + decided.final_after_minutes * 60, "final",
                                     decided, inject))
            with self._tasks_lock:
                self.tasks.extend(planned)

    def _perform(self, task: _Task) -> None:
        entity_id, inject_id = task.plan.entity_id, task.plan.inject_id
        headers = {"Authorization": f"Bearer {self.tokens[entity_id]}",
                   "Idempotency-Key": f"{self.exercise_id}:{entity_id}:{inject_id}:{task.kind}"}
        began = time.perf_counter()
        try:
            if task.kind == "report":
                body = incident_body(task.inject, entity_id, task.plan, utcnow())
                answer = self.client.post("/api/v1/incidents", json=body, headers=headers)
                answer.raise_for_status()
                self.incidents[(entity_id, inject_id)] = answer.json()["id"]
            else:
                self._final(task, headers)
            self.sent.append({"entity": entity_id, "inject": inject_id, "kind": task.kind})
            self.latencies.append(time.perf_counter() - began)
        except (httpx.HTTPError, KeyError) as exc:
            detail = exc.response.text[:300] if isinstance(exc, httpx.HTTPStatusError) else exc
            self.errors.append(f"{entity_id}/{inject_id}/{task.kind}: {detail}")

    def _final(self, task: _Task, headers: dict[str, str]) -> None:
        key = (task.plan.entity_id, task.plan.inject_id)
        incident_id = self.incidents.get(key)
        if incident_id is None:  # the report is still in flight: try again next tick
            task.due += 1.0
            with self._tasks_lock:
                self.tasks.append(task)
            return
        stages = ({"stage": "notification", "description": "Notification (bot)"},
                  {"stage": "final", "description": "Final report (bot)",
                   "root_cause": "exercise scenario", "mitigations": "isolated and restored"})
        for number, body in enumerate(stages):
            keyed = {**headers, "Idempotency-Key": f"{headers['Idempotency-Key']}:{number}"}
            self.client.post(f"/api/v1/incidents/{incident_id}/updates", json=body,
                             headers=keyed).raise_for_status()
