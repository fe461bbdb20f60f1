"""Merging cases keeps all history: timeline entries of both, tasks, comments, alerts,
incidents and observables moved; the source closed as a duplicate pointing at the target."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.store.tables import audit_log
from pukara.core.errors import Conflict
from pukara.core.schema import utcnow
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


@pytest.fixture
def two_cases(built: Services, shared_data: Path) -> tuple[Services, str, str, str]:
    """Target: the Nmap alert. Source: a phishing-template case with the ICMP alerts, a
    back-dated note, a comment and an entity incident."""
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    target = built.cases.promote(AlertFilter(ids=tuple(alert_ids(built, NMAP))), ANA)
    source = built.cases.create({"title": "Lure", "template": "phishing",
                                 "entity_ids": ["bcrp"]}, ANA)
    built.cases.promote(AlertFilter(ids=tuple(alert_ids(built, ICMP))), ANA,
                        case_ref=source["number"])
    built.timeline.note(source["id"], "first mail received", ANA,
                        event_at=datetime(2026, 11, 2, 8, 15, tzinfo=UTC))
    built.timeline.comment(source["id"], "bcrp confirms 3 clicks", ANA)
    with built.store.write() as conn:
        incident = incident_service(built).submit(conn, reporter("bcrp"),
                                                  report("Correo falso", utcnow()))
    built.cases.link_incident(source["id"], incident["id"], ANA)
    return built, str(target["case_id"]), source["id"], incident["id"]


def test_merge_moves_everything_and_keeps_both_histories(
        two_cases: tuple[Services, str, str, str]) -> None:
    built, target_id, source_id, incident_id = two_cases
    merged = built.case_merge.merge(target_id, source_id, ANA)
    assert len(merged["tasks"]) == 5, "the five phishing-template tasks moved"
    assert sorted(a["title"] for a in merged["alerts"]) == [ICMP, ICMP, NMAP]
    assert [i["id"] for i in merged["incidents"]] == [incident_id]
    assert [c["text"] for c in merged["comments"]] == ["bcrp confirms 3 clicks"]
    assert merged["entity_ids"] == ["bcrp", "minsa"]
    assert {o["value"] for o in merged["observables"]} == {SCANNER, TARGET}
    actions = [e["action"] for e in merged["timeline"]]
    assert actions[0] == "note", "the back-dated note sorts first by event time"
    assert actions.count("case.open") == 2 and actions[-1] == "case.merge"
    assert merged["timeline"][0]["event_at"] == "2026-11-02T08:15:00Z"
    assert (merged["severity"], merged["tags"]) == ("medium", ["phishing"])


def test_the_source_is_closed_as_a_duplicate_pointing_at_the_target(
        two_cases: tuple[Services, str, str, str]) -> None:
    built, target_id, source_id, incident_id = two_cases
    target_number = built.cases.get(target_id)["number"]
    built.case_merge.merge(target_id, source_id, ANA)
    source = built.cases.get(source_id)
    assert (source["status"], source["resolution"], source["merged_into"]) == (
        "closed", "duplicate", target_id)
    assert source["summary"] == f"merged into {target_number}"
    assert [e["action"] for e in source["timeline"]] == ["case.merged", "case.close"]
    assert source["tasks"] == [] and source["alerts"] == [] and source["observables"] == []
    assert incident_service(built).get(reporter("bcrp"), incident_id)["status"] == "open"
    with built.store.read() as conn:
        actions = conn.execute(select(audit_log.c.action, audit_log.c.object_id).where(
            audit_log.c.action.in_(("case.merge", "case.merged_into")))).all()
        assert audit.verify(conn) > 0
    assert sorted(tuple(a) for a in actions) == [("case.merge", target_id),
                                                 ("case.merged_into", source_id)]
    with pytest.raises(Conflict, match="merged into another case"):
        built.cases.reopen(source_id, "oops", ANA)


def test_refused_merges(two_cases: tuple[Services, str, str, str]) -> None:
    built, target_id, source_id, _ = two_cases
    with pytest.raises(Conflict, match="into itself"):
        built.case_merge.merge(target_id, target_id, ANA)
    drill = built.cases.create({"title": "drill", "exercise_id": "ex-1"}, ANA)
    with pytest.raises(Conflict, match="exercise and real"):
        built.case_merge.merge(target_id, drill["id"], ANA)
    built.case_merge.merge(target_id, source_id, ANA)
    with pytest.raises(Conflict, match=r"source case .* is closed"):
        built.case_merge.merge(target_id, source_id, ANA)
