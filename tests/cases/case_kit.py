"""Shared set-up for the case-system tests: a real SQLite store under PUKARA_HOME, the real
Suricata and Shadowserver samples ingested through the pipeline, two entities, and entity
incident reports submitted through the incident service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cases.services.evidence import EvidenceStore
from cases.services.identity import Principal, Role
from cases.services.incidents import IncidentService
from cases.store.tables import alerts
from collectors.sources.files import FileSource
from pukara.core.config import load_settings
from pukara.core.schema import Entity, IncidentReport, IngestResult
from pukara.wiring import Services, build_services

MUNTAHA = "suricata/Muntaha-Ghafoor-eve.json"
NMAP = "Nmap SYN Port Scan Detected"
ICMP = "ICMP Ping Detected"
SCANNER = "192.168.137.1"
TARGET = "192.168.137.128"


@pytest.fixture
def built(pukara_home: Path) -> Iterator[Services]:
    """Every service on a fresh SQLite store, with entities minsa (health), bcrp (finance)."""
    services = build_services(load_settings())
    services.identity.add_entity(Entity(id="minsa", name="Ministerio de Salud",
                                        sector="health"))
    services.identity.add_entity(Entity(id="bcrp", name="Banco Central", sector="finance"))
    yield services
    services.close()


def ingest(built: Services, path: Path, fmt: str, **kwargs: Any) -> IngestResult:
    """Ingest one real sample file through the live pipeline."""
    with FileSource().open_report(path, fmt=fmt, **kwargs) as report:
        return built.pipeline.ingest(report)


def alert_ids(built: Services, title: str) -> list[int]:
    """Ids of the stored alert rows with ``title``, oldest first."""
    with built.store.read() as conn:
        query = select(alerts.c.id).where(alerts.c.title == title).order_by(alerts.c.id)
        return list(conn.execute(query).scalars())


def incident_service(built: Services) -> IncidentService:
    """The incident service on the same store."""
    return IncidentService(built.store, built.settings,
                           EvidenceStore(built.settings.home / "evidence"))


def reporter(entity_id: str) -> Principal:
    """An entity's API principal."""
    return Principal(Role.REPORTER, 0, entity_id=entity_id)


def report(title: str, aware: datetime, *, classification: str = "malicious-code/infected-system",
           observables: list[dict[str, str]] | None = None, tlp: str = "amber",
           exercise_id: str | None = None) -> IncidentReport:
    """An entity incident report (constructed, as an entity would send it)."""
    return IncidentReport.model_validate({
        "title": title, "classification": classification, "detected_at": aware,
        "awareness_at": aware, "observables": observables or [], "tlp": tlp,
        "exercise_id": exercise_id})
