"""Background work of a running center: reminders once per deadline, playbooks on new cases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.services.identity import Principal, Role
from playbooks.tables import outbox as outbox_table
from pukara.core.config import load_settings
from pukara.core.schema import Entity, IncidentReport, utcnow
from pukara.wiring import Services, build_services
from pukara.workers import BackgroundWorkers, DeadlineReminders


@pytest.fixture
def built(pukara_home: Path) -> Services:
    services = build_services(load_settings())
    services.identity.add_entity(Entity(id="minsa", name="Ministerio de Salud",
                                        sector="health"))
    yield services
    services.close()


def _report(hours_ago: float) -> IncidentReport:
    return IncidentReport(title="Correo de phishing a funcionarios",
                          classification="fraud/phishing",
                          detected_at=utcnow() - timedelta(hours=hours_ago))


def test_overdue_stage_is_reminded_once_across_passes_and_restarts(built: Services) -> None:
    principal = Principal(Role.REPORTER, 0, entity_id="minsa")
    with built.store.write() as conn:
        view = built.intake.submit(conn, principal, _report(hours_ago=80))
    assert view["deadline_status"]["notification"] == "overdue"
    assert DeadlineReminders(built).run_pass() == 1
    assert DeadlineReminders(built).run_pass() == 0
    with built.store.read() as conn:
        queued = conn.execute(select(outbox_table.c.kind, outbox_table.c.channel,
                                     outbox_table.c.subject)
                              .where(outbox_table.c.kind == "report-update")).all()
    assert [(q.kind, q.channel) for q in queued] == [("report-update", "inbox")]
    assert "notification" in queued[0].subject


def test_a_pass_starts_playbooks_on_cases_opened_by_reports(built: Services) -> None:
    principal = Principal(Role.REPORTER, 0, entity_id="minsa")
    with built.store.write() as conn:
        view = built.intake.submit(conn, principal, _report(hours_ago=1))
    workers = BackgroundWorkers(built)
    workers.run_pass()
    runs = built.playbooks.status(view["case_id"])
    assert [run["playbook"] for run in runs] == ["phishing"]
    workers.run_pass()
    assert len(built.playbooks.status(view["case_id"])) == 1


def test_publishing_an_advisory_queues_one_notice_per_recipient(built: Services) -> None:
    from cases.services.audit import Actor

    built.identity.add_entity(Entity(id="essalud", name="EsSalud", sector="health"))
    built.identity.add_entity(Entity(id="onpe", name="ONPE", sector="government"))
    view = built.advisories.publish(
        {"title": "Campaña de ransomware contra hospitales", "summary": "Parchear VPN.",
         "tlp": "amber", "sectors": ["health"]}, Actor("ana"))
    with built.store.read() as conn:
        queued = conn.execute(select(outbox_table.c.entity_id, outbox_table.c.subject)
                              .where(outbox_table.c.kind == "advisory-published")).all()
    assert sorted(q.entity_id for q in queued) == ["essalud", "minsa"]
    assert all(view["number"] in q.subject for q in queued)
