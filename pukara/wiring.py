"""The composition root's factory: settings → store → services, built once, by constructors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from cases.services.advisories import AdvisoryService, PublishHook
from cases.services.alerts import AlertService
from cases.services.autocase import CaseOpeningIncidents
from cases.services.case_merge import CaseMergeService
from cases.services.cases import CaseService
from cases.services.evidence import EvidenceStore
from cases.services.identity import Identity
from cases.services.incidents import IncidentService
from cases.services.picture import PictureService
from cases.services.tasks import TaskService
from cases.services.timeline import TimelineService
from cases.services.triage import TriageService
from cases.store import Store, open_store
from enrichment.intel.store import IntelStore
from playbooks.engine import PlaybookEngine, build_playbooks
from playbooks.notify import Notifications, build_notifications
from playbooks.notify.outbox import Outbox
from pukara.core.config import Settings, load_settings
from pukara.enrichment_wiring import LiveEnrichment
from pukara.pipeline import Pipeline


def open_engine(settings: Settings) -> Engine:
    """The engine of the configured store, with every table (case and intel) created."""
    return open_store(settings).engine


@dataclass
class Services:
    """Everything a command, the server or the TUI needs, built from one Settings."""

    settings: Settings
    store: Store
    identity: Identity
    alerts: AlertService
    pipeline: Pipeline
    triage: TriageService
    cases: CaseService
    case_merge: CaseMergeService
    tasks: TaskService
    timeline: TimelineService
    picture: PictureService
    evidence: EvidenceStore
    incidents: IncidentService
    intake: CaseOpeningIncidents
    notifications: Notifications
    playbooks: PlaybookEngine
    advisories: AdvisoryService

    def close(self) -> None:
        """Release the store (records a clean stop)."""
        self.store.close()


def build_services(settings: Settings | None = None) -> Services:
    """Open the store and build every service on it."""
    settings = settings or load_settings()
    store = open_store(settings)
    identity = Identity(store, pepper=settings.token_pepper.get_secret_value())
    evidence = EvidenceStore(settings.evidence_dir)
    evidence.sweep()
    with store.write() as conn:
        evidence.remove_orphans(conn)
    incidents = IncidentService(store, settings, evidence)
    intake = CaseOpeningIncidents(incidents)
    enrichment = LiveEnrichment(identity, settings)
    pipeline = Pipeline(store=store, settings=settings, enrichers=[enrichment],
                        campaigns=enrichment, incidents=intake,
                        indicators=IntelStore(store.engine))
    cases = CaseService(store)
    notifications = build_notifications(store, settings.home)
    return Services(settings=settings, store=store, identity=identity,
                    alerts=AlertService(store), pipeline=pipeline,
                    triage=TriageService(store), cases=cases,
                    case_merge=CaseMergeService(store, cases), tasks=TaskService(store),
                    timeline=TimelineService(store), picture=PictureService(store, settings),
                    evidence=evidence, incidents=incidents, intake=intake,
                    notifications=notifications,
                    playbooks=build_playbooks(store, notifications.outbox, settings),
                    advisories=AdvisoryService(
                        store, on_published=advisory_notices(notifications.outbox, settings)))


def advisory_notices(outbox: Outbox, settings: Settings) -> PublishHook:
    """Queue "advisory published" for each recipient, in the publishing transaction."""

    def queue(conn: Connection, view: dict[str, Any], entity_ids: list[str]) -> None:
        for entity_id in entity_ids:
            outbox.enqueue(conn, "advisory-published", key=f"advisory:{view['id']}",
                           entity_id=entity_id, values={
                               "center": settings.center_name,
                               "advisory_number": view["number"],
                               "advisory_title": view["title"],
                               "summary": view["summary"], "tlp": view["tlp"].upper(),
                           })

    return queue


__all__ = ["Services", "Store", "build_services", "open_engine", "open_store"]
