"""Every shipped playbook, end to end, on a case built from a real Shadowserver sample.

The sample goes through the live pipeline, its alerts are promoted to a case (reclassified
by the analyst where the sample's own class is not the playbook's), the playbook starts by
itself from ``on_case_opened`` (its ``when`` matched), and the driver completes tasks and
gives approvals through the service API. ``export-misp`` talks to a MISP stand-in whose first
push fails: the step retries after its persisted backoff and succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.sharing.misp_export import event_uuid
from playbooks.loader import library
from playbooks.tables import outbox, playbook_steps
from pukara.core.errors import Conflict, PermissionDenied
from tests.playbooks.kit import (
    ANALYST,
    ANALYST_PRINCIPAL,
    COORDINATOR,
    Driver,
    FlakyMisp,
    built,  # noqa: F401 - fixture
    make_services,
    open_case,
    states,
)


@dataclass(frozen=True)
class Scenario:
    """A playbook, the real sample its case comes from, and what must happen."""

    sample: str
    classification: str | None
    ip: str
    skipped: frozenset[str]
    approvals: tuple[str, ...]
    severity: str


SCENARIOS = {
    "ransomware": Scenario("sandbox_conn.csv", "malicious-code/ransomware", "40.119.6.228",
                           frozenset({"warn-sector"}), ("escalate",), "high"),
    "phishing": Scenario("phish_url.csv", None, "172.245.0.0", frozenset({"no-reset"}),
                         ("broad-campaign",), "high"),
    "ddos": Scenario("event4_honeypot_ddos_target.csv", None, "192.168.0.1",
                     frozenset({"no-warning"}), ("approve-warning",), "high"),
    "web-defacement": Scenario("compromised_website.csv", "intrusions/defacement",
                               "203.0.113.1", frozenset(), ("restore",), "high"),
    "personal-data-breach": Scenario(
        "scan_elasticsearch.csv", "information-content-security/unauthorised-information-access",
        "192.168.0.1", frozenset({"approve-subject-notice", "subject-notice"}), (), "medium"),
    "compromised-account": Scenario(
        "event4_honeypot_brute_force.csv", "intrusions/unprivileged-account-compromise",
        "141.98.1.2", frozenset({"raise-severity"}), ("close-approval",), "medium"),
    "malware-infection": Scenario("event4_sinkhole.csv", None, "190.113.1.2",
                                  frozenset({"escalate"}), (), "high"),
    "vulnerability-exploitation": Scenario("scan_http_vulnerable.csv", None, "192.168.0.1",
                                           frozenset({"no-advisory"}), ("approve-advisory",),
                                           "high"),
}


def test_every_shipped_playbook_has_a_scenario() -> None:
    assert sorted(SCENARIOS) == sorted(library())
    assert len(SCENARIOS) >= 8


@pytest.mark.parametrize("playbook_id", sorted(SCENARIOS))
def test_playbook_end_to_end(built, shared_data: Path, playbook_id: str) -> None:  # noqa: F811
    scenario = SCENARIOS[playbook_id]
    misp = FlakyMisp(failures=1)
    built.playbooks.tools.misp_client = misp
    case_id = open_case(built, shared_data / "shadowserver" / scenario.sample,
                        classification=scenario.classification)

    assert len(built.playbooks.on_case_opened(case_id)) == 1
    driver = Driver(built, case_id)
    assert [r["playbook"] for r in built.playbooks.status(case_id)] == [playbook_id]
    driver.drive()

    run = driver.run(playbook_id)
    assert run["state"] == "done"
    final = states(run)
    assert {s for s, v in final.items() if v == "skipped"} == scenario.skipped
    assert {s for s, v in final.items() if v != "skipped"} == set(final) - scenario.skipped
    assert all(v == "done" for s, v in final.items() if s not in scenario.skipped)
    assert tuple(driver.approved) == scenario.approvals
    for step in run["steps"]:
        if step["id"] in scenario.approvals:
            assert step["decided_by"] == "cora"
    case = built.cases.get(case_id)
    assert case["severity"] == scenario.severity
    assert ("ipv4", scenario.ip) in {(o["type"], o["value"]) for o in case["observables"]}
    task_steps = [s for s in run["steps"] if s["kind"] == "task" and s["state"] == "done"]
    assert len(case["tasks"]) == len(task_steps)
    assert {t["id"] for t in case["tasks"]} == {s["task_id"] for s in task_steps}
    _check_misp(run, misp, case_id, scenario.ip, case)
    _check_timeline(case, run)


def _check_misp(run: dict, misp: FlakyMisp, case_id: str, ip: str, case: dict) -> None:
    share = [s for s in run["steps"] if s["id"] == "share"]
    if not share:
        assert misp.calls == 0
        return
    step = share[0]
    assert step["attempts"] == 2
    assert step["output"]["pushed"] is True
    assert step["output"]["event_uuid"] == event_uuid(case_id)
    event = misp.events[event_uuid(case_id)]
    assert event.info == f"{case['number']}: {case['title']}"
    assert ip in {attribute.value for attribute in event.attributes}
    assert any("ConnectionError" in e["text"] and "attempt 1 failed" in e["text"]
               for e in case["timeline"] if e["action"] == "playbook.step")


def _check_timeline(case: dict, run: dict) -> None:
    actions = [e["action"] for e in case["timeline"]]
    assert actions.count("playbook.start") == 1
    assert actions.count("playbook.done") == 1
    step_entries = [e for e in case["timeline"] if e["action"] == "playbook.step"
                    and e["details"]["run_id"] == run["run_id"]]
    done = {e["details"]["step_id"] for e in step_entries if e["details"]["state"] == "done"}
    assert done == {s["id"] for s in run["steps"] if s["state"] == "done"}


def test_ransomware_notifications_in_the_outbox(built, shared_data: Path) -> None:  # noqa: F811
    case_id = open_case(built, shared_data / "shadowserver" / "sandbox_conn.csv",
                        classification="malicious-code/ransomware")
    built.playbooks.on_case_opened(case_id)
    Driver(built, case_id).drive()
    with built.store.read() as conn:
        rows = conn.execute(select(outbox.c.kind, outbox.c.channel, outbox.c.recipient,
                                   outbox.c.subject, outbox.c.language)
                            .order_by(outbox.c.id)).all()
    assert [(r.kind, r.channel, r.recipient) for r in rows] == [
        ("entity-notice", "inbox", "minsa"), ("entity-notice", "email", "csirt@minsa.gob.pe"),
        ("report-update", "inbox", "minsa"), ("report-update", "email", "csirt@minsa.gob.pe")]
    assert {r.language for r in rows} == {"es"}
    assert rows[2].subject.endswith("envíe la notificación de incidente de 72 h del caso "
                                     + built.cases.get(case_id)["number"])


def test_approval_needs_a_coordinator_and_is_audited(built, shared_data: Path) -> None:  # noqa: F811
    case_id = open_case(built, shared_data / "shadowserver" / "phish_url.csv")
    (run_id,) = built.playbooks.on_case_opened(case_id)
    driver = Driver(built, case_id)
    for _ in range(5):
        driver.finish_tasks()
        built.playbooks.tick(driver.now)
    assert states(driver.run("phishing"))["broad-campaign"] == "waiting"
    with pytest.raises(PermissionDenied, match="coordinator"):
        built.playbooks.approve(run_id, "broad-campaign", ANALYST_PRINCIPAL)
    with pytest.raises(Conflict, match="not an approval"):
        built.playbooks.approve(run_id, "takedown", COORDINATOR)
    built.playbooks.approve(run_id, "broad-campaign", COORDINATOR)
    with pytest.raises(Conflict, match="not waiting"):
        built.playbooks.approve(run_id, "broad-campaign", COORDINATOR)
    with built.store.read() as conn:
        from cases.store.tables import audit_log
        entries = conn.execute(select(audit_log.c.actor, audit_log.c.details).where(
            audit_log.c.action == "playbook.approve")).all()
    assert [(e.actor, e.details["step_id"]) for e in entries] == [("cora", "broad-campaign")]


def test_failed_action_waits_for_a_person_then_retries(built, shared_data: Path) -> None:  # noqa: F811
    misp = FlakyMisp(failures=10)
    built.playbooks.tools.misp_client = misp
    case_id = open_case(built, shared_data / "shadowserver" / "compromised_website.csv",
                        classification="intrusions/defacement")
    (run_id,) = built.playbooks.on_case_opened(case_id)
    driver = Driver(built, case_id)
    driver.drive(rounds=12, step=timedelta(days=1))
    share = next(s for s in driver.run("web-defacement")["steps"] if s["id"] == "share")
    assert (share["state"], share["attempts"]) == ("failed", 3)
    assert "MISP push failed: ConnectionError" in share["error"]
    assert driver.run("web-defacement")["state"] == "running"
    misp.failures = 0
    assert built.playbooks.retry(run_id, "share", ANALYST, now=driver.now) == "done"
    share = next(s for s in driver.run("web-defacement")["steps"] if s["id"] == "share")
    assert (share["state"], share["attempts"], share["output"]["pushed"]) == ("done", 1, True)
    with pytest.raises(Conflict, match="has not failed"):
        built.playbooks.retry(run_id, "share", ANALYST)


def test_restart_in_the_middle_resumes(pukara_home: Path, shared_data: Path) -> None:
    first = make_services()
    from tests.playbooks.kit import add_entities

    add_entities(first)
    case_id = open_case(first, shared_data / "shadowserver" / "sandbox_conn.csv",
                        classification="malicious-code/ransomware")
    (run_id,) = first.playbooks.on_case_opened(case_id)
    Driver(first, case_id).finish_tasks()
    first.playbooks.tick()
    assert states(first.playbooks.run_view(run_id))["escalate"] == "waiting"
    first.close()

    second = make_services()
    try:
        second.playbooks.tick()
        second.playbooks.tick()
        assert states(second.playbooks.run_view(run_id))["escalate"] == "waiting"
        driver = Driver(second, case_id)
        driver.drive()
        run = second.playbooks.run_view(run_id)
        assert run["state"] == "done"
        assert driver.approved == ["escalate"]
        case = second.cases.get(case_id)
        texts = [e["text"] for e in case["timeline"]]
        assert sum("tag added: ransomware" in t for t in texts) == 1
        assert len(case["tasks"]) == 4
        with second.store.read() as conn:
            queued = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            steps = conn.execute(select(func.count()).select_from(playbook_steps).where(
                playbook_steps.c.run_id == run_id)).scalar_one()
        assert (queued, steps) == (4, 15)
    finally:
        second.close()


def test_start_by_hand_and_not_twice(built, shared_data: Path) -> None:  # noqa: F811
    case_id = open_case(built, shared_data / "shadowserver" / "event4_sinkhole.csv")
    run_id = built.playbooks.start("ddos", case_id, ANALYST)
    assert built.playbooks.run_view(run_id)["playbook"] == "ddos"
    with pytest.raises(Conflict, match="already runs"):
        built.playbooks.start("ddos", case_id, ANALYST)
    assert built.playbooks.on_case_opened(case_id) != []
    assert [r["playbook"] for r in built.playbooks.status(case_id)] == [
        "ddos", "malware-infection"]
    assert built.playbooks.on_case_opened(case_id) == []


def test_case_opened_on_an_entity_report_is_told_once(built, shared_data: Path) -> None:  # noqa: F811
    from cases.services.identity import Principal, Role
    from collectors.sources.files import FileSource
    from tests.playbooks.kit import MINSA_MAIL

    with FileSource().open_report(shared_data / "email" / "mail_3.eml", entity_id="minsa",
                                  fmt="eml") as report:
        assert built.pipeline.ingest(report).accepted == 1
    [case] = built.cases.list()
    view = built.cases.get(case["id"])
    [incident] = view["incidents"]
    assert built.playbooks.on_case_opened(case["id"]) == []
    assert built.playbooks.on_case_opened(case["id"]) == []
    with built.store.read() as conn:
        rows = conn.execute(select(outbox.c.kind, outbox.c.channel, outbox.c.recipient)
                            .order_by(outbox.c.id)).all()
    assert [tuple(r) for r in rows] == [("case-opened", "inbox", "minsa"),
                                        ("case-opened", "email", MINSA_MAIL)]
    built.notifications.worker.run_once()
    [message] = built.notifications.outbox.inbox_for(Principal(Role.REPORTER, 1,
                                                               entity_id="minsa"))
    assert message["subject"] == (f"CSIRT: caso {case['number']} abierto sobre su reporte "
                                  f"{incident['tracking_number']}").replace(
        "CSIRT", built.settings.center_name)
    assert f"Título: {case['title']}" in message["body"]


def test_outside_action_left_running_by_a_dead_process_is_run_again(
        built, shared_data: Path) -> None:  # noqa: F811
    from datetime import datetime

    from sqlalchemy import update

    from playbooks.engine import STALE_RUNNING

    misp = FlakyMisp(failures=0)
    built.playbooks.tools.misp_client = misp
    case_id = open_case(built, shared_data / "shadowserver" / "compromised_website.csv",
                        classification="intrusions/defacement")
    (run_id,) = built.playbooks.on_case_opened(case_id)
    driver = Driver(built, case_id)
    driver.finish_tasks()
    built.playbooks.tick(driver.now)
    driver.finish_tasks()
    built.playbooks.tick(driver.now)
    crashed_at: datetime = driver.now
    with built.store.write() as conn:  # the state a process leaves when killed mid-push
        conn.execute(update(playbook_steps).where(
            playbook_steps.c.run_id == run_id, playbook_steps.c.step_id == "restore").values(
            state="done"))
        conn.execute(update(playbook_steps).where(
            playbook_steps.c.run_id == run_id, playbook_steps.c.step_id == "share").values(
            state="running", attempts=1, updated_at=crashed_at))
    assert built.playbooks.tick(crashed_at + STALE_RUNNING / 2) == 1
    assert states(built.playbooks.run_view(run_id))["share"] == "running"
    assert built.playbooks.tick(crashed_at + STALE_RUNNING) == 0
    share = next(s for s in built.playbooks.run_view(run_id)["steps"] if s["id"] == "share")
    assert (share["state"], share["attempts"], share["output"]["pushed"]) == ("done", 2, True)
    assert list(misp.events) == [event_uuid(case_id)]


def test_closing_the_case_cancels_its_runs(built, shared_data: Path) -> None:  # noqa: F811
    case_id = open_case(built, shared_data / "shadowserver" / "phish_url.csv")
    (run_id,) = built.playbooks.on_case_opened(case_id)
    built.cases.close(case_id, "true-positive", "phishing site taken down", ANALYST)
    assert built.playbooks.tick() == 0
    assert built.playbooks.run_view(run_id)["state"] == "cancelled"
    actions = [e["action"] for e in built.cases.get(case_id)["timeline"]]
    assert actions.count("playbook.cancel") == 1


def test_typed_inputs_reach_the_actions(built, shared_data: Path) -> None:  # noqa: F811
    from playbooks.loader import load_text
    from pukara.core.errors import InvalidInput

    built.playbooks.playbooks["labelled"] = load_text(
        "id: labelled\ntitle: Labelled\nversion: 2\nauto_start: false\n"
        "inputs:\n  - {name: label, type: string}\n  - {name: level, default: critical}\n"
        "steps:\n"
        "  - id: tag\n    name: Tag\n    phase: detection-analysis\n"
        "    action: {name: add-tag, with: {tag: 'campaign:${inputs.label}'}}\n"
        "  - id: raise\n    name: Raise\n    phase: containment\n    needs: [tag]\n"
        "    action: {name: set-severity, with: {level: '${inputs.level}'}}\n")
    case_id = open_case(built, shared_data / "shadowserver" / "phish_url.csv")
    assert built.playbooks.matching(case_id)[0].id == "phishing"
    with pytest.raises(InvalidInput, match="needs input 'label'"):
        built.playbooks.start("labelled", case_id, ANALYST)
    with pytest.raises(InvalidInput, match="has no input 'colour'"):
        built.playbooks.start("labelled", case_id, ANALYST, inputs={"label": "x", "colour": "r"})
    run_id = built.playbooks.start("labelled", case_id, ANALYST, inputs={"label": "ta505"})
    view = built.playbooks.run_view(run_id)
    assert (view["state"], view["inputs"]) == ("done", {"label": "ta505", "level": "critical"})
    case = built.cases.get(case_id)
    assert (case["tags"], case["severity"]) == (["campaign:ta505"], "critical")


def test_two_engines_ticking_together_run_each_step_once(built, shared_data: Path) -> None:  # noqa: F811
    import threading
    from collections import Counter

    from playbooks.runs import insert_run
    from pukara.core.schema import utcnow

    case_id = open_case(built, shared_data / "shadowserver" / "event4_sinkhole.csv")
    playbook = built.playbooks.playbooks["ransomware"]
    with built.store.write() as conn:
        run_id = insert_run(conn, playbook, case_id, ANALYST, now=utcnow(), inputs={})
    other = make_services()
    try:
        barrier = threading.Barrier(2)

        def tick(engine) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            engine.tick()

        threads = [threading.Thread(target=tick, args=(e,))
                   for e in (built.playbooks, other.playbooks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    entries = [e for e in built.cases.get(case_id)["timeline"] if e["action"] == "playbook.step"]
    done = Counter(e["details"]["step_id"] for e in entries if e["details"]["state"] == "done")
    assert done == Counter({"tag-case": 1, "raise-severity": 1, "enrich": 1,
                            "scan-evidence": 1, "ask-isolation": 1})
    waiting = Counter(e["details"]["step_id"] for e in entries
                      if e["details"]["state"] == "waiting")
    assert waiting == Counter({"scope": 1})
    assert len(built.tasks.list(case_id)) == 1
    with built.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 2
    assert states(built.playbooks.run_view(run_id))["escalate"] == "pending"


def test_advisory_draft_is_publishable(built, shared_data: Path) -> None:  # noqa: F811
    from cases.services.advisories import AdvisoryService

    case_id = open_case(built, shared_data / "shadowserver" / "scan_http_vulnerable.csv")
    built.playbooks.on_case_opened(case_id)
    Driver(built, case_id).drive()
    run = Driver(built, case_id).run("vulnerability-exploitation")
    draft = next(s for s in run["steps"] if s["id"] == "draft-advisory")["output"]["draft"]
    number = built.cases.get(case_id)["number"]
    assert draft["title"] == f"Actively exposed vulnerability in constituent systems ({number})"
    assert (draft["tlp"], draft["sectors"]) == ("amber", ["health"])
    assert {"type": "ipv4", "value": "192.168.0.1", "role": None} in draft["indicators"]
    published = AdvisoryService(built.store).publish(draft, ANALYST)
    assert (published["title"], published["tlp"]) == (draft["title"], "amber")


def test_transactional_action_retried_then_failed_then_retried_by_hand(
        built, shared_data: Path) -> None:  # noqa: F811
    from tests.playbooks.kit import MINSA_MAIL

    case_id = open_case(built, shared_data / "shadowserver" / "sandbox_conn.csv",
                        classification="malicious-code/ransomware", entity_id=None)
    assert built.cases.get(case_id)["entity_ids"] == []
    (run_id,) = built.playbooks.on_case_opened(case_id)
    driver = Driver(built, case_id)
    ask = next(s for s in built.playbooks.run_view(run_id)["steps"] if s["id"] == "ask-isolation")
    assert (ask["state"], ask["attempts"]) == ("pending", 1)
    assert ask["error"] == "ActionFailed: the case has no entity to write to"
    assert ask["next_attempt_at"] is not None
    for _ in range(2):
        driver.now += timedelta(hours=1)
        built.playbooks.tick(driver.now)
    ask = next(s for s in built.playbooks.run_view(run_id)["steps"] if s["id"] == "ask-isolation")
    assert (ask["state"], ask["attempts"]) == ("failed", 3)
    built.cases.update(case_id, {"add_entities": ["minsa"]}, ANALYST)
    built.playbooks.retry(run_id, "ask-isolation", ANALYST, now=driver.now)
    ask = next(s for s in built.playbooks.run_view(run_id)["steps"] if s["id"] == "ask-isolation")
    assert (ask["state"], ask["attempts"], ask["error"]) == ("done", 1, None)
    with built.store.read() as conn:
        rows = conn.execute(select(outbox.c.recipient).order_by(outbox.c.id)).scalars().all()
    assert rows == ["minsa", MINSA_MAIL]
