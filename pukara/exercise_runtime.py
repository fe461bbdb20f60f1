"""The exercises' part of the composition root: ``deliver``, the API for bots, one run.

The exercise engine never imports the pipeline or the server (ARCHITECTURE, "Exercises
inject through the front door"): this module hands it ``pipeline.ingest`` as ``deliver`` and
the intel store, and — when bots play — serves the real entity API on 127.0.0.1 (an
ephemeral port, uvicorn in a thread) with the incident service wrapped so submissions made
with a run's participant tokens carry the run's ``exercise_id``. ``run`` plays one run to its
end (``pukara exercise run``); :class:`RuntimeControl` plays runs started from a long-lived
process (the analyst API of ``pukara serve``).
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from sqlalchemy import select

from cases.services import audit
from enrichment.intel.store import IntelStore
from playbooks.exercises import runs
from playbooks.exercises.bots import BotSwarm
from playbooks.exercises.engine import ExerciseEngine, wait
from playbooks.exercises.model import Scenario, Status
from playbooks.exercises.participants import issue_tokens, revoke_tokens
from playbooks.exercises.scoring import scoreboard
from playbooks.exercises.tables import exercises
from pukara.server import build_api
from pukara.wiring import Services

COORDINATOR = audit.Actor("exercise-coordinator")


def build_engine(services: Services, **options: Any) -> ExerciseEngine:
    """An engine whose injects enter through ``pipeline.ingest`` and the intel store."""
    return ExerciseEngine(services.store, services.pipeline.ingest,
                          intel=IntelStore(services.store.engine),
                          workdir=services.settings.home / "exercises", **options)


@dataclass
class ApiServer:
    """The real entity API on loopback, in a thread."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str = ""

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_api(services: Services) -> ApiServer:
    """Serve the entity API on 127.0.0.1:<ephemeral> and return once it listens."""
    app = build_api(services)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="exercise-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the exercise API server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return ApiServer(server, thread, f"http://127.0.0.1:{port}")


@dataclass
class RunOptions:
    """How ``run`` plays a scenario."""

    speed: float = 60.0
    bots: list[str] | None = None  # None: no bots; ["all"]: every participant
    timeout: float | None = None
    bot_workers: int = 4
    engine_options: dict[str, Any] = field(default_factory=dict)


def run(services: Services, scenario: Scenario, options: RunOptions,
        on_created: Any = None) -> dict[str, Any]:
    """Create, start and play one run to its end; the scoreboard and the inject log."""
    participants = scenario.participant_ids(services.identity.entities())
    wanted = options.bots or []
    bot_ids = participants if "all" in wanted else [e for e in participants if e in wanted]
    exercise_id = runs.create(services.store, scenario, participants, bot_ids,
                              speed=options.speed, actor=COORDINATOR)
    if on_created is not None:
        on_created(exercise_id)
    engine = build_engine(services, **options.engine_options)
    api = start_api(services) if bot_ids else None
    swarm = None
    try:
        if api is not None:
            tokens = issue_tokens(services.identity, services.store, exercise_id, bot_ids)
            swarm = BotSwarm(services.store, exercise_id, api.url, tokens,
                             workers=options.bot_workers)
            swarm.start()
        engine.start()
        engine.transition(exercise_id, "start", COORDINATOR)
        timeout = options.timeout or (scenario.ends_at / options.speed + 60)
        wait(services.store, exercise_id, timeout)
    finally:
        if swarm is not None:
            swarm.stop()
        engine.stop()
        if api is not None:
            api.stop()
        with services.store.write() as conn:
            revoke_tokens(conn, exercise_id)
    return summary(services, exercise_id, swarm)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 and p99 of ``values`` (None when empty), rounded to the millisecond."""
    if len(values) < 2:
        only = round(values[0], 3) if values else None
        return {"p50": only, "p99": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p99": round(cuts[98], 3)}


def summary(services: Services, exercise_id: str, swarm: BotSwarm | None) -> dict[str, Any]:
    """The ``exercise run --json`` document."""
    board = scoreboard(services.store, exercise_id)
    state = runs.status(services.store, exercise_id)
    return {
        "exercise_id": exercise_id, "status": board["status"],
        "scores": [{"entity": s["entity"], "sector": s["sector"], "points": s["points"],
                    "max_points": s["max_points"], "met": s["met"], "missed": s["missed"],
                    "pending": s["pending"],
                    "mean_minutes_to_report": s["mean_minutes_to_report"]}
                   for s in board["scores"]],
        "sectors": board["sectors"],
        "injects": [{k: i[k] for k in ("id", "kind", "state", "lateness_seconds", "result")}
                    for i in state["injects"]],
        "bot_requests": len(swarm.sent) if swarm else 0,
        "bot_request_seconds": percentiles(swarm.latencies if swarm else []),
        "bot_errors": swarm.errors[:20] if swarm else [],
    }


class RuntimeControl:
    """Plays runs for a long-lived process: one engine (``deliver`` = the real pipeline)
    started on first use, the real entity API on loopback for bots, one bot swarm per run,
    stopped and its tokens revoked when the run ends or the control closes."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.engine: ExerciseEngine | None = None
        self.api: ApiServer | None = None
        self.swarms: dict[str, BotSwarm] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def _engine(self) -> ExerciseEngine:
        with self._lock:
            if self.engine is None:
                self.engine = build_engine(self.services)
                self.engine.start()
            return self.engine

    def follow_live_runs(self) -> None:
        """Start the engine when the store holds a RUNNING or PAUSED run (after a restart
        it goes on with it; bots of a run started before the restart do not)."""
        live = (Status.RUNNING.value, Status.PAUSED.value)
        with self.services.store.read() as conn:
            found = conn.execute(select(exercises.c.id)
                                 .where(exercises.c.status.in_(live)).limit(1)).first()
        if found is not None:
            self._engine()

    def launch(self, exercise_id: str, bots: list[str], actor: audit.Actor) -> None:
        """Bots (if any) first, then the run's start through the engine."""
        engine = self._engine()
        if bots:
            with self._lock:
                if self.api is None:
                    self.api = start_api(self.services)
                url = self.api.url
            tokens = issue_tokens(self.services.identity, self.services.store, exercise_id,
                                  bots)
            swarm = BotSwarm(self.services.store, exercise_id, url, tokens)
            with self._lock:
                self.swarms[exercise_id] = swarm
            swarm.start()
            threading.Thread(target=self._retire, args=(exercise_id,), daemon=True,
                             name=f"exercise-bots-{exercise_id}").start()
        engine.transition(exercise_id, "start", actor)

    def _retire(self, exercise_id: str) -> None:
        """Once the run ends, stop its bots and revoke its tokens."""
        while not self._closing.wait(0.5):
            with self.services.store.read() as conn:
                status = runs.row(conn, exercise_id)["status"]
            if status in (Status.FINISHED.value, Status.CANCELED.value):
                self._stop_swarm(exercise_id)
                return

    def _stop_swarm(self, exercise_id: str) -> None:
        with self._lock:
            swarm = self.swarms.pop(exercise_id, None)
        if swarm is not None:
            swarm.stop()
            with self.services.store.write() as conn:
                revoke_tokens(conn, exercise_id)

    def transition(self, exercise_id: str, action: str, actor: audit.Actor) -> str:
        """pause|resume|abort applied by the engine at once (abort is the kill switch);
        an unknown run is NotFound before any engine starts."""
        with self.services.store.read() as conn:
            runs.row(conn, exercise_id)
        return self._engine().transition(exercise_id, action, actor).value

    def close(self) -> None:
        """Bots, then the engine, then the API server (runs stay as stored)."""
        self._closing.set()
        for exercise_id in list(self.swarms):
            self._stop_swarm(exercise_id)
        with self._lock:
            engine, self.engine = self.engine, None
            api, self.api = self.api, None
        if engine is not None:
            engine.stop()
        if api is not None:
            api.stop()
