"""Cases on the real Suricata sample: promotion, numbering, fields, closing rules, TLP, the
status an entity sees, evidence, similar cases (staff only), the audit trail — on SQLite and,
when a server answers, on PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.services.case_merge import CaseMergeService
from cases.services.cases import CaseService
from cases.services.identity import Identity, Principal, Role
from cases.store.engine import Store, make_engine
from cases.store.tables import alerts, audit_log
from collectors.sources.files import FileSource
from pukara.core.config import load_settings
from pukara.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pukara.core.schema import Alert, Entity, Hit, Observable, utcnow
from pukara.pipeline import Pipeline
from pukara.wiring import Services
from tests.cases.case_kit import (
    ICMP,
    MUNTAHA,
    NMAP,
    SCANNER,
    TARGET,
    alert_ids,
    built,
    incident_service,
    ingest,
    report,
    reporter,
)

__all__ = ["built"]
ANA = audit.Actor("ana")
YEAR = utcnow().year


@pytest.fixture
def muntaha(built: Services, shared_data: Path) -> Services:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    return built


def _promote(built: Services, title: str, **kwargs: str) -> dict[str, object]:
    return built.cases.promote(AlertFilter(ids=tuple(alert_ids(built, title))), ANA, **kwargs)


def test_promoting_the_nmap_row_makes_a_case_with_its_observables(muntaha: Services) -> None:
    result = _promote(muntaha, NMAP)
    assert result["number"] == f"CASE-{YEAR}-000001"
    case = muntaha.cases.get(str(result["case_id"]))
    assert case["title"] == NMAP
    assert case["classification"] == "intrusion-attempts/ids-alert"
    assert (case["severity"], case["tlp"], case["status"]) == ("low", "amber", "new")
    assert case["entity_ids"] == ["minsa"]
    assert [(o["type"], o["value"]) for o in case["observables"]] == [
        ("ipv4", SCANNER), ("ipv4", TARGET)]
    assert [(a["title"], a["count"], a["status"]) for a in case["alerts"]] == [
        (NMAP, 50, "promoted")]
    assert [e["action"] for e in case["timeline"]] == ["case.open", "alerts.link"]
    assert muntaha.alerts.get(alert_ids(muntaha, NMAP)[0])["case_id"] == result["case_id"]


def test_numbers_are_sequential_per_year(muntaha: Services) -> None:
    first = muntaha.cases.create({"title": "one"}, ANA)
    second = _promote(muntaha, ICMP)
    assert (first["number"], second["number"]) == (f"CASE-{YEAR}-000001",
                                                   f"CASE-{YEAR}-000002")
    assert muntaha.cases.get(f"case-{YEAR}-000002")["title"] == ICMP


def test_fields_are_validated(built: Services) -> None:
    case = built.cases.create({"title": "Phish", "techniques": ["t1566.002", "T1566"],
                               "classification": "fraud/phishing", "tlp": "TLP:GREEN"}, ANA)
    assert case["techniques"] == ["T1566.002", "T1566"] and case["tlp"] == "green"
    with pytest.raises(InvalidInput, match="techniques") as bad:
        built.cases.create({"title": "x", "techniques": ["1486"]}, ANA)
    assert "not an ATT&CK technique id" in bad.value.message
    with pytest.raises(InvalidInput, match="classification"):
        built.cases.create({"title": "x", "classification": "malware/whatever"}, ANA)
    with pytest.raises(InvalidInput, match="status"):
        built.cases.update(case["id"], {"status": "closed"}, ANA)
    with pytest.raises(InvalidInput, match="entity"):
        built.cases.create({"title": "x", "entity_ids": ["nobody"]}, ANA)


def test_closing_needs_a_resolution_and_a_summary(muntaha: Services) -> None:
    case_id = str(_promote(muntaha, NMAP)["case_id"])
    with pytest.raises(InvalidInput, match="summary"):
        muntaha.cases.close(case_id, "false-positive", "  ", ANA)
    with pytest.raises(InvalidInput, match="resolution"):
        muntaha.cases.close(case_id, "fixed", "scan from the lab", ANA)
    assert muntaha.cases.get(case_id)["status"] == "new"
    closed = muntaha.cases.close(case_id, "false-positive", "scan from the lab", ANA)
    assert (closed["status"], closed["resolution"], closed["summary"]) == (
        "closed", "false-positive", "scan from the lab")
    with pytest.raises(Conflict, match="reopen it first"):
        muntaha.cases.update(case_id, {"severity": "high"}, ANA)
    reopened = muntaha.cases.reopen(case_id, "the lab denies it", ANA)
    assert (reopened["status"], reopened["resolution"]) == ("in-progress", None)


def test_every_change_is_audited_with_before_and_after_hashes(muntaha: Services) -> None:
    case_id = str(_promote(muntaha, NMAP)["case_id"])
    muntaha.cases.update(case_id, {"severity": "high", "assignee": "ana",
                                   "tags": ["scan"]}, ANA)
    with muntaha.store.read() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.object_id == case_id)
                            .order_by(audit_log.c.seq)).all()
        assert audit.verify(conn) == len(conn.execute(select(audit_log)).all())
    assert [r.action for r in rows] == ["case.create", "case.update"]
    update = rows[1]
    assert update.before_hash and update.after_hash and update.before_hash != update.after_hash
    assert update.details["fields"] == ["assignee", "severity", "tags"]
    timeline = [e["text"] for e in muntaha.cases.get(case_id)["timeline"]]
    assert "severity: low → high" in timeline and "assignee: - → ana" in timeline


def test_tlp_rises_but_never_falls(muntaha: Services) -> None:
    case_id = str(_promote(muntaha, NMAP)["case_id"])
    assert muntaha.cases.update(case_id, {"tlp": "red"}, ANA)["tlp"] == "red"
    with pytest.raises(PermissionDenied, match="cannot be lowered from red to green"):
        muntaha.cases.update(case_id, {"tlp": "green"}, ANA)
    with muntaha.store.read() as conn:
        change = conn.execute(select(audit_log).where(
            audit_log.c.action == "case.tlp_change")).one()
    assert change.details == {"from": "amber", "to": "red", "reason": "analyst update"}


def test_the_entity_sees_the_case_status_on_its_incident(muntaha: Services) -> None:
    incidents = incident_service(muntaha)
    with muntaha.store.write() as conn:
        view = incidents.submit(conn, reporter("minsa"), report("Escaneo", utcnow()))
    case_id = str(_promote(muntaha, NMAP)["case_id"])
    muntaha.cases.link_incident(case_id, view["id"], ANA)
    assert incidents.get(reporter("minsa"), view["id"])["status"] == "open"
    muntaha.cases.update(case_id, {"status": "contained"}, ANA)
    seen = incidents.get(reporter("minsa"), view["id"])
    assert (seen["status"], seen["case_id"]) == ("in-progress", case_id)
    muntaha.cases.close(case_id, "true-positive", "blocked at the border", ANA)
    assert incidents.get(reporter("minsa"), view["id"])["status"] == "closed"


def test_a_case_lists_the_evidence_of_its_incidents(muntaha: Services) -> None:
    incidents = incident_service(muntaha)
    with muntaha.store.write() as conn:
        view = incidents.submit(conn, reporter("minsa"), report("Escaneo", utcnow()))
        incidents.add_evidence(conn, reporter("minsa"), view["id"], filename="eve.json",
                               content_type="application/json",
                               stream=io.BytesIO(b'{"event_type":"alert"}\n'),
                               max_bytes=1024)
    case_id = str(_promote(muntaha, NMAP)["case_id"])
    muntaha.cases.link_incident(case_id, view["id"], ANA)
    evidence = muntaha.cases.get(case_id)["evidence"]
    assert [(e["filename"], e["size"], e["incident_id"]) for e in evidence] == [
        ("eve.json", 23, view["id"])]


def test_observables_carry_their_enrichment_hits(built: Services) -> None:
    # constructed alert: a MISP hit as the intel matcher would attach it
    hit = Hit(kind="indicator", observable="ipv4:203.0.113.9", indicator="203.0.113.9",
              indicator_type="ip-dst", source="misp", event_info="Emotet C2")
    alert = Alert(source="sensor-1", title="C2 beacon", severity="high",
                  observables=[Observable(type="ipv4", value="203.0.113.9", role="dst")],
                  hits=[hit])
    built.pipeline.ingest_alerts([alert])
    case = built.cases.get(str(_promote(built, "C2 beacon")["case_id"]))
    [observable] = case["observables"]
    assert observable["value"] == "203.0.113.9"
    assert [h["event_info"] for h in observable["hits"]] == ["Emotet C2"]


def test_similar_cases_are_for_staff_only(muntaha: Services) -> None:
    nmap = str(_promote(muntaha, NMAP)["case_id"])
    icmp = _promote(muntaha, ICMP)
    lone = muntaha.cases.create({"title": "unrelated"}, ANA)
    similar = muntaha.case_merge.similar(nmap)
    assert [(s["number"], s["shared"]) for s in similar] == [(icmp["number"], 2)]
    assert similar[0]["observables"] == [f"ipv4:{SCANNER}", f"ipv4:{TARGET}"]
    assert muntaha.case_merge.similar(lone["id"]) == []
    analyst = Principal(Role.ANALYST, 1, user="ana")
    assert len(muntaha.case_merge.similar(nmap, analyst)) == 1
    for call in (lambda: muntaha.case_merge.similar(nmap, reporter("minsa")),
                 lambda: muntaha.cases.get(nmap, reporter("minsa")),
                 lambda: muntaha.cases.list(reporter("minsa"))):
        with pytest.raises(PermissionDenied):
            call()


def test_unknown_case_is_not_found(built: Services) -> None:
    with pytest.raises(NotFound, match="no such case"):
        built.cases.get("CASE-1999-000001")


def test_case_service_on_postgresql(pg_url: str, pukara_home: Path,
                                    shared_data: Path) -> None:
    store = Store(make_engine(pg_url)).open()
    try:
        Identity(store).add_entity(Entity(id="minsa", name="Minsa", sector="health"))
        pipeline = Pipeline(store=store, settings=load_settings())
        with FileSource().open_report(shared_data / MUNTAHA, fmt="suricata",
                                      entity_id="minsa") as raw:
            assert pipeline.ingest(raw).accepted == 56
        cases = CaseService(store)
        with store.read() as conn:
            nmap = conn.execute(select(alerts.c.id).where(alerts.c.title == NMAP)).scalars().all()
        promoted = cases.promote(AlertFilter(ids=tuple(nmap)), ANA)
        other = cases.create({"title": "Ransom", "template": "ransomware"}, ANA)
        merged = CaseMergeService(store, cases).merge(str(promoted["case_id"]), other["id"], ANA)
        assert merged["severity"] == "critical" and len(merged["tasks"]) == 6
        assert cases.get(other["id"])["merged_into"] == promoted["case_id"]
        closed = cases.close(str(promoted["case_id"]), "true-positive", "done", ANA)
        assert closed["status"] == "closed"
        with store.read() as conn:
            assert audit.verify(conn) > 10
    finally:
        store.close()
