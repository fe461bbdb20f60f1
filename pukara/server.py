"""The composition root of the HTTP server: settings → store → services → FastAPI app.

``build_app(settings)`` opens the store (integrity check after an unclean stop), sweeps
interrupted uploads and unreferenced blobs out of the evidence store (SECURITY I2), builds
identity, the incident service and the live pipeline, and hands them to
:func:`cases.api.create_app`. ``app_factory``
is the same for ``uvicorn --factory`` (settings from ``PUKARA_HOME`` and ``PUKARA_*``).
``PUKARA_FAULT`` arms the crash hooks of the idempotency layer (crash tests only).
"""

from __future__ import annotations

from fastapi import FastAPI

from cases.api import create_app
from cases.api.idempotency import FaultHooks
from cases.services.evidence import EvidenceStore
from cases.services.identity import Identity
from cases.services.incidents import IncidentService
from cases.store import open_store
from pukara.core.config import Settings, load_settings
from pukara.pipeline import Pipeline


def build_app(settings: Settings | None = None) -> FastAPI:
    """The entity API over a freshly opened store; the store closes with the app."""
    settings = settings or load_settings()
    store = open_store(settings)
    identity = Identity(store, pepper=settings.token_pepper.get_secret_value())
    evidence = EvidenceStore(settings.evidence_dir)
    evidence.sweep()
    with store.write() as conn:
        evidence.remove_orphans(conn)
    incidents = IncidentService(store, settings, evidence)
    pipeline = Pipeline(store=store, settings=settings, incidents=incidents)
    app = create_app(store=store, identity=identity, incidents=incidents,
                     ingest=pipeline.ingest_in, settings=settings,
                     faults=FaultHooks.from_env())
    app.router.add_event_handler("shutdown", store.close)
    return app


def app_factory() -> FastAPI:
    """``uvicorn --factory pukara.server:app_factory``."""
    return build_app()
