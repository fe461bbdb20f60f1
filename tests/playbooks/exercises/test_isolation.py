"""Exercise data stays apart: never in the national picture, never shared, tagged on the
server, purged in one command; participant tokens only see their own entity (M1, M6).

The scenario and the "real" Suricata line below are constructed test inputs.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from cases.services.identity import Principal, Role
from cases.sharing.case_data import load_case
from cases.sharing.misp_export import build_event
from cases.sharing.stix_export import build_bundle
from cases.store.tables import alerts, audit_log, incidents
from cases.store.tables_cases import cases
from enrichment.intel.tables import indicators
from playbooks.exercises import runs
from playbooks.exercises.participants import issue_tokens
from playbooks.exercises.purge import purge
from playbooks.exercises.tables import exercise_messages, exercises
from pukara.core.errors import TLPViolation
from pukara.core.schema import IncidentReport, RawReport, utcnow
from pukara.exercise_runtime import COORDINATOR, RunOptions, run, start_api
from pukara.wiring import Services
from tests.playbooks.exercises.conftest import scenario

SMALL = scenario("""\
id: isolation-test
title: Isolation (constructed)
participants: [{entity: minsa}, {entity: essalud}]
timeline:
  - {id: note, at: "T+00:01", kind: message, args: {subject: "Exercise note"}}
  - id: beacon
    at: "T+00:02"
    kind: alert
    args: {template: suricata, signature: "ET MALWARE test beacon", attacker: 198.18.5.5}
    expectations:
      - {id: report-it, kind: report, points: 10, within_minutes: 20}
      - {id: name-it, kind: indicator, points: 5, within_minutes: 20,
         indicator: {type: ipv4, value: 198.18.5.5}}
  - {id: iocs, at: "T+00:05", kind: intel,
     args: {indicators: [{type: ipv4, value: 198.18.5.5}]}}
bots:
  default: {reaction: {distribution: uniform, low: 2, high: 4}}
""")


def real_traffic(services: Services) -> None:
    """One real alert (observed now) and one real incident, so the picture is not empty."""
    line = orjson.dumps({"timestamp": utcnow().isoformat(), "event_type": "alert",
                         "src_ip": "198.18.1.1", "dest_ip": "198.51.100.7", "proto": "TCP",
                         "alert": {"signature_id": 1, "signature": "real alert",
                                   "severity": 2}})
    services.pipeline.ingest(RawReport(stream=io.BytesIO(line), source="test",
                                       filename="real.json", format="suricata"))
    staff = Principal(Role.ANALYST, 0, user="analyst")
    with services.store.write() as conn:
        services.intake.submit(conn, staff, IncidentReport(
            title="real incident", classification="fraud/phishing", detected_at=utcnow(),
            entity_id="minsa"))


def count(services: Services, table: Any, *where: Any) -> int:
    with services.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


def test_exercise_records_are_kept_out_of_the_picture_and_sharing(services: Services) -> None:
    real_traffic(services)
    later = utcnow() + timedelta(minutes=5)
    before = services.picture.dashboard(later)
    assert sum(p["alerts"] for p in before["alerts_per_minute"]) == 1
    assert before["open_cases"]["by_entity"] == {"minsa": 1}
    result = run(services, SMALL, RunOptions(speed=600, bots=["all"]))
    exercise_id = result["exercise_id"]
    assert [(s["entity"], s["points"]) for s in result["scores"]] == [("essalud", 15),
                                                                      ("minsa", 15)]
    assert count(services, alerts, alerts.c.exercise_id == exercise_id) == 2
    assert services.picture.dashboard(later) == before
    with services.store.read() as conn:
        case_ids = list(conn.execute(select(cases.c.id).where(
            cases.c.exercise_id == exercise_id)).scalars())
    assert len(case_ids) == 1  # both reports name 198.18.5.5: one case for the campaign
    export = load_case(services.store, case_ids[0])
    with pytest.raises(TLPViolation, match=r"exercise data .* never shared to misp"):
        build_event(export)
    with pytest.raises(TLPViolation, match=r"exercise data .* never shared to stix"):
        build_bundle(export, "CNSD")


def test_purge_removes_every_record_of_the_run_and_nothing_else(services: Services) -> None:
    real_traffic(services)
    result = run(services, SMALL, RunOptions(speed=600, bots=["all"]))
    exercise_id = result["exercise_id"]
    source = f"exercise:{exercise_id}"
    assert count(services, indicators, indicators.c.source == source) == 1
    assert count(services, exercise_messages, exercise_messages.c.exercise_id == exercise_id) == 2

    removed = purge(services.store, exercise_id, COORDINATOR)

    assert removed["alerts"] == 2
    assert removed["incidents"] == 2
    assert removed["cases"] == 1
    assert removed["intel_indicators"] == 1
    assert removed["exercise_messages"] == 2
    assert removed["exercises"] == 1
    for table in (alerts, incidents, cases):
        assert count(services, table, table.c.exercise_id == exercise_id) == 0
        assert count(services, table, table.c.exercise_id.is_(None)) == 1  # the real one stays
    assert count(services, indicators, indicators.c.source == source) == 0
    assert count(services, exercises, exercises.c.id == exercise_id) == 0
    assert count(services, audit_log, audit_log.c.action == "exercise.purge",
                 audit_log.c.object_id == exercise_id) == 1


def test_participant_tokens_tag_reports_and_see_only_their_own(services: Services) -> None:
    exercise_id = runs.create(services.store, SMALL, ["minsa", "essalud"], ["minsa", "essalud"],
                              speed=600, actor=COORDINATOR)
    tokens = issue_tokens(services.identity, services.store, exercise_id, ["minsa", "essalud"])
    api = start_api(services)
    try:
        with httpx.Client(base_url=api.url) as client:
            body = {"title": "bot report", "classification": "malicious-code/c2-server",
                    "detected_at": utcnow().isoformat()}
            made = client.post("/api/v1/incidents", json=body,
                               headers={"Authorization": f"Bearer {tokens['minsa']}"})
            assert made.status_code == 201
            incident_id = made.json()["id"]
            other = client.get(f"/api/v1/incidents/{incident_id}",
                               headers={"Authorization": f"Bearer {tokens['essalud']}"})
            anonymous = client.get(f"/api/v1/incidents/{incident_id}")
            smuggled = client.post("/api/v1/incidents", json={**body, "exercise_id": "x"},
                                   headers={"Authorization": f"Bearer {tokens['minsa']}"})
    finally:
        api.stop()
    assert other.status_code == 404
    assert anonymous.status_code == 401
    assert smuggled.status_code == 422
    with services.store.read() as conn:
        row = conn.execute(select(incidents.c.exercise_id, incidents.c.regime).where(
            incidents.c.id == incident_id)).one()
    assert tuple(row) == (exercise_id, "exercise")
