"""Shared set-up for the playbook tests: a real store under PUKARA_HOME with three entities,
a real Shadowserver sample ingested through the live pipeline and promoted to a case, and a
driver that plays the people (analysts finish tasks, a coordinator approves)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.services.identity import Principal, Role
from cases.store.tables import alerts
from collectors.sources.files import FileSource
from pukara.core.config import load_settings
from pukara.core.schema import Contact, Entity, utcnow
from pukara.wiring import Services, build_services

ANALYST = audit.Actor("ana")
COORDINATOR = Principal(Role.COORDINATOR, 0, user="cora")
ANALYST_PRINCIPAL = Principal(Role.ANALYST, 0, user="ana")
MINSA_MAIL = "csirt@minsa.gob.pe"
ESSALUD_MAIL = "soc@essalud.gob.pe"


def make_services() -> Services:
    """Every service on the store of the current PUKARA_HOME."""
    return build_services(load_settings())


def add_entities(built: Services) -> None:
    """minsa (health, Spanish), essalud (health, English), bcrp (finance, Spanish)."""
    built.identity.add_entity(Entity(id="minsa", name="Ministerio de Salud", sector="health",
                                     contacts=[Contact(name="CSIRT", email=MINSA_MAIL)]))
    built.identity.add_entity(Entity(id="essalud", name="EsSalud", sector="health",
                                     language="en",
                                     contacts=[Contact(name="SOC", email=ESSALUD_MAIL)]))
    built.identity.add_entity(Entity(id="bcrp", name="Banco Central", sector="finance"))


@pytest.fixture
def built(pukara_home: Path) -> Iterator[Services]:
    """Services on a fresh home with the three entities."""
    services = make_services()
    add_entities(services)
    yield services
    services.close()


def open_case(built: Services, sample: Path, *, classification: str | None = None,
              entity_id: str | None = "minsa") -> str:
    """Ingest a real Shadowserver report for ``entity_id``, promote every alert to one case,
    and (like an analyst) reclassify it when asked; returns the case id."""
    with FileSource().open_report(sample, entity_id=entity_id, fmt="shadowserver") as report:
        result = built.pipeline.ingest(report)
    assert result.rejected == 0
    with built.store.read() as conn:
        ids = tuple(conn.execute(select(alerts.c.id).order_by(alerts.c.id)).scalars())
    case_id = str(built.cases.promote(AlertFilter(ids=ids), ANALYST)["case_id"])
    if classification:
        built.cases.update(case_id, {"classification": classification}, ANALYST)
    return case_id


@dataclass
class Driver:
    """Plays the people around a run: tasks done, approvals given, time moving on."""

    built: Services
    case_id: str
    now: datetime = field(default_factory=utcnow)
    approved: list[str] = field(default_factory=list)

    def finish_tasks(self) -> int:
        """Mark every open task of the case done, as the analyst."""
        open_tasks = [t for t in self.built.tasks.list(self.case_id) if t["status"] != "done"]
        for task in open_tasks:
            self.built.tasks.set_status(task["id"], "done", ANALYST)
        return len(open_tasks)

    def approve_waiting(self) -> int:
        """Approve every approval step waiting, as the coordinator."""
        count = 0
        for run in self.built.playbooks.status(self.case_id):
            for step in run["steps"]:
                if step["kind"] == "approval" and step["state"] == "waiting":
                    self.built.playbooks.approve(run["run_id"], step["id"], COORDINATOR,
                                                 now=self.now)
                    self.approved.append(step["id"])
                    count += 1
        return count

    def drive(self, rounds: int = 30, step: timedelta = timedelta(hours=1)) -> None:
        """Tick, finish tasks, approve, move the clock, until nothing is running."""
        for _ in range(rounds):
            if self.built.playbooks.tick(self.now) == 0:
                return
            self.finish_tasks()
            self.approve_waiting()
            self.now += step

    def run(self, playbook_id: str) -> dict[str, Any]:
        """The run of ``playbook_id`` on the case."""
        runs = [r for r in self.built.playbooks.status(self.case_id)
                if r["playbook"] == playbook_id]
        assert len(runs) == 1
        return runs[0]


def states(run: dict[str, Any]) -> dict[str, str]:
    """step id → state."""
    return {step["id"]: step["state"] for step in run["steps"]}


class FlakyMisp:
    """A MISP server stand-in (we cannot run MISP here): the first ``add_event`` fails like a
    refused connection, later ones store the event; this is the edge fake for export-misp."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.events: dict[str, Any] = {}
        self.calls = 0

    def event_exists(self, event: Any) -> bool:
        return str(event) in self.events

    def add_event(self, event: Any, pythonify: bool = False) -> Any:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("connection refused")
        self.events[str(event.uuid)] = event
        return {"Event": {"uuid": str(event.uuid)}}

    def update_event(self, event: Any, event_id: int | None = None,
                     pythonify: bool = False) -> Any:
        self.events[str(event.uuid)] = event
        return {"Event": {"uuid": str(event.uuid)}}
