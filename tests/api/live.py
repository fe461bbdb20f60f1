"""A real ``pukara serve`` on a free loopback port, as a child process of the test.

Used where the behaviour depends on a real HTTP server (keep-alive, raw sockets, SIGKILL).
The child's output goes to a log file the test can read (access logs included).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

PUKARA = Path(sys.executable).with_name("pukara")
STARTUP_SECONDS = 30.0


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``pukara serve`` for one home; start, kill -9, restart on the same port."""

    def __init__(self, home: Path, *, pepper: str, log: Path, extra_env: dict[str, str] | None
                 = None, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.home = home
        self.args = args
        self.port = port or free_port()
        self.log = log
        self.env = {**os.environ, "PUKARA_HOME": str(home), "PUKARA_TOKEN_PEPPER": pepper,
                    "PUKARA_API__RATE_PER_MINUTE": "1000000", "PUKARA_API__RATE_BURST": "100000",
                    "PUKARA_API__FAILED_AUTH_PER_MINUTE": "100000", **(extra_env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Start the child and wait until /healthz answers."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(PUKARA), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 *self.args],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start in time")

    def kill(self) -> None:
        """SIGKILL our own child (a crash: no shutdown handlers run)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """A clean stop (SIGTERM), then SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
