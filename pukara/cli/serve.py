"""``pukara serve --host H --port P``: the entity and analyst API under uvicorn.

Slow clients cannot hold the server (SECURITY C6): a connection must deliver a complete
request head (request line and headers) within ``--header-timeout`` seconds of connecting or
of its previous response, idle keep-alive connections close after ``--keep-alive`` seconds,
at most ``--limit-concurrency`` connections are served at once (the rest get 503), and h11
refuses a request head larger than ``--max-head`` bytes. uvicorn's own proxy-header
rewriting is off: ``X-Forwarded-For`` is read only by the API's rate limiter, and only from
``api.trusted_proxies`` (SECURITY C3).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

#: the served app's factory (the server's app plus the analyst exercise routes), named
#: rather than imported: uvicorn imports it as it starts
APP_FACTORY = "pukara.exercise_routes:app_factory"
DEFAULT_KEEP_ALIVE = 5
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_CONCURRENCY = 200
DEFAULT_MAX_HEAD = 64 * 1024


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request head is too slow."""

    head_timeout: float = DEFAULT_HEADER_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is None or self.cycle.response_complete:
            if self._head_timer is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.timeout_keep_alive_handler()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve``."""
    parser = subparsers.add_parser("serve", help="run the entity HTTP API")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    parser.add_argument("--keep-alive", type=int, default=DEFAULT_KEEP_ALIVE,
                        help="close idle keep-alive connections after this many seconds")
    parser.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT,
                        help="close a connection whose request head takes longer (seconds)")
    parser.add_argument("--limit-concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="most connections served at once; the rest get 503")
    parser.add_argument("--max-head", type=int, default=DEFAULT_MAX_HEAD,
                        help="largest request head (request line and headers) in bytes")
    parser.set_defaults(handler=run)


def protocol_with(head_timeout: float) -> type[HeadTimeoutProtocol]:
    """The protocol class with its head timeout set."""
    attributes: dict[str, Any] = {"head_timeout": head_timeout}
    return type("PukaraH11Protocol", (HeadTimeoutProtocol,), attributes)


def run(args: argparse.Namespace) -> int:
    """Serve the app of the composition root until interrupted."""
    import uvicorn

    from pukara.wiring import build_services
    from pukara.workers import BackgroundWorkers

    services = build_services()
    workers = BackgroundWorkers(services).start()
    try:
        uvicorn.run(APP_FACTORY, factory=True, host=args.host, port=args.port,
                    http=protocol_with(args.header_timeout), timeout_keep_alive=args.keep_alive,
                    limit_concurrency=args.limit_concurrency,
                    h11_max_incomplete_event_size=args.max_head,
                    proxy_headers=False, server_header=False, log_level="info")
    finally:
        workers.stop()
        services.close()
    return 0
