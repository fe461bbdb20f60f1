"""The composition root of the HTTP server: settings → services → FastAPI app.

``build_app(settings)`` builds every service once with :func:`pukara.wiring.build_services`
(store with its integrity check after an unclean stop, evidence store swept of interrupted
uploads and unreferenced blobs, identity, incidents, the live pipeline) and hands them to
:func:`cases.api.create_app`; ``POST /api/v1/alerts`` runs the full live pipeline (every
enricher) inside the API's write transaction.
Submissions through the API go through the same automatic case opening as the other intake
channels. ``app_factory`` is the same for
``uvicorn --factory`` (settings from ``PUKARA_HOME`` and ``PUKARA_*``); ``pukara serve`` runs
:func:`pukara.exercise_routes.app_factory`, this app plus the analyst exercise routes.
``PUKARA_FAULT`` arms the crash hooks of the idempotency layer (crash tests only).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, BinaryIO

from fastapi import FastAPI
from sqlalchemy import Connection

from cases.api import create_app
from cases.api.idempotency import FaultHooks
from cases.services.autocase import CaseOpeningIncidents
from cases.services.identity import Principal
from cases.services.incident_models import IncidentUpdate
from cases.services.incidents import IncidentService
from playbooks.api import build_playbook_router
from playbooks.exercises.participants import ExerciseTaggingIncidents
from playbooks.exercises.tables import ensure_tables as ensure_exercise_tables
from pukara.core.config import Settings
from pukara.core.schema import IncidentReport
from pukara.wiring import Services, build_services


class ApiIncidents:
    """The incident service as the API uses it: submissions open or join a case."""

    def __init__(self, incidents: IncidentService,
                 intake: CaseOpeningIncidents | ExerciseTaggingIncidents) -> None:
        self._incidents = incidents
        self._intake = intake

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport, *,
               request_id: str | None = None) -> dict[str, Any]:
        """Store the incident and attach it to a case, in the caller's transaction."""
        return self._intake.submit(conn, principal, report, request_id=request_id)

    def list_for(self, principal: Principal, *, limit: int = 50, offset: int = 0,
                 sort: str = "-created_at", status: str | None = None) -> list[dict[str, Any]]:
        """The incidents ``principal`` may see."""
        return self._incidents.list_for(principal, limit=limit, offset=offset, sort=sort,
                                        status=status)

    def get(self, principal: Principal, incident_id: str) -> dict[str, Any]:
        """One incident, or NotFound."""
        return self._incidents.get(principal, incident_id)

    def add_update(self, conn: Connection, principal: Principal, incident_id: str,
                   update: IncidentUpdate, *, request_id: str | None = None) -> dict[str, Any]:
        """A stage report or update."""
        return self._incidents.add_update(conn, principal, incident_id, update,
                                          request_id=request_id)

    def add_evidence(self, conn: Connection, principal: Principal, incident_id: str, *,
                     filename: str, content_type: str, stream: BinaryIO, max_bytes: int,
                     request_id: str | None = None) -> dict[str, Any]:
        """One evidence file, streamed to the evidence store."""
        return self._incidents.add_evidence(
            conn, principal, incident_id, filename=filename, content_type=content_type,
            stream=stream, max_bytes=max_bytes, request_id=request_id)


def build_api(services: Services, *, faults: FaultHooks | None = None) -> FastAPI:
    """The API over ``services``: entity routes (submissions from an exercise's participant
    tokens tagged with its run), analyst routes and the playbook routes."""
    ensure_exercise_tables(services.store.engine)
    intake = ExerciseTaggingIncidents(services.incidents, services.intake)
    app = create_app(store=services.store, identity=services.identity,
                     incidents=ApiIncidents(services.incidents, intake),
                     ingest=services.pipeline.ingest_in, settings=services.settings,
                     faults=faults, analyst=services,
                     inbox=services.notifications.outbox, advisories=services.advisories)
    app.include_router(build_playbook_router(services.playbooks))
    return app


def build_app(settings: Settings | None = None, *,
              extend: Callable[[FastAPI, Services], None] | None = None) -> FastAPI:
    """The API over freshly built services; the store closes with the app. ``extend`` adds
    what a layer above the server serves (its shutdown handlers run before the store
    closes)."""
    services = build_services(settings)
    gc.freeze()  # start-up objects live as long as the server: keep them out of GC passes
    app = build_api(services, faults=FaultHooks.from_env())
    if extend is not None:
        extend(app, services)
    app.router.add_event_handler("shutdown", services.close)
    return app


def app_factory() -> FastAPI:
    """``uvicorn --factory pukara.server:app_factory``."""
    return build_app()
