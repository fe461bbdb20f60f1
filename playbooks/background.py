"""The background loop of the server: advance playbook runs and deliver notifications.

One daemon thread; ``stop()`` ends it between passes. Errors of one pass are logged and the
next pass runs anyway (a database briefly locked must not stop notifications for good).
"""

from __future__ import annotations

import logging
import threading
from typing import Self

from playbooks.engine import PlaybookEngine
from playbooks.notify.worker import OutboxWorker

log = logging.getLogger(__name__)


class PlaybookBackground:
    """Runs ``engine.tick()`` and ``worker.run_once()`` every ``interval`` seconds.

    Subclasses add jobs by overriding :meth:`run_pass` (and calling this one)."""

    thread_name = "pukara-playbooks"

    def __init__(self, engine: PlaybookEngine, worker: OutboxWorker,
                 interval: float = 5.0) -> None:
        self.engine = engine
        self.worker = worker
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> Self:
        """Start the loop in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to end and wait for the current pass to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_pass(self) -> None:
        """One pass: advance every run, then deliver what is due."""
        try:
            self.engine.tick()
        except Exception:
            log.exception("playbook tick failed; retrying next pass")
        try:
            self.worker.run_once()
        except Exception:
            log.exception("outbox delivery pass failed; retrying next pass")
        self.passes += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_pass()
            self._stop.wait(self.interval)
