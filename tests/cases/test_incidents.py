"""IncidentService on a real store, SQLite and PostgreSQL (SECURITY A4, B1, B5, B7, B11, H8,
N1–N3). Reports are constructed; addresses are from documentation ranges."""

from __future__ import annotations

import io
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from cases.services import audit
from cases.services.evidence import EvidenceStore
from cases.services.identity import Identity, Principal, Role
from cases.services.incident_models import rfc3339
from cases.services.incidents import DuplicateIncident, IncidentService, IncidentUpdate
from cases.store.engine import Store, make_engine
from cases.store.tables import audit_log, incident_observables, incident_updates, incidents
from pukara.core.config import Settings
from pukara.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TLPViolation
from pukara.core.schema import Entity, IncidentReport
from pukara.core.taxonomy import rsit_version

A = Principal(Role.REPORTER, 1, entity_id="ent-a")
B = Principal(Role.REPORTER, 2, entity_id="ent-b")
ANALYST = Principal(Role.ANALYST, 3, user="ana")
ORPHAN = Principal(Role.REPORTER, 4)
VIEW_KEYS = {
    "id", "tracking_number", "entity_id", "title", "classification", "taxonomy_version",
    "severity", "tlp", "pap", "status", "detected_at", "awareness_at", "created_at",
    "updated_at", "deadlines", "deadline_status", "updates", "evidence", "case_id",
    "external_id", "exercise_id", "observables", "impact", "containment", "description",
}


def add_entities(case_store: Store) -> None:
    identity = Identity(case_store)
    for slug in ("ent-a", "ent-b"):
        identity.add_entity(Entity(id=slug, name=f"Entidad {slug[-1].upper()}", sector="health"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store with entities A and B, copied for each test (fast set-up)."""
    home = tmp_path_factory.mktemp("template")
    template = Store(make_engine(f"sqlite:///{home / 'pukara.db'}"), home=home).open()
    add_entities(template)
    template.close()
    return home / "pukara.db"


@pytest.fixture(scope="module")
def pg_store(pg_module_url: str) -> Iterator[Store]:
    opened = Store(make_engine(pg_module_url)).open()
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          sqlite_template: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "pukara.db")
        opened = Store(make_engine(f"sqlite:///{tmp_path / 'pukara.db'}"), home=tmp_path).open()
        yield opened
        opened.close()
        return
    shared: Store = request.getfixturevalue("pg_store")
    tables = [t for m in Store.metadatas() for t in reversed(m.sorted_tables)]
    with shared.write() as conn:  # DELETE is cheaper than TRUNCATE on small tables
        conn.exec_driver_sql("TRUNCATE TABLE audit_log, audit_head")  # no row triggers
        for table in tables:
            if table.name not in ("audit_log", "audit_head"):
                conn.execute(table.delete())
        audit.ensure_head(conn)
    add_entities(shared)
    yield shared


@pytest.fixture
def settings(pukara_home: Path) -> Settings:
    return Settings(home=pukara_home, default_regime="nis2")


@pytest.fixture
def service(store: Store, settings: Settings, tmp_path: Path) -> IncidentService:
    return IncidentService(store, settings, EvidenceStore(tmp_path / "evidence"))


def report(**fields: Any) -> IncidentReport:
    body: dict[str, Any] = {
        "title": "Ransomware en servidor de archivos",
        "classification": "malicious-code/ransomware",
        "detected_at": "2026-01-31T20:00:00Z",
        "awareness_at": "2026-01-31T23:30:00Z",
        "description": "Cifrado de recursos compartidos",
        "severity": "high",
        "observables": [{"type": "ipv4", "value": "198.51.100.7"}],
    }
    body.update(fields)
    return IncidentReport.model_validate(body)


def submit(service: IncidentService, principal: Principal, **fields: Any) -> dict[str, Any]:
    with service.store.write() as conn:
        return service.submit(conn, principal, report(**fields), request_id="req-1")


def add_update(service: IncidentService, principal: Principal, incident_id: str,
               **fields: Any) -> dict[str, Any]:
    with service.store.write() as conn:
        return service.add_update(conn, principal, incident_id,
                                  IncidentUpdate.model_validate(fields))


def audit_entries(service: IncidentService, action: str) -> list[Any]:
    with service.store.read() as conn:
        assert audit.verify(conn) > 0
        return list(conn.execute(select(audit_log).where(audit_log.c.action == action)
                                 .order_by(audit_log.c.seq)))


def test_submission_numbers_view_and_deadlines(service: IncidentService) -> None:
    year = datetime.now(UTC).year
    first = submit(service, A)
    second = submit(service, A, title="Segundo")
    third = submit(service, B)
    assert [first["tracking_number"], second["tracking_number"], third["tracking_number"]] == [
        f"INC-{year}-000001", f"INC-{year}-000002", f"INC-{year}-000003"]
    assert set(first) == VIEW_KEYS
    assert uuid.UUID(first["id"]).version == 4
    assert first["entity_id"] == "ent-a" and third["entity_id"] == "ent-b"
    assert first["classification"] == "malicious-code/ransomware"
    assert first["taxonomy_version"] == rsit_version()
    assert (first["status"], first["severity"], first["tlp"], first["pap"]) == (
        "new", "high", "amber", "amber")
    assert first["awareness_at"] == "2026-01-31T23:30:00Z"
    assert first["detected_at"] == "2026-01-31T20:00:00Z"
    assert first["deadlines"] == {"regime": "nis2", "early_warning": "2026-02-01T23:30:00Z",
                                  "notification": "2026-02-03T23:30:00Z",
                                  "final_report": "2026-03-03T23:30:00Z",
                                  "progress_report": "2026-03-03T23:30:00Z"}
    # submitted long after awareness: the initial report (the early warning) came late, and
    # the incident is still open at the final-report deadline: a progress report is due
    # then and the final report waits until it is handled (NIS2 Art. 23(4)(e))
    assert first["deadline_status"] == {"early-warning": "overdue", "notification": "overdue",
                                        "final": "postponed", "progress": "overdue"}
    assert [(u["number"], u["stage"]) for u in first["updates"]] == [(1, "early-warning")]
    assert first["observables"] == [{"type": "ipv4", "value": "198.51.100.7"}]
    assert first["containment"] == "not-started"
    assert first["description"] == "Cifrado de recursos compartidos"
    assert first["impact"]["personal_data"] is False
    assert first["created_at"].endswith("Z")


def test_fresh_report_is_on_time(service: IncidentService) -> None:
    aware = datetime.now(UTC) - timedelta(hours=2)
    view = submit(service, A, awareness_at=aware.isoformat(), detected_at=aware.isoformat())
    assert view["deadline_status"] == {"early-warning": "met", "notification": "due",
                                       "final": "due"}


def test_raw_and_doc_are_stored(service: IncidentService, store: Store) -> None:
    raw = '{"title": "Ransomware en servidor de archivos", "x": 1}'
    view = submit(service, A, raw=raw)
    with store.read() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == view["id"])).one()
    assert row.raw == raw
    assert "raw" not in row.doc and "attachments" not in row.doc
    assert row.doc["title"] == "Ransomware en servidor de archivos"
    assert row.tlp_origin == "ent-a"
    entry = audit_entries(service, "incident.submit")[0]
    assert entry.after_hash == audit.digest(row.doc)
    assert entry.request_id == "req-1" and entry.actor == "entity:ent-a"


def test_entity_isolation_exact_visible_sets(service: IncidentService) -> None:
    a1, a2 = submit(service, A)["id"], submit(service, A)["id"]
    b1 = submit(service, B)["id"]
    assert {v["id"] for v in service.list_for(A)} == {a1, a2}
    assert {v["id"] for v in service.list_for(B)} == {b1}
    assert {v["id"] for v in service.list_for(ANALYST)} == {a1, a2, b1}
    assert service.list_for(ORPHAN) == []
    assert service.get(A, a1)["id"] == a1
    messages = set()
    for probe in (a1, str(uuid.uuid4()), "not-a-uuid", "../../etc/passwd", a1.upper()):
        with pytest.raises(NotFound) as caught:
            service.get(B, probe)
        messages.add(str(caught.value))
    assert messages == {"no such incident"}
    with pytest.raises(NotFound, match="no such incident"):
        add_update(service, B, a1, stage="notification")
    with pytest.raises(NotFound), service.store.write() as conn:
        service.add_evidence(conn, B, a1, filename="x.bin", content_type="text/plain",
                             stream=io.BytesIO(b"x"), max_bytes=10)
    with pytest.raises(NotFound), service.store.write() as conn:
        service.change_tlp(conn, B, a1, "red", "mine now")
    assert len(service.get(A, a1)["updates"]) == 1


def test_entity_comes_from_the_token(service: IncidentService) -> None:
    view = submit(service, A, entity_id="ent-b")
    assert view["entity_id"] == "ent-a"
    assert service.list_for(B) == []
    assert audit_entries(service, "incident.submit")[0].details == {
        "tracking_number": view["tracking_number"], "regime": "nis2",
        "ignored_entity_id": "ent-b"}
    with pytest.raises(InvalidInput, match="staff must name the entity"):
        submit(service, ANALYST)
    with pytest.raises(InvalidInput, match="no entity 'ent-z'"):
        submit(service, ANALYST, entity_id="ent-z")
    with pytest.raises(PermissionDenied):
        submit(service, ORPHAN)
    on_behalf = submit(service, ANALYST, entity_id="ent-b")
    assert on_behalf["entity_id"] == "ent-b"
    assert [v["id"] for v in service.list_for(B)] == [on_behalf["id"]]


def test_external_id_duplicate_names_the_first(service: IncidentService) -> None:
    first = submit(service, A, external_id="TICKET-7")
    with pytest.raises(DuplicateIncident) as caught:
        submit(service, A, external_id="TICKET-7", title="Reenvío")
    assert isinstance(caught.value, Conflict)
    assert first["tracking_number"] in str(caught.value)
    assert caught.value.incident_id == first["id"]
    other = submit(service, B, external_id="TICKET-7")
    # the refused submission rolled back its number: no gap
    assert other["tracking_number"].endswith("-000002")
    assert len(service.list_for(ANALYST)) == 2


def test_concurrent_duplicates_yield_one_incident(service: IncidentService) -> None:
    outcomes: list[str] = []

    def worker() -> None:
        try:
            outcomes.append(submit(service, A, external_id="SOC-42")["tracking_number"])
        except DuplicateIncident as exc:
            outcomes.append(f"duplicate of {exc.tracking_number}")

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    year = datetime.now(UTC).year
    first = f"INC-{year}-000001"
    assert sorted(outcomes) == [first] + [f"duplicate of {first}"] * 4
    assert [v["tracking_number"] for v in service.list_for(ANALYST)] == [first]


def test_stage_updates_are_numbered_immutable_versions(service: IncidentService,
                                                       store: Store) -> None:
    incident = submit(service, A)["id"]
    with pytest.raises(InvalidInput, match="notification first"):
        add_update(service, A, incident, stage="final")
    add_update(service, A, incident, stage="notification", severity="critical",
               containment="contained", significant=True)
    with store.read() as conn:
        before = [dict(r._mapping) for r in conn.execute(
            select(incident_updates).order_by(incident_updates.c.number))]
    view = add_update(service, A, incident, stage="final", root_cause="RDP expuesto",
                      mitigations="MFA", cross_border=False)
    assert [(u["number"], u["stage"]) for u in view["updates"]] == [
        (1, "early-warning"), (2, "notification"), (3, "final")]
    assert (view["severity"], view["containment"]) == ("critical", "contained")
    with store.read() as conn:
        after = [dict(r._mapping) for r in conn.execute(
            select(incident_updates).order_by(incident_updates.c.number))]
    assert after[:2] == before
    assert after[2]["doc"]["notification_update_id"] == after[1]["id"]
    assert after[2]["doc"]["root_cause"] == "RDP expuesto"
    assert after[0]["doc"]["initial"] is True and after[0]["doc"]["title"] == view["title"]
    # NIS2: the final report is due one calendar month after the notification was submitted
    notified = after[1]["created_at"]
    assert view["deadlines"]["final_report"] == rfc3339(notified + relativedelta(months=1))
    assert view["deadline_status"]["final"] == "met"
    with pytest.raises(IntegrityError), store.write() as conn:
        conn.execute(insert(incident_updates).values(
            id=str(uuid.uuid4()), incident_id=incident, number=2, stage="update", doc={},
            created_at=datetime.now(UTC), created_by="x"))
    assert len(audit_entries(service, "incident.update")) == 2


def test_peru_first_report_is_the_notification(service: IncidentService) -> None:
    service.settings.default_regime = "peru"
    view = submit(service, A)
    assert view["deadlines"]["regime"] == "peru"
    assert view["deadlines"]["early_warning"] is None
    assert view["deadlines"]["notification"] == "2026-02-02T23:30:00Z"
    assert [u["stage"] for u in view["updates"]] == ["notification"]
    final = add_update(service, A, view["id"], stage="final")
    assert [u["stage"] for u in final["updates"]] == ["notification", "final"]


def test_exercise_incident_has_no_clock(service: IncidentService) -> None:
    view = submit(service, A, exercise_id="ex-2026-01")
    assert view["exercise_id"] == "ex-2026-01"
    assert view["deadlines"] == {"regime": "exercise", "early_warning": None,
                                 "notification": None, "final_report": None}
    assert set(view["deadline_status"].values()) == {"not-required"}


def test_awareness_change_needs_reason_and_flags_backdating(service: IncidentService) -> None:
    incident = submit(service, A)["id"]
    with pytest.raises(InvalidInput, match="needs a reason"):
        add_update(service, A, incident, stage="update", awareness_at="2026-02-01T08:00:00Z")
    later = add_update(service, A, incident, stage="update",
                       awareness_at="2026-02-01T08:00:00Z", reason="SOC confirmó el alcance")
    assert later["awareness_at"] == "2026-02-01T08:00:00Z"
    assert later["deadlines"]["early_warning"] == "2026-02-02T08:00:00Z"
    earlier = add_update(service, A, incident, stage="update",
                         awareness_at="2026-01-30T10:00:00Z", reason="registro del firewall")
    assert earlier["deadlines"]["notification"] == "2026-02-02T10:00:00Z"
    entries = audit_entries(service, "incident.awareness_change")
    assert [e.details["backdated"] for e in entries] == [False, True]
    assert entries[1].details["from"] == "2026-02-01T08:00:00Z"
    assert entries[1].details["to"] == "2026-01-30T10:00:00Z"
    assert entries[1].details["reason"] == "registro del firewall"
    assert entries[1].before_hash == audit.digest({"awareness_at": "2026-02-01T08:00:00Z"})
    assert entries[1].after_hash == audit.digest({"awareness_at": "2026-01-30T10:00:00Z"})
    with service.store.read() as conn:
        doc = conn.execute(select(incidents.c.doc).where(incidents.c.id == incident)).scalar()
    assert doc["backdated"] is True
    assert [c["backdated"] for c in doc["awareness_changes"]] == [False, True]


def test_tlp_raise_always_lower_only_by_originator(service: IncidentService) -> None:
    incident = submit(service, A, tlp="amber")["id"]

    def change(principal: Principal, tlp: str, reason: str = "revisión") -> dict[str, Any]:
        with service.store.write() as conn:
            return service.change_tlp(conn, principal, incident, tlp, reason)

    with pytest.raises(InvalidInput, match="needs a reason"):
        change(A, "red", " ")
    assert change(A, "red")["tlp"] == "red"
    assert service.get(ANALYST, incident)["tlp"] == "red"
    assert len(audit_entries(service, "incident.read")) == 1
    with pytest.raises(TLPViolation, match="only the originator"):
        change(ANALYST, "amber")
    with pytest.raises(NotFound):
        change(B, "clear")
    assert change(A, "green", "publicable al sector")["tlp"] == "green"
    assert change(ANALYST, "amber+strict")["tlp"] == "amber+strict"
    entries = audit_entries(service, "incident.tlp_change")
    assert [(e.details["from"], e.details["to"], e.actor) for e in entries] == [
        ("amber", "red", "entity:ent-a"), ("red", "green", "entity:ent-a"),
        ("green", "amber+strict", "ana")]


def test_sort_and_limit_allow_list(service: IncidentService) -> None:
    for severity in ("low", "critical", "medium"):
        submit(service, A, severity=severity, title=severity)
    assert [v["severity"] for v in service.list_for(A, sort="-severity")] == [
        "critical", "medium", "low"]
    assert [v["severity"] for v in service.list_for(A, sort="severity")] == [
        "low", "medium", "critical"]
    assert [v["title"] for v in service.list_for(A)] == ["medium", "critical", "low"]
    assert [v["title"] for v in service.list_for(A, sort="tracking_number", limit=2,
                                                 offset=1)] == ["critical", "medium"]
    assert len(service.list_for(A, status="new")) == 3
    assert service.list_for(A, status="closed") == []
    for bad in ("entity_id", "(SELECT 1)", "-raw", "created_at;DROP TABLE incidents"):
        with pytest.raises(InvalidInput, match="sort must be one of created_at, -created_at"):
            service.list_for(A, sort=bad)
    for limit in (0, 501, 10**9):
        with pytest.raises(InvalidInput, match="limit must be between 1 and 500"):
            service.list_for(A, limit=limit)
    with pytest.raises(InvalidInput, match="status must be one of"):
        service.list_for(A, status="bogus")
    assert len(service.list_for(A, limit=500)) == 3


def test_observables_stored_per_entity(service: IncidentService, store: Store) -> None:
    shared = [{"type": "ipv4", "value": "198.51.100.7"},
              {"type": "domain", "value": "Malo.Example"},
              {"type": "ipv4", "value": "198.51.100.7"}]
    a1 = submit(service, A, observables=shared)["id"]
    b1 = submit(service, B, observables=shared[:1])["id"]
    view = add_update(service, A, a1, stage="update",
                      observables=[{"type": "ipv4", "value": "198.51.100.7"},
                                   {"type": "url", "value": "hxxp://malo[.]example/x"}])
    assert view["observables"] == [{"type": "ipv4", "value": "198.51.100.7"},
                                   {"type": "domain", "value": "malo.example"},
                                   {"type": "url", "value": "http://malo.example/x"}]
    with store.read() as conn:
        rows = {(r.incident_id, r.entity_id, r.type, r.value) for r in conn.execute(
            select(incident_observables).where(incident_observables.c.value == "198.51.100.7"))}
    assert rows == {(a1, "ent-a", "ipv4", "198.51.100.7"), (b1, "ent-b", "ipv4", "198.51.100.7")}


def test_evidence_through_the_service(service: IncidentService) -> None:
    incident = submit(service, A)["id"]
    with service.store.write() as conn:
        stored = service.add_evidence(conn, A, incident, filename="../../etc/cron.d/x",
                                      content_type="text/html", stream=io.BytesIO(b"<svg/>"),
                                      max_bytes=1024, request_id="req-9")
    assert stored["filename"] == "x" and stored["size"] == 6
    assert stored["incident_id"] == incident
    with pytest.raises(Exception, match="larger than 4 bytes"), service.store.write() as conn:
        service.add_evidence(conn, A, incident, filename="big.bin", content_type="",
                             stream=io.BytesIO(b"12345"), max_bytes=4)
    assert service.get(A, incident)["evidence"] == [
        {k: stored[k] for k in ("id", "sha256", "size", "filename")}]
    entry = audit_entries(service, "evidence.add")[0]
    assert entry.details == {"incident_id": incident, "sha256": stored["sha256"], "size": 6}


def test_attachments_in_a_report_become_evidence(service: IncidentService) -> None:
    view = submit(service, A, attachments=[
        {"filename": "nota.txt", "content_type": "text/plain", "data": b"rescate"}])
    assert [(e["filename"], e["size"]) for e in view["evidence"]] == [("nota.txt", 7)]


def test_concurrent_submissions_get_unique_consecutive_numbers(service: IncidentService) -> None:
    numbers: list[str] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            principal = A if index % 2 else B
            numbers.append(submit(service, principal, title=f"n{index}")["tracking_number"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    year = datetime.now(UTC).year
    assert sorted(numbers) == [f"INC-{year}-{n:06d}" for n in range(1, 9)]
    with service.store.read() as conn:
        assert audit.verify(conn) >= 8 + 2


def test_future_awareness_is_refused(service: IncidentService) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInput, match=r"awareness_at .* is in the future"):
        submit(service, A, awareness_at=tomorrow)
    with pytest.raises(InvalidInput, match=r"detected_at .* is in the future"):
        submit(service, A, detected_at=tomorrow, awareness_at=None)
    incident = submit(service, A)["id"]
    with pytest.raises(InvalidInput, match="in the future"):
        add_update(service, A, incident, stage="update", awareness_at=tomorrow, reason="x")
    # exercises run on scenario time and carry no clock
    assert submit(service, A, awareness_at=tomorrow, exercise_id="ex-1")["exercise_id"] == "ex-1"
    assert len(service.list_for(A)) == 2


def test_get_evidence_for_download(service: IncidentService) -> None:
    incident = submit(service, A)["id"]
    with service.store.write() as conn:
        stored = service.add_evidence(conn, A, incident, filename="page.html",
                                      content_type="text/plain", stream=io.BytesIO(b"<b>x"),
                                      max_bytes=1024)
    meta = service.get_evidence(ANALYST, incident, stored["id"])
    assert meta == {"id": stored["id"], "incident_id": incident, "sha256": stored["sha256"],
                    "size": 4, "filename": "page.html", "declared_type": "text/plain",
                    "content_type": "application/octet-stream"}
    with service.evidence.open(meta["sha256"]) as handle:
        assert handle.read() == b"<b>x"
    other = submit(service, B)["id"]
    for principal, incident_ref, evidence_ref in (
        (B, incident, stored["id"]), (B, other, stored["id"]),
        (A, incident, "../" + stored["sha256"]), (A, incident, stored["sha256"]),
    ):
        with pytest.raises(NotFound):
            service.get_evidence(principal, incident_ref, evidence_ref)


def test_due_reminders_once_per_stage_and_deadline(service: IncidentService) -> None:
    aware = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20)
    late = submit(service, A, awareness_at=aware.isoformat(), detected_at=aware.isoformat())
    submit(service, B, exercise_id="ex-9", awareness_at=aware.isoformat())
    ews = submit(service, B)  # January awareness: everything overdue, still open: progress
    reminders = service.due_reminders()
    by_incident = {(r["incident_id"], r["stage"]): r for r in reminders}
    assert set(by_incident) == {(ews["id"], "early-warning"), (ews["id"], "notification"),
                                (ews["id"], "progress")}
    assert {r["state"] for r in reminders} == {"overdue"}
    # the on-time early warning is met; its notification is 52 h away: not yet reminded
    soon = service.due_reminders(now=aware + timedelta(hours=60))
    assert [(r["incident_id"], r["stage"], r["state"]) for r in soon
            if r["incident_id"] == late["id"]] == [(late["id"], "notification", "due-soon")]
    key = next(r["key"] for r in soon if r["incident_id"] == late["id"])
    notification_due = aware + timedelta(hours=72)
    assert key == f"deadline:{late['id']}:notification:{notification_due:%Y%m%dT%H%M%SZ}"
    # asked again an hour later: the same key, so an outbox keyed on it sends it once
    again = service.due_reminders(now=aware + timedelta(hours=61))
    assert [r["key"] for r in again if r["incident_id"] == late["id"]] == [key]


@pytest.mark.parametrize(
    "extra",
    [{"entity_id": "ent-b"}, {"tlp_origin": "ent-a"}, {"created_by": "admin"},
     {"sha256": "0" * 64}, {"number": 1}, {"is_exercise": True}],
)
def test_update_refuses_server_owned_fields(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        IncidentUpdate.model_validate({"stage": "update", **extra})


def test_update_refuses_unknown_stage() -> None:
    with pytest.raises(ValidationError, match="'early-warning', 'notification'"):
        IncidentUpdate.model_validate({"stage": "draft"})


def test_staff_update_is_recorded_as_the_analyst(service: IncidentService, store: Store) -> None:
    incident = submit(service, A)["id"]
    add_update(service, ANALYST, incident, stage="intermediate", description="solicitado")
    with store.read() as conn:
        creators = conn.execute(select(incident_updates.c.created_by)
                                .order_by(incident_updates.c.number)).scalars().all()
    assert creators == ["entity:ent-a", "ana"]
