"""Alert triage on the real Suricata and Shadowserver samples: life cycle, bulk actions by
filter, groups, and the audit entry of every action."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from cases.services import audit
from cases.services.alert_filter import AlertFilter, parse_query
from cases.services.triage import TriageService, group_rows
from cases.store.tables import alerts, audit_log
from cases.store.tables_cases import alert_events
from pukara.core.errors import Conflict, InvalidInput, NotFound
from pukara.wiring import Services
from tests.cases.case_kit import ICMP, MUNTAHA, NMAP, SCANNER, alert_ids, built, ingest

__all__ = ["built"]
ANA = audit.Actor("ana")
IDS = AlertFilter(statuses=("new", "acknowledged"), classification="intrusion-attempts")


@pytest.fixture
def muntaha(built: Services, shared_data: Path) -> Services:
    result = ingest(built, shared_data / MUNTAHA, "suricata")
    assert (result.accepted, result.rejected) == (56, 0)
    return built


def _statuses(built: Services, ids: list[int]) -> list[str]:
    with built.store.read() as conn:
        query = select(alerts.c.status).where(alerts.c.id.in_(ids)).order_by(alerts.c.id)
        return list(conn.execute(query).scalars())


def test_the_50_nmap_alerts_fold_into_one_group(muntaha: Services) -> None:
    groups = {g.title: g for g in muntaha.triage.groups(IDS)}
    nmap = groups[NMAP]
    assert (len(nmap.alert_ids), nmap.events) == (1, 50)
    assert nmap.observable == f"ipv4:{SCANNER}"
    assert nmap.signature == NMAP and nmap.source == "suricata"
    assert set(groups) == {NMAP, ICMP, "FTP Connection Attempt", "Telnet Connection Attempt",
                           "Possible Metasploit Connection"}


def test_rows_of_different_hours_chain_into_one_group_within_the_window(
        muntaha: Services) -> None:
    # the two ICMP rows were stored apart (07:31 and 08:06 fall in different hour buckets)
    assert len(alert_ids(muntaha, ICMP)) == 2
    icmp = next(g for g in muntaha.triage.groups(IDS) if g.title == ICMP)
    assert (len(icmp.alert_ids), icmp.events) == (2, 6)
    narrow = TriageService(muntaha.store, window=timedelta(minutes=10))
    split = [g for g in narrow.groups(IDS) if g.title == ICMP]
    assert sorted(g.events for g in split) == [2, 4]


def test_acting_on_a_group_is_one_transaction_with_one_audit_entry(muntaha: Services) -> None:
    icmp = next(g for g in muntaha.triage.groups(IDS) if g.title == ICMP)
    changed = muntaha.triage.act_on_group(icmp.key, "acknowledged", ANA, selection=IDS)
    assert sorted(changed) == sorted(icmp.alert_ids)
    assert _statuses(muntaha, icmp.alert_ids) == ["acknowledged", "acknowledged"]
    with muntaha.store.read() as conn:
        events = conn.execute(select(alert_events.c.alert_id, alert_events.c.from_status)
                              .order_by(alert_events.c.alert_id)).all()
        entry = conn.execute(select(audit_log).where(
            audit_log.c.action == "alert.acknowledged")).one()
        assert audit.verify(conn) >= 1
    assert [tuple(e) for e in events] == [(i, "new") for i in sorted(icmp.alert_ids)]
    assert entry.actor == "ana" and entry.details["count"] == 2
    assert entry.before_hash == audit.digest([[i, "new"] for i in sorted(icmp.alert_ids)])


def test_bulk_dismiss_by_filter(muntaha: Services) -> None:
    selection = parse_query("status:new severity:info source:suricata")
    changed = muntaha.triage.dismiss(selection, "out-of-scope", ANA)
    assert len(changed) == 50, "56 rows, 6 of them IDS alerts (low), 50 flow/dns (info)"
    left = muntaha.alerts.list(selection=parse_query("status:new"))
    assert len(left) == 6 and {r["severity"] for r in left} == {"low"}


def test_dismissal_needs_a_reason(muntaha: Services) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        muntaha.triage.apply(AlertFilter(ids=tuple(alert_ids(muntaha, NMAP))), "dismissed",
                             ANA)


def test_dismissed_cannot_be_promoted_until_reopened(muntaha: Services) -> None:
    nmap = alert_ids(muntaha, NMAP)
    muntaha.triage.dismiss(AlertFilter(ids=tuple(nmap)), "false-positive", ANA)
    with pytest.raises(Conflict, match="reopen it first"):
        muntaha.cases.promote(AlertFilter(ids=tuple(nmap)), ANA)
    assert _statuses(muntaha, nmap) == ["dismissed"]
    muntaha.triage.reopen(AlertFilter(ids=tuple(nmap)), ANA)
    result = muntaha.cases.promote(AlertFilter(ids=tuple(nmap)), ANA)
    assert _statuses(muntaha, nmap) == ["promoted"] and result["alert_ids"] == nmap


def test_an_action_is_all_or_nothing(muntaha: Services) -> None:
    nmap, ftp = alert_ids(muntaha, NMAP)[0], alert_ids(muntaha, "FTP Connection Attempt")[0]
    muntaha.triage.dismiss(AlertFilter(ids=(ftp,)), "duplicate", ANA)
    with pytest.raises(Conflict, match=f"alert {ftp} is dismissed"):
        muntaha.triage.acknowledge(AlertFilter(ids=(nmap, ftp)), ANA)
    assert _statuses(muntaha, [nmap]) == ["new"] and _statuses(muntaha, [ftp]) == ["dismissed"]
    with pytest.raises(NotFound, match="no alert 999999"):
        muntaha.triage.acknowledge(AlertFilter(ids=(nmap, 999999)), ANA)


def test_a_promoted_alert_does_not_move_to_another_case(muntaha: Services) -> None:
    nmap = alert_ids(muntaha, NMAP)
    first = muntaha.cases.promote(AlertFilter(ids=tuple(nmap)), ANA)
    other = muntaha.cases.create({"title": "other"}, ANA)
    with pytest.raises(Conflict, match="merge the cases"):
        muntaha.cases.promote(AlertFilter(ids=tuple(nmap)), ANA, case_ref=other["number"])
    again = muntaha.cases.promote(AlertFilter(ids=tuple(nmap)), ANA, case_ref=first["number"])
    assert again["alert_ids"] == []


def test_query_errors_are_located() -> None:
    with pytest.raises(InvalidInput, match=r"query term 2 \('ransom'\)"):
        parse_query("status:new ransom")
    with pytest.raises(InvalidInput, match="query term 1: unknown severity 'hgh'"):
        parse_query("severity:>=hgh")
    with pytest.raises(InvalidInput, match="unknown status 'open'"):
        parse_query("status:open")
    assert parse_query("entity:minsa severity:>=high case:none") == AlertFilter(
        entity_id="minsa", min_severity=parse_query("severity:>=high").min_severity,
        unlinked=True)


def test_shadowserver_rows_group_per_affected_address(built: Services,
                                                      shared_data: Path) -> None:
    ingest(built, shared_data / "shadowserver/scan_ftp.csv", "shadowserver", entity_id="minsa")
    groups = built.triage.groups(parse_query("status:new entity:minsa"))
    assert sorted(g.observable or "" for g in groups) == ["ipv4:61.126.3.70",
                                                          "ipv4:62.48.156.65"]
    assert {g.title for g in groups} == {"Shadowserver: accessible FTP"}


def test_exercise_alerts_are_kept_apart_by_the_filter(built: Services,
                                                      shared_data: Path) -> None:
    ingest(built, shared_data / "shadowserver/scan_ftp.csv", "shadowserver",
           exercise_id="ex-2026-1")
    ingest(built, shared_data / "shadowserver/event4_sinkhole.csv", "shadowserver")
    with built.store.read() as conn:
        total = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
    assert total == 5
    assert len(built.alerts.list(selection=parse_query("exercise:exclude"))) == 3
    assert len(built.alerts.list(selection=parse_query("exercise:ex-2026-1"))) == 2
    assert len(built.triage.groups(AlertFilter(exercise="only"))) == 2


@dataclass
class _Row:
    """A constructed alert row with the columns group_rows reads."""

    id: int
    source: str
    title: str
    classification: str
    entity_id: str | None
    severity: str
    status: str
    first_seen: datetime
    last_seen: datetime
    count: int
    hit_count: int
    doc: str


_BASE = datetime(2026, 6, 12, tzinfo=UTC)
_rows = st.lists(st.tuples(st.sampled_from(["ET SCAN", "ET POLICY"]),
                           st.sampled_from(["10.0.0.1", "10.0.0.2", None]),
                           st.sampled_from(["minsa", None]),
                           st.integers(0, 6 * 3600), st.integers(1, 50),
                           st.sampled_from(["low", "high"])), max_size=60)


@given(_rows)
def test_groups_partition_the_alerts(specs: list[tuple[str, str | None, str | None, int, int,
                                                       str]]) -> None:
    rows = []
    for number, (signature, src, entity, offset, count, severity) in enumerate(
            sorted(specs, key=lambda s: s[3]), start=1):
        seen = _BASE + timedelta(seconds=offset)
        observables = [{"type": "ipv4", "value": src, "role": "src"}] if src else []
        doc = json.dumps({"signature": signature, "observables": observables})
        rows.append(_Row(number, "suricata", signature, "intrusion-attempts/ids-alert",
                         entity, severity, "new", seen, seen, count, 0, doc))
    groups = group_rows(rows, timedelta(hours=1))
    assert sorted(i for g in groups for i in g.alert_ids) == [r.id for r in rows]
    assert sum(g.events for g in groups) == sum(r.count for r in rows)
    for group in groups:
        members = [r for r in rows if r.id in set(group.alert_ids)]
        families = {(r.title, r.entity_id, str(json.loads(r.doc)["observables"]))
                    for r in members}
        assert len(families) == 1
        gaps = [b.first_seen - a.last_seen for a, b in itertools.pairwise(members)]
        assert all(gap <= timedelta(hours=1) for gap in gaps)
        assert group.severity == max((r.severity for r in members),
                                     key=["low", "high"].index)
