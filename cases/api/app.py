"""The FastAPI application of the entity and analyst API, built from the services it is given.

No globals: :func:`create_app` receives the store, identity, incident service, the ingest
callable and the settings, and returns an app whose every path except :data:`PUBLIC_PATHS`
(``/healthz``) needs a bearer token — the OpenAPI document and ``/docs`` included (A6).

Middleware, outermost first: latency histogram and security headers → request limits (415
encodings, 400 bad Content-Length, 413 over the body cap, 408 trickling bodies) →
authentication gate with rate limits → FastAPI (routes, problem handlers). Errors are
RFC 9457 problems (:mod:`cases.api.problems`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import HTMLResponse, Response

from cases.api.analyst_context import AnalystContext, AnalystServices
from cases.api.auth import AdminPrincipal, AnyPrincipal, AuthGate
from cases.api.idempotency import FaultHooks, Idempotency
from cases.api.limits import RequestLimits
from cases.api.metrics import ApiMetrics, LatencyMiddleware
from cases.api.problems import install_handlers
from cases.api.routes_analyst import build_analyst_router
from cases.api.routes_entity import (
    EVIDENCE_OVERHEAD,
    EVIDENCE_PATH,
    Advisories,
    EntityApi,
    Inbox,
    Incidents,
    Ingest,
    build_entity_router,
)
from cases.services.identity import Identity
from cases.store import Store
from pukara.core.config import Settings

API_TITLE = "Pukara entity API"
API_VERSION = "1"


def create_app(*, store: Store, identity: Identity, incidents: Incidents, ingest: Ingest,
               settings: Settings, faults: FaultHooks | None = None,
               analyst: AnalystServices | None = None, inbox: Inbox | None = None,
               advisories: Advisories | None = None) -> FastAPI:
    """The entity API over the given services; ``faults`` arms crash hooks (tests only).

    ``analyst`` adds the staff routes under ``/api/v1/analyst``; ``inbox`` and
    ``advisories`` fill the entity feeds (without them the feeds are empty collections).
    """
    metrics = ApiMetrics()
    app = FastAPI(title=API_TITLE, version=API_VERSION, docs_url=None, redoc_url=None,
                  openapi_url=None)
    install_handlers(app)
    idempotency = Idempotency(store, ttl_hours=settings.api.idempotency_ttl_hours,
                              faults=faults, on_replay=metrics.replay)
    idempotency.sweep()
    app.include_router(build_entity_router(EntityApi(
        incidents=incidents, ingest=ingest, idempotency=idempotency, metrics=metrics,
        settings=settings, inbox=inbox, advisories=advisories)))
    if analyst is not None:
        app.include_router(build_analyst_router(AnalystContext(analyst)))
    app.include_router(_service_router(app, metrics))
    app.add_middleware(AuthGate, identity=identity, limits=settings.api,
                       on_reject=metrics.reject)
    app.add_middleware(RequestLimits, max_body=settings.api.max_body_bytes,
                       caps=[(EVIDENCE_PATH, settings.api.max_evidence_bytes + EVIDENCE_OVERHEAD)],
                       max_json_depth=settings.api.max_json_depth, on_reject=metrics.reject)
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    app.state.metrics = metrics
    app.state.idempotency = idempotency
    return app


def _service_router(app: FastAPI, metrics: ApiMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", tags=["service"], summary="Liveness (public)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/metrics", tags=["service"], response_model=None,
                summary="Prometheus metrics (admin token)")
    async def prometheus(_admin: AdminPrincipal) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(_principal: AnyPrincipal) -> Response:
        return Response(orjson.dumps(app.openapi()), media_type="application/json")

    @router.get("/docs", include_in_schema=False)
    async def docs(_principal: AnyPrincipal) -> HTMLResponse:
        parameters: dict[str, Any] = {"spec": app.openapi()}
        return get_swagger_ui_html(openapi_url="/openapi.json", title=API_TITLE,
                                   swagger_ui_parameters=parameters)

    return router
