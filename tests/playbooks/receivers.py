"""Real receivers on loopback for the notification tests: an SMTP server (aiosmtpd) and an
HTTP server (stdlib ``http.server`` in a thread) that record what they got."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MailLog:
    """What the SMTP server accepted: (envelope recipients, parsed message)."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        self.arrived.set()
        return "250 OK"

    def message_ids(self) -> list[str]:
        """The Message-ID of every accepted message, in arrival order."""
        return [str(message["Message-ID"]) for _, message in self.received]


@dataclass
class SmtpServer:
    """A running loopback SMTP server."""

    port: int
    log: MailLog


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 and a free port."""
    log = MailLog()
    port = free_port()
    controller = Controller(log, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, log)
    finally:
        controller.stop()


@dataclass
class HookLog:
    """What the HTTP server received: (path, headers, body)."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def http_server() -> Iterator[tuple[int, HookLog]]:
    """A stdlib HTTP server on 127.0.0.1 recording POSTs."""
    log = HookLog()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            log.received.append((self.path, dict(self.headers.items()), body))
            self.send_response(log.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], log
    finally:
        server.shutdown()
        server.server_close()
