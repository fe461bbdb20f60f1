"""Automatic case opening: entity reports open or join cases by rule; strong alerts do so
only when configured (off by default)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from cases.services import audit
from cases.services.autocase import (
    AlertAutoCase,
    AutoCaseRules,
    CaseOpeningIncidents,
    attach_incident,
)
from cases.store.tables import alerts
from cases.store.tables_cases import cases
from pukara.core.schema import Alert, Hit, IncidentReport, Observable, utcnow
from pukara.wiring import Services
from tests.cases.case_kit import built, incident_service, ingest, report, reporter

__all__ = ["built"]
ANA = audit.Actor("ana")
C2 = {"type": "ipv4", "value": "203.0.113.7"}


def submit(built: Services, entity: str, incident: IncidentReport,
           rules: AutoCaseRules | None = None) -> tuple[dict[str, Any], str]:
    """Submit a report and attach it in the same transaction, as the API will."""
    with built.store.write() as conn:
        view = incident_service(built).submit(conn, reporter(entity), incident)
        return view, attach_incident(conn, view, rules)


def _case_count(built: Services) -> int:
    with built.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(cases)).scalar_one())


def test_a_report_opens_a_case_from_its_fields(built: Services) -> None:
    view, case_id = submit(built, "minsa", report("Ransomware en hospital", utcnow(),
                                                  observables=[C2]))
    case = built.cases.get(case_id)
    assert (case["title"], case["classification"], case["entity_ids"]) == (
        "Ransomware en hospital", "malicious-code/infected-system", ["minsa"])
    assert [i["tracking_number"] for i in case["incidents"]] == [view["tracking_number"]]
    assert [o["value"] for o in case["observables"]] == ["203.0.113.7"]
    assert case["created_by"] == "autocase"
    assert incident_service(built).get(reporter("minsa"), view["id"])["case_id"] == case_id


def test_same_entity_and_classification_join_the_open_case(built: Services) -> None:
    _, first = submit(built, "minsa", report("Equipo 1", utcnow()))
    _, second = submit(built, "minsa", report("Equipo 2", utcnow()))
    _, other_kind = submit(built, "minsa", report("Phish", utcnow(),
                                                  classification="fraud/phishing"))
    _, other_entity = submit(built, "bcrp", report("Equipo 3", utcnow()))
    assert second == first
    assert len({first, other_kind, other_entity}) == 3


def test_a_closed_case_is_not_joined(built: Services) -> None:
    _, first = submit(built, "minsa", report("Equipo 1", utcnow()))
    built.cases.close(first, "true-positive", "cleaned", ANA)
    _, second = submit(built, "minsa", report("Equipo 2", utcnow()))
    assert second != first


def test_a_report_outside_the_window_opens_its_own_case(built: Services) -> None:
    _, first = submit(built, "minsa", report("Equipo 1", utcnow()))
    rules = AutoCaseRules(window=timedelta(minutes=30), join_on_observables=False)
    with built.store.write() as conn:
        conn.execute(cases.update().values(updated_at=utcnow() - timedelta(hours=2)))
    _, second = submit(built, "minsa", report("Equipo 2", utcnow()), rules)
    assert second != first


def test_shared_observables_join_across_entities_but_red_stays_home(built: Services) -> None:
    _, first = submit(built, "minsa", report("C2 en hospital", utcnow(), observables=[C2]))
    _, phish = submit(built, "bcrp", report("Correo", utcnow(), observables=[C2],
                                            classification="fraud/phishing"))
    _, red = submit(built, "bcrp", report("Secreto", utcnow(), observables=[C2],
                                          classification="fraud/phishing", tlp="red"))
    assert phish == first
    assert built.cases.get(first)["entity_ids"] == ["bcrp", "minsa"]
    assert red != first
    assert built.cases.get(red)["entity_ids"] == ["bcrp"]
    _, red_again = submit(built, "bcrp", report("Secreto 2", utcnow(), observables=[C2],
                                                tlp="red"))
    assert red_again == red, "a case whose only entity is bcrp may take its RED reports"


def test_exercise_reports_never_join_real_cases(built: Services) -> None:
    _, real = submit(built, "minsa", report("Equipo", utcnow(), observables=[C2]))
    _, drill = submit(built, "minsa", report("Equipo", utcnow(), observables=[C2],
                                             exercise_id="ex-1"))
    _, drill2 = submit(built, "minsa", report("Equipo", utcnow(), exercise_id="ex-1"))
    assert drill != real and drill2 == drill
    assert built.cases.get(drill)["exercise_id"] == "ex-1"


def _strong_alert(value: str) -> Alert:
    # constructed: a high alert with the hit the intel matcher would add
    return Alert(source="sensor-1", title=f"Beacon to {value}", severity="high",
                 entity_id="minsa",
                 observables=[Observable(type="ipv4", value=value, role="dst")],
                 hits=[Hit(kind="indicator", observable=f"ipv4:{value}", indicator=value,
                           indicator_type="ip-dst", source="misp")])


def test_alert_autocase_is_off_by_default(built: Services, shared_data: Path) -> None:
    listener = AlertAutoCase(built.store, AutoCaseRules(), built.settings.dedup_bucket_seconds)
    built.pipeline.on_batch.append(listener)
    ingest(built, shared_data / "shadowserver/event4_sinkhole.csv", "shadowserver")
    built.pipeline.ingest_alerts([_strong_alert("203.0.113.7")])
    assert _case_count(built) == 0


def test_strong_alerts_open_and_join_cases_when_configured(built: Services,
                                                           shared_data: Path) -> None:
    rules = AutoCaseRules(alerts=True)
    listener = AlertAutoCase(built.store, rules, built.settings.dedup_bucket_seconds)
    built.pipeline.on_batch.append(listener)
    # the three real sinkhole rows are high but carry no enrichment hit: no case
    ingest(built, shared_data / "shadowserver/event4_sinkhole.csv", "shadowserver")
    assert _case_count(built) == 0
    built.pipeline.ingest_alerts([_strong_alert("203.0.113.7")])
    _, joined = submit(built, "bcrp", report("Visto", utcnow(), observables=[C2]))
    with built.store.read() as conn:
        rows = conn.execute(select(alerts.c.status, alerts.c.case_id).where(
            alerts.c.source == "sensor-1")).all()
    assert [r.status for r in rows] == ["promoted"]
    assert rows[0].case_id == joined, "the entity report joined the alert's case"
    assert _case_count(built) == 1


def test_e_mail_reports_through_the_pipeline_open_cases(built: Services,
                                                       shared_data: Path) -> None:
    built.pipeline.incidents = CaseOpeningIncidents(incident_service(built))
    result = ingest(built, shared_data / "email/mail_3.eml", "eml", entity_id="minsa")
    assert (result.accepted, result.rejected) == (1, 0)
    [case] = built.cases.list()
    assert case["title"].startswith("Testing Manuel Lemos' MIME E-mail composing")
    assert (case["incidents"], case["entity_ids"]) == (1, ["minsa"])
    with built.store.write() as conn:
        view = CaseOpeningIncidents(incident_service(built)).submit(
            conn, reporter("minsa"), report("Otra", utcnow(),
                                            classification="other/undetermined"))
    assert view["case_id"] == case["id"], "same entity and classification: joined"
