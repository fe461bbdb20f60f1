"""A case built from the real samples for the sharing and search tests.

The Suricata sample (Muntaha-Ghafoor eve.json) is ingested for entity ``minsa`` through the
live pipeline; its "Nmap SYN Port Scan Detected" and "Possible Metasploit Connection" alerts
are promoted to a case. The file observables of a real MISP event (PyMISP's test event
57c4445b…, "Ransomware - Xorist") arrive as minsa's TLP:GREEN incident report through the
incident service and are linked to the same case. Entities: minsa (health, listed partner
essalud), essalud (health), bcrp (finance).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymisp import MISPEvent

from cases.services import audit
from cases.services.alert_filter import AlertFilter
from pukara.core.config import load_settings
from pukara.core.schema import Entity
from pukara.wiring import Services, build_services
from tests.cases.case_kit import MUNTAHA, NMAP, alert_ids, incident_service, ingest, report
from tests.cases.case_kit import reporter as entity_principal

XORIST = "misp/57c4445b-c548-4654-af0b-4be3950d210f.json"
METASPLOIT = "Possible Metasploit Connection"
MISP_TYPES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "filename": "filename"}
ANALYST = audit.Actor("ana")


@dataclass
class SharedCase:
    """The services, the case id and the linked incident."""

    built: Services
    case_id: str
    number: str
    incident_id: str
    alert_ids: list[int]


def xorist_observables(shared: Path) -> list[dict[str, str]]:
    """The md5, sha1, sha256 and filename attributes of the real Xorist MISP event."""
    event = MISPEvent()
    event.load_file(shared / XORIST)
    return [{"type": MISP_TYPES[a.type], "value": a.value} for a in event.attributes
            if a.type in MISP_TYPES]


def make_services(home: Path, database_url: str = "") -> Services:
    """Services on a fresh store (SQLite under ``home``, or ``database_url``) with the three
    entities."""
    del home
    built = build_services(load_settings(database_url=database_url))
    built.identity.add_entity(Entity(id="minsa", name="Ministerio de Salud", sector="health",
                                     partners=["essalud"]))
    built.identity.add_entity(Entity(id="essalud", name="EsSalud", sector="health"))
    built.identity.add_entity(Entity(id="bcrp", name="Banco Central", sector="finance"))
    return built


def build_case(built: Services, shared: Path, *, exercise_id: str | None = None) -> SharedCase:
    """Ingest, promote, submit and link: the case described in the module docstring."""
    ingest(built, shared / MUNTAHA, "suricata", entity_id="minsa", exercise_id=exercise_id)
    ids = alert_ids(built, NMAP) + alert_ids(built, METASPLOIT)
    promoted = built.cases.promote(AlertFilter(ids=tuple(ids)), ANALYST)
    from datetime import UTC, datetime

    aware = datetime(2026, 6, 12, 9, 0, tzinfo=UTC)
    incoming = report("Xorist ransomware on a workstation", aware,
                      classification="malicious-code/ransomware",
                      observables=xorist_observables(shared), tlp="green",
                      exercise_id=exercise_id)
    with built.store.write() as conn:
        view = incident_service(built).submit(conn, entity_principal("minsa"), incoming)
    built.cases.link_incident(promoted["case_id"], view["id"], ANALYST)
    return SharedCase(built, promoted["case_id"], promoted["number"], view["id"], ids)


@pytest.fixture
def shared_case(pukara_home: Path, shared_data: Path) -> Iterator[SharedCase]:
    """The case of the module docstring on a fresh store."""
    built = make_services(pukara_home)
    try:
        yield build_case(built, shared_data)
    finally:
        built.close()
