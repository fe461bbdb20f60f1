"""Prometheus metrics of one app, in its own ``CollectorRegistry`` (no global state)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """The counters and histogram the API exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.submissions = Counter("pukara_api_submissions", "Accepted submissions by kind",
                                   ["kind"], registry=self.registry)
        self.rejects = Counter("pukara_api_rejects", "Refused requests by reason", ["reason"],
                               registry=self.registry)
        self.alerts_ingested = Counter("pukara_api_alerts_ingested",
                                       "Alerts accepted through POST /api/v1/alerts",
                                       registry=self.registry)
        self.replays = Counter("pukara_api_idempotent_replays",
                               "Responses replayed for a repeated Idempotency-Key",
                               registry=self.registry)
        self.latency = Histogram("pukara_api_request_seconds", "Request latency",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)

    def reject(self, reason: str) -> None:
        """Count one refused request."""
        self.rejects.labels(reason=reason).inc()

    def replay(self) -> None:
        """Count one idempotent replay."""
        self.replays.inc()

    def exposition(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


#: sent with every response: never sniff a type, never cache an API answer
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))


class LatencyMiddleware:
    """Observe each HTTP request's latency, labelled by route template (bounded labels),
    and add :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            self.metrics.latency.labels(method=method, route=route,
                                        status=str(status)).observe(
                time.perf_counter() - started)
