"""The exercise clock's driver: APScheduler (memory job store) rebuilt from our tables.

One engine per process; only the leader (a lease row, :mod:`.leader`) runs jobs. Every
``SYNC_SECONDS`` the leader reads the runs and makes the scheduler match them: one job per
pending inject (explicit id ``inject:<run>:<inject>``, ``replace_existing=True``) at the wall
time its offset maps to, and a finish job. A paused or ended run has no jobs; resuming
rebuilds them from the stored clock, so offsets are honoured after any pause or restart.

An inject is claimed in the database (pending → running) before it runs, so it runs at most
once; one later than ``misfire_grace`` seconds is recorded as missed, never run late twice
(SECURITY M3: ``misfire_grace_time`` and ``coalesce`` are explicit). ``abort`` throws the
run's kill switch: jobs are removed at once and running injects stop at their next check.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, update

from cases.services import audit
from cases.services.identity import Identity
from cases.store import Store
from playbooks.exercises import leader, runs
from playbooks.exercises.clock import Clock
from playbooks.exercises.injects import (
    Aborted,
    Deliver,
    IndicatorSink,
    InjectContext,
    inject_function,
)
from playbooks.exercises.model import Scenario, Status
from playbooks.exercises.tables import ensure_tables, exercise_injects, exercises
from pukara.core.schema import Entity, utcnow

log = logging.getLogger(__name__)
ENGINE = audit.Actor("exercise-engine")
SYNC_SECONDS = 0.2
LEASE_SECONDS = 5.0
MISFIRE_GRACE_SECONDS = 30


class ExerciseEngine:
    """Runs the injects of every RUNNING exercise in the store (when it is the leader)."""

    def __init__(self, store: Store, deliver: Deliver, *, intel: IndicatorSink | None = None,
                 workdir: Path, misfire_grace: int = MISFIRE_GRACE_SECONDS,
                 lease: float = LEASE_SECONDS, holder: str | None = None) -> None:
        ensure_tables(store.engine)
        self.store = store
        self.deliver = deliver
        self.intel = intel
        self.workdir = workdir
        self.misfire_grace = misfire_grace
        self.lease = lease
        self.holder = holder or f"engine-{uuid.uuid4().hex[:12]}"
        self.is_leader = False
        self.stops: dict[str, threading.Event] = {}
        self._seen: dict[str, tuple[str, float]] = {}
        self._executing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(8)},
            job_defaults={"coalesce": True, "misfire_grace_time": misfire_grace,
                          "max_instances": 1},
            timezone=UTC)
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler and the sync job (jobs run only while this is the leader)."""
        self.scheduler.start()
        self.scheduler.add_job(self.sync, "interval", seconds=SYNC_SECONDS, id="sync",
                               replace_existing=True, next_run_time=datetime.now(UTC),
                               misfire_grace_time=1, coalesce=True)

    def stop(self) -> None:
        """Stop the scheduler (runs stay as stored) and give up the lease."""
        self.scheduler.shutdown(wait=True)
        if self.is_leader:
            leader.release(self.store, self.holder)
            self.is_leader = False

    # -- control (any process may call these; the leader follows the rows) -------------
    def abort(self, exercise_id: str, actor: audit.Actor) -> Status:
        """The kill switch: CANCELED in the store, jobs removed, running injects stopped."""
        status = runs.transition(self.store, exercise_id, "abort", actor)
        self._stop_event(exercise_id).set()
        self._drop_jobs(exercise_id)
        return status

    def transition(self, exercise_id: str, action: str, actor: audit.Actor) -> Status:
        """start|pause|resume|abort, applied now (the next sync reschedules)."""
        if action == "abort":
            return self.abort(exercise_id, actor)
        status = runs.transition(self.store, exercise_id, action, actor)
        self.sync()
        return status

    # -- the sync job -------------------------------------------------------------------
    def sync(self) -> None:
        """Hold or renew the lease; make the jobs match the stored runs."""
        with self._lock:
            self.is_leader = leader.acquire(self.store, self.holder, self.lease)
            if not self.is_leader:
                self._drop_all()
                return
            with self.store.read() as conn:
                rows = list(conn.execute(select(exercises).where(exercises.c.status.in_(
                    (Status.RUNNING.value, Status.PAUSED.value)))).mappings())
            live = {current["id"] for current in rows}
            for gone in [e for e in self._seen if e not in live]:
                self._stop_event(gone).set()
                self._drop_jobs(gone)
                del self._seen[gone]
            for current in rows:
                self._follow(current)

    def _follow(self, current: Any) -> None:
        exercise_id = current["id"]
        key = (current["status"], float(current["paused_seconds"] or 0))
        if self._seen.get(exercise_id) == key:
            return
        if exercise_id not in self._seen:
            self._interrupted(exercise_id)
        self._seen[exercise_id] = key
        if current["status"] != Status.RUNNING.value:
            self._drop_jobs(exercise_id)
            return
        clock = Clock.of(current)
        scenario = Scenario.model_validate(current["scenario"])
        with self.store.read() as conn:
            pending = list(conn.execute(select(exercise_injects.c.inject_id,
                                               exercise_injects.c.offset_seconds)
                                        .where(exercise_injects.c.exercise_id == exercise_id,
                                               exercise_injects.c.state == "pending")))
        for inject_id, offset in pending:
            self.scheduler.add_job(self._fire, "date", run_date=clock.wall_at(offset),
                                   args=(exercise_id, inject_id),
                                   id=f"inject:{exercise_id}:{inject_id}",
                                   replace_existing=True)
        self.scheduler.add_job(self._finish, "date", run_date=clock.wall_at(scenario.ends_at),
                               args=(exercise_id,), id=f"finish:{exercise_id}",
                               replace_existing=True, misfire_grace_time=None)

    def _interrupted(self, exercise_id: str) -> None:
        """Injects left 'running' by a process that died are reported missed, not rerun."""
        with self.store.write() as conn:
            conn.execute(update(exercise_injects)
                         .where(exercise_injects.c.exercise_id == exercise_id,
                                exercise_injects.c.state == "running")
                         .where(~exercise_injects.c.inject_id.in_(
                             [i for e, i in self._executing if e == exercise_id]))
                         .values(state="missed", result={"error": "interrupted by a restart"}))

    def _drop_jobs(self, exercise_id: str) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.endswith(f":{exercise_id}") or f":{exercise_id}:" in job.id:
                job.remove()

    def _drop_all(self) -> None:
        for job in self.scheduler.get_jobs():
            if job.id != "sync":
                job.remove()
        self._seen.clear()

    def _stop_event(self, exercise_id: str) -> threading.Event:
        return self.stops.setdefault(exercise_id, threading.Event())

    # -- jobs -----------------------------------------------------------------------------
    def _claim(self, exercise_id: str, inject_id: str) -> tuple[Any, float, float] | None:
        now = utcnow()
        with self.store.write() as conn:
            current = runs.row(conn, exercise_id)
            if current["status"] != Status.RUNNING.value:
                return None
            clock = Clock.of(current)
            offset = conn.execute(select(exercise_injects.c.offset_seconds).where(
                exercise_injects.c.exercise_id == exercise_id,
                exercise_injects.c.inject_id == inject_id)).scalar_one()
            lateness = (now - clock.wall_at(offset)).total_seconds()
            late = lateness > self.misfire_grace
            claimed = conn.execute(
                update(exercise_injects)
                .where(exercise_injects.c.exercise_id == exercise_id,
                       exercise_injects.c.inject_id == inject_id,
                       exercise_injects.c.state == "pending")
                .values(state="missed" if late else "running", fired_at=now,
                        lateness_seconds=lateness,
                        exercise_seconds=clock.exercise_seconds(now))).rowcount
            if not claimed or late:
                return None
            return current, clock.exercise_seconds(now), lateness

    def _fire(self, exercise_id: str, inject_id: str) -> None:
        self._executing.add((exercise_id, inject_id))
        try:
            self._fire_claimed(exercise_id, inject_id)
        finally:
            self._executing.discard((exercise_id, inject_id))

    def _fire_claimed(self, exercise_id: str, inject_id: str) -> None:
        claimed = self._claim(exercise_id, inject_id)
        if claimed is None:
            return
        current, seconds, _lateness = claimed
        scenario = Scenario.model_validate(current["scenario"])
        inject = next(i for i in scenario.timeline if i.id == inject_id)
        ctx = InjectContext(
            exercise_id=exercise_id, inject=inject,
            targets=targets(self.store, current["participants"], inject.target),
            deliver=self.deliver, store=self.store, intel=self.intel,
            workdir=self.workdir / exercise_id, now=utcnow(), exercise_seconds=seconds,
            stop=self._stop_event(exercise_id))
        began = time.perf_counter()
        state, result = run_inject(ctx)
        with self.store.write() as conn:
            conn.execute(update(exercise_injects)
                         .where(exercise_injects.c.exercise_id == exercise_id,
                                exercise_injects.c.inject_id == inject_id)
                         .values(state=state, result=result,
                                 duration_seconds=time.perf_counter() - began))
            audit.append(conn, ENGINE, "exercise.inject", "exercise", exercise_id,
                         details={"inject": inject_id, "state": state, "result": result})

    def _missed(self, event: JobExecutionEvent) -> None:
        """APScheduler dropped a job past its grace time: record the inject as missed."""
        kind, _, rest = event.job_id.partition(":")
        if kind != "inject":
            return
        exercise_id, _, inject_id = rest.rpartition(":")
        now = utcnow()
        with self.store.write() as conn:
            conn.execute(update(exercise_injects)
                         .where(exercise_injects.c.exercise_id == exercise_id,
                                exercise_injects.c.inject_id == inject_id,
                                exercise_injects.c.state == "pending")
                         .values(state="missed", lateness_seconds=(
                             now - event.scheduled_run_time).total_seconds()))
            audit.append(conn, ENGINE, "exercise.inject", "exercise", exercise_id,
                         details={"inject": inject_id, "state": "missed"})

    def _finish(self, exercise_id: str) -> None:
        later = self._finish_later(exercise_id)
        if later is not None:
            self.scheduler.add_job(self._finish, "date", args=(exercise_id,), run_date=later,
                                   id=f"finish:{exercise_id}", replace_existing=True,
                                   misfire_grace_time=None)
            return
        try:
            runs.transition(self.store, exercise_id, "finish", ENGINE)
        except Exception as exc:  # a pause or abort got there first
            log.info("exercise %s not finished: %s", exercise_id, exc)


    def _finish_later(self, exercise_id: str) -> datetime | None:
        """When to look again: an inject has not run yet, or one ran late and its
        expectations (measured from when it fired) have not all expired. None: finish now."""
        with self.store.read() as conn:
            current = runs.row(conn, exercise_id)
            rows = list(conn.execute(select(exercise_injects.c.inject_id,
                                            exercise_injects.c.state,
                                            exercise_injects.c.exercise_seconds)
                                     .where(exercise_injects.c.exercise_id == exercise_id)))
        soon = datetime.now(UTC) + timedelta(seconds=SYNC_SECONDS)
        if any(r.state in ("pending", "running") for r in rows):
            return soon
        clock = Clock.of(current)
        windows = {i.id: i.ends_at - i.at
                   for i in Scenario.model_validate(current["scenario"]).timeline}
        expiry = max((r.exercise_seconds + windows.get(r.inject_id, 0.0) for r in rows
                      if r.state == "fired" and r.exercise_seconds is not None), default=0.0)
        if clock.exercise_seconds(utcnow()) < expiry:
            return max(clock.wall_at(expiry), soon)
        return None


def run_inject(ctx: InjectContext) -> tuple[str, dict[str, Any]]:
    """Run one inject function; its state (fired|canceled|failed) and result."""
    try:
        return "fired", inject_function(ctx.inject.kind)(ctx)
    except Aborted:
        return "canceled", {"error": "aborted by the kill switch"}
    except Exception as exc:
        log.exception("inject %s of %s failed", ctx.inject.id, ctx.exercise_id)
        return "failed", {"error": f"{type(exc).__name__}: {exc}"[:500]}


def targets(store: Store, participants: list[str], selector: Any) -> list[Entity]:
    """The participating entities an inject's selector picks, in registry order."""
    wanted = set(participants)
    return [e for e in Identity(store).entities() if e.id in wanted and selector.picks(e)]


def wait(store: Store, exercise_id: str, timeout: float,
         sleep: Callable[[float], None] | None = None) -> str:
    """Block until the run is FINISHED or CANCELED (or ``timeout``); its status."""
    done = threading.Event()
    deadline = utcnow().timestamp() + timeout
    while True:
        with store.read() as conn:
            current = runs.row(conn, exercise_id)["status"]
        if current in (Status.FINISHED.value, Status.CANCELED.value):
            return str(current)
        if utcnow().timestamp() > deadline:
            return str(current)
        (sleep or done.wait)(0.05)
