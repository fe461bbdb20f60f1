"""The situational picture: deadline compliance per entity and sector, dashboard aggregates,
exercise data left out everywhere, reminders claimed exactly once."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select

from cases.services import audit
from cases.services.alert_filter import AlertFilter
from cases.services.autocase import attach_incident
from cases.services.campaigns import record_campaigns
from cases.services.evidence import EvidenceStore
from cases.services.identity import Identity
from cases.services.incidents import IncidentService
from cases.services.picture import PictureService, percentiles
from cases.store.engine import Store, make_engine
from cases.store.tables import alerts
from cases.store.tables_cases import alert_events, reminders_sent
from enrichment.correlation import Campaign
from enrichment.intel.tables import campaigns
from pukara.core.config import load_settings
from pukara.core.schema import Entity, RawReport, utcnow
from pukara.wiring import Services
from tests.cases.case_kit import built, incident_service, report, reporter

__all__ = ["built"]
ANA = audit.Actor("ana")


@pytest.fixture
def reports(built: Services) -> Services:
    """minsa: one report 80 h old (notification overdue) and one 20 h old; bcrp: one 20 h
    old; plus an exercise report 80 h old that must count nowhere."""
    now = utcnow()
    incidents = incident_service(built)
    with built.store.write() as conn:
        for entity, hours, exercise in (("minsa", 80, None), ("minsa", 20, None),
                                        ("bcrp", 20, None), ("bcrp", 80, "ex-1")):
            incidents.submit(conn, reporter(entity),
                             report(f"{entity} {hours}h", now - timedelta(hours=hours),
                                    exercise_id=exercise))
    return built


def test_compliance_per_entity_and_sector_leaves_exercises_out(reports: Services) -> None:
    picture = reports.picture.compliance()
    # the 80 h report: early warning sent late (overdue), notification overdue, final due;
    # the 20 h reports: early warning met (the first report), notification and final due
    assert picture["by_entity"] == {
        "bcrp": {"met": 1, "due": 2, "due-soon": 0, "overdue": 0, "met_rate": 1.0},
        "minsa": {"met": 1, "due": 3, "due-soon": 0, "overdue": 2, "met_rate": 0.3333},
    }
    assert set(picture["by_sector"]) == {"finance", "health"}
    assert picture["by_sector"]["health"]["overdue"] == 2


def test_overdue_reports_and_reminders_are_claimed_once(reports: Services) -> None:
    dashboard = reports.picture.dashboard()
    overdue = dashboard["overdue_reports"]
    assert overdue["count"] == 1
    assert [(i["entity_id"], i["stages"]) for i in overdue["incidents"]] == [
        ("minsa", ["early-warning", "notification"])]
    due = reports.picture.due_reminders()
    assert [(r.entity_id, r.stage, r.state) for r in due] == [
        ("minsa", "notification", "overdue")], "a stage already sent (late) is not reminded"
    with reports.store.write() as conn:
        first = reports.picture.claim_reminders(conn)
    with reports.store.write() as conn:
        second = reports.picture.claim_reminders(conn)
    restarted = PictureService(reports.store, reports.settings)
    with reports.store.write() as conn:
        after_restart = restarted.claim_reminders(conn)
    assert [r.key for r in first] == [r.key for r in due]
    assert first[0].key.startswith(f"deadline:{first[0].incident_id}:notification:")
    assert (second, after_restart, reports.picture.due_reminders()) == ([], [], [])
    with reports.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(reminders_sent)).scalar_one() == 1


def test_a_claim_rolled_back_is_claimed_again(reports: Services) -> None:
    with pytest.raises(RuntimeError), reports.store.write() as conn:
        assert len(reports.picture.claim_reminders(conn)) == 1
        raise RuntimeError("the outbox write failed")
    with reports.store.write() as conn:
        assert len(reports.picture.claim_reminders(conn)) == 1


def _ingest_alerts(built: Services, now: datetime, rows: list[tuple[str, int]],
                   exercise_id: str | None = None) -> None:
    """Constructed native alerts, ``minutes`` before ``now``, one address each."""
    lines = [json.dumps({"source": "sensor-1", "title": title, "severity": "high",
                         "entity_id": "minsa",
                         "observed_at": (now - timedelta(minutes=minutes)).isoformat(),
                         "observables": [{"type": "ipv4", "value": f"198.51.100.{title}"}]})
             for title, minutes in rows]
    built.pipeline.ingest(RawReport(stream=io.BytesIO("\n".join(lines).encode()),
                                    source="api", format="alerts", exercise_id=exercise_id))


def _ack_expected(conn: Connection) -> list[float]:
    query = (select(alert_events.c.at, alerts.c.first_seen)
             .join(alerts, alerts.c.id == alert_events.c.alert_id)
             .where(alert_events.c.from_status == "new", alerts.c.exercise_id.is_(None)))
    return [(at - seen).total_seconds() for at, seen in conn.execute(query)]


def test_dashboard_aggregates_real_data_only(built: Services) -> None:
    now = utcnow()
    # 3 alerts one minute ago, 2 five minutes ago, and 1 exercise alert one minute ago
    _ingest_alerts(built, now, [("1", 1), ("2", 1), ("3", 1), ("4", 5), ("5", 5)])
    _ingest_alerts(built, now, [("6", 1)], exercise_id="ex-1")
    built.cases.promote(AlertFilter(ids=(1, 2)), ANA)
    built.cases.create({"title": "drill", "exercise_id": "ex-1", "severity": "critical",
                        "entity_ids": ["minsa"]}, ANA)
    built.cases.create({"title": "bank", "severity": "low", "entity_ids": ["bcrp"]}, ANA)
    built.triage.acknowledge(AlertFilter(ids=(4, 6)), ANA)
    dashboard = built.picture.dashboard(now)
    per_minute = [m["alerts"] for m in dashboard["alerts_per_minute"]]
    assert len(per_minute) == 60 and sum(per_minute) == 5
    assert (per_minute[-2], per_minute[-6]) == (3, 2)
    assert dashboard["open_cases"] == {"by_severity": {"high": 1, "low": 1},
                                       "by_sector": {"finance": 1, "health": 1},
                                       "by_entity": {"bcrp": 1, "minsa": 1}}
    with built.store.read() as conn:
        expected = _ack_expected(conn)
    assert len(expected) == 3, "alerts 1 and 2 promoted, 4 acknowledged; 6 is an exercise"
    assert dashboard["time_to_acknowledge"] == percentiles(expected)


def test_time_to_close_and_campaigns(built: Services) -> None:
    case = built.cases.create({"title": "x"}, ANA)
    built.cases.close(case["id"], "other", "nothing found", ANA)
    now = utcnow()
    with built.store.write() as conn:
        conn.execute(insert(campaigns), [
            {"key": "k1", "exercise_id": "", "observable_key": "ipv4:203.0.113.7",
             "entity_ids": ["minsa", "bcrp", "onpe"], "first_seen": now, "last_seen": now,
             "alert_fingerprints": [], "updated_at": now},
            {"key": "k2", "exercise_id": "ex-1", "observable_key": "ipv4:203.0.113.8",
             "entity_ids": ["minsa", "bcrp", "onpe"], "first_seen": now, "last_seen": now,
             "alert_fingerprints": [], "updated_at": now}])
        record_campaigns(conn, [
            Campaign(key="k1", observable="ipv4:203.0.113.7", exercise_id=None,
                     entity_ids=["minsa", "bcrp", "onpe"], first_seen=now, last_seen=now,
                     alert_fingerprints=[]),
            Campaign(key="k2", observable="ipv4:203.0.113.8", exercise_id="ex-1",
                     entity_ids=["minsa", "bcrp", "onpe"], first_seen=now, last_seen=now,
                     alert_fingerprints=[])])
    dashboard = built.picture.dashboard()
    assert dashboard["time_to_close"]["count"] == 1
    assert dashboard["active_campaigns"]["count"] == 1
    assert dashboard["active_campaigns"]["open_alerts"] == 1, "the exercise one is left out"
    assert dashboard["active_campaigns"]["campaigns"][0]["entities"] == 3
    assert "entity_ids" not in dashboard["active_campaigns"]["campaigns"][0]


def test_percentiles_nearest_rank() -> None:
    assert percentiles([]) == {"count": 0, "median": None, "p90": None}
    assert percentiles([float(v) for v in range(1, 11)]) == {"count": 10, "median": 5.5,
                                                             "p90": 9.0}


def test_reminders_and_autocase_on_postgresql(pg_url: str, pukara_home: Path) -> None:
    settings = load_settings()
    store = Store(make_engine(pg_url)).open()
    try:
        Identity(store).add_entity(Entity(id="minsa", name="Minsa", sector="health"))
        incidents = IncidentService(store, settings, EvidenceStore(pukara_home / "evidence"))
        aware = utcnow() - timedelta(hours=80)
        with store.write() as conn:
            first = incidents.submit(conn, reporter("minsa"), report("a", aware))
            case_id = attach_incident(conn, first)
        with store.write() as conn:
            second = incidents.submit(conn, reporter("minsa"), report("b", aware))
            assert attach_incident(conn, second) == case_id
        picture = PictureService(store, settings)
        with store.write() as conn:
            claimed = picture.claim_reminders(conn)
        with store.write() as conn:
            assert picture.claim_reminders(conn) == []
        assert sorted(r.incident_id for r in claimed) == sorted([first["id"], second["id"]])
        assert picture.compliance()["by_sector"]["health"]["overdue"] == 4
    finally:
        store.close()
