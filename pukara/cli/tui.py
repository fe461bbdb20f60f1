"""``pukara tui [--server URL --token T]``: the terminal UI, on the local store by default
or on the analyst API of a center's server."""

from __future__ import annotations

import argparse
import os
import threading
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING

from pukara.core.errors import InvalidInput

if TYPE_CHECKING:
    from cases.services.audit import Actor
    from playbooks.exercises.bots import BotSwarm
    from playbooks.exercises.engine import ExerciseEngine
    from pukara.exercise_runtime import ApiServer
    from pukara.wiring import Services
    from tui.client.base import CaseClient

    Sub = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: Sub) -> None:
    """Add ``tui``."""
    parser = subparsers.add_parser(
        "tui", help="open the analysts' terminal UI",
        description="The Textual UI. Without --server it works on the local store "
                    "(PUKARA_HOME); with --server it talks to the analyst API.")
    parser.add_argument("--server", metavar="URL", help="analyst API base URL")
    parser.add_argument("--token", metavar="T",
                        help="analyst token (default: $PUKARA_TOKEN); never logged")
    parser.add_argument("--refresh", type=float, default=5.0, metavar="SECONDS",
                        help="live refresh period of the dashboard and the queue")
    parser.set_defaults(handler=run_tui)


def make_client(args: argparse.Namespace) -> CaseClient:
    """LocalClient on build_services(), or RemoteClient when --server is given."""
    if args.server:
        from tui.client.remote import RemoteClient

        token = args.token or os.environ.get("PUKARA_TOKEN")
        if not token:
            raise InvalidInput("--server needs --token (or PUKARA_TOKEN)", field="token")
        return RemoteClient(args.server, token)
    if args.token:
        raise InvalidInput("--token is only used with --server", field="token")
    from pukara.wiring import build_services
    from tui.client.local import LocalClient

    built = build_services()
    return LocalClient(built, exercise_control=ExerciseRuntimeControl(built))


def run_tui(args: argparse.Namespace) -> int:
    """Run the app until the analyst quits."""
    from tui.app import PukaraApp

    if args.refresh <= 0:
        raise InvalidInput("--refresh must be positive", field="refresh")
    client = make_client(args)
    try:
        PukaraApp(client, refresh_seconds=args.refresh).run()
    finally:
        client.close()
    return 0


class ExerciseRuntimeControl:
    """The TUI's :class:`tui.client.base.ExerciseControl` on :mod:`pukara.exercise_runtime`:
    one engine (``deliver`` = the real pipeline) started on first use, the real entity API
    on loopback for bots, one bot swarm per run, stopped and its tokens revoked when the
    run ends or the TUI closes. ``pukara demo`` can hand the same object to its client."""

    def __init__(self, services: Services) -> None:
        # Start multiprocessing's resource tracker now, before Textual replaces
        # sys.stderr (its fileno() is then invalid and the YARA compiler's isolated child,
        # started from an inject's thread, would fail with "bad value(s) in fds_to_keep").
        resource_tracker.ensure_running()
        self.services = services
        self.engine: ExerciseEngine | None = None
        self.api: ApiServer | None = None
        self.swarms: dict[str, BotSwarm] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def _engine(self) -> ExerciseEngine:
        from pukara.exercise_runtime import build_engine

        with self._lock:
            if self.engine is None:
                self.engine = build_engine(self.services)
                self.engine.start()
            return self.engine

    def launch(self, exercise_id: str, bots: list[str], actor: Actor) -> None:
        """Bots (if any) first, then the run's start through the engine."""
        from playbooks.exercises.bots import BotSwarm
        from playbooks.exercises.participants import issue_tokens
        from pukara.exercise_runtime import start_api

        engine = self._engine()
        if bots:
            with self._lock:
                if self.api is None:
                    self.api = start_api(self.services)
            tokens = issue_tokens(self.services.identity, self.services.store, exercise_id,
                                  bots)
            swarm = BotSwarm(self.services.store, exercise_id, self.api.url, tokens)
            self.swarms[exercise_id] = swarm
            swarm.start()
            threading.Thread(target=self._retire, args=(exercise_id,), daemon=True,
                             name=f"exercise-bots-{exercise_id}").start()
        engine.transition(exercise_id, "start", actor)

    def _retire(self, exercise_id: str) -> None:
        """Once the run ends, stop its bots and revoke its tokens (``close`` does it
        when the TUI quits first)."""
        from playbooks.exercises import runs

        while not self._closing.wait(0.5):
            with self.services.store.read() as conn:
                status = runs.row(conn, exercise_id)["status"]
            if status in ("FINISHED", "CANCELED"):
                self._stop_swarm(exercise_id)
                return

    def _stop_swarm(self, exercise_id: str) -> None:
        from playbooks.exercises.participants import revoke_tokens

        with self._lock:
            swarm = self.swarms.pop(exercise_id, None)
        if swarm is not None:
            swarm.stop()
            with self.services.store.write() as conn:
                revoke_tokens(conn, exercise_id)

    def transition(self, exercise_id: str, action: str, actor: Actor) -> str:
        """pause|resume|abort applied by the engine at once (abort is the kill switch)."""
        return self._engine().transition(exercise_id, action, actor).value

    def close(self) -> None:
        """Bots, then the engine, then the API server (runs stay as stored)."""
        self._closing.set()
        for exercise_id in list(self.swarms):
            self._stop_swarm(exercise_id)
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        if self.api is not None:
            self.api.stop()
            self.api = None
