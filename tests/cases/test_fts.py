"""SQLite FTS5 search over the real Suricata sample and the shared case: phrases, fields,
negation, visibility per principal (SECURITY B1, B10), triggers keeping the index in sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from cases.search.fts import FtsSearch, install_fts
from cases.services.identity import Principal, Role
from cases.store.tables import alerts
from pukara.cli import main
from pukara.wiring import Services
from tests.cases.case_kit import MUNTAHA, NMAP, ingest
from tests.cases.fts_kit import check_integrity as check_alert_index
from tests.cases.sharing_kit import ANALYST, SharedCase, build_case, make_services

MINSA = Principal(Role.REPORTER, 1, entity_id="minsa")
BCRP = Principal(Role.REPORTER, 2, entity_id="bcrp")
ANALYST_PRINCIPAL = Principal(Role.ANALYST, 3, user="ana")


@pytest.fixture
def indexed(pukara_home: Path, shared_data: Path) -> Iterator[SharedCase]:
    """FTS installed by the store on an empty database (a second install is a no-op), then
    the shared case (minsa) and the same Suricata sample ingested for bcrp (its own alerts:
    the fingerprint includes the entity)."""
    built = make_services(pukara_home)
    with built.store.write() as conn:
        assert install_fts(conn) is False
    case = build_case(built, shared_data)
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    try:
        yield case
    finally:
        built.close()


def titles(result: dict[str, list[dict[str, object]]]) -> list[object]:
    return [a["title"] for a in result["alerts"]]


def check_integrity(built: Services) -> None:
    """The alert index against its rows (tests/cases/fts_kit.py), the case index's structure."""
    check_alert_index(built)
    with built.store.write() as conn:
        conn.exec_driver_sql("INSERT INTO cases_fts(cases_fts) VALUES ('integrity-check')")


def test_phrase_from_the_real_sample(indexed: SharedCase) -> None:
    search = FtsSearch(indexed.built.store)
    found = search.search('"Nmap SYN Port Scan"', ANALYST_PRINCIPAL)
    assert titles(found) == [NMAP, NMAP]
    assert sorted(a["entity_id"] for a in found["alerts"]) == ["bcrp", "minsa"]
    assert [c["number"] for c in found["cases"]] == [indexed.number]
    assert found["cases"][0]["entity_ids"] == ["minsa"]
    assert titles(search.search('"Port Nmap"', ANALYST_PRINCIPAL)) == []


def test_fields_and_words(indexed: SharedCase) -> None:
    search = FtsSearch(indexed.built.store)
    found = search.search("entity:minsa observable:192.168.137.1 severity:>=low", None,
                          limit=100)
    assert sorted(titles(found)) == [
        "FTP Connection Attempt", "ICMP Ping Detected", "ICMP Ping Detected", NMAP,
        "Possible Metasploit Connection", "Telnet Connection Attempt"]
    negated = search.search("entity:minsa severity:>=low -nmap -metasploit", None)
    assert sorted(titles(negated)) == ["FTP Connection Attempt", "ICMP Ping Detected",
                                       "ICMP Ping Detected", "Telnet Connection Attempt"]
    assert titles(search.search(f"case:{indexed.number}", None)) == [
        "Possible Metasploit Connection", NMAP]
    assert [c["number"] for c in search.search(
        "observable:0749bae92ca336a02c83d126e04ec628", None)["cases"]] == [indexed.number]


def test_an_entity_sees_only_its_own(indexed: SharedCase) -> None:
    search = FtsSearch(indexed.built.store)
    everything = search.search("", None, limit=1000)["alerts"]
    mine = search.search("", MINSA, limit=1000)
    theirs = search.search("", BCRP, limit=1000)
    assert {a["entity_id"] for a in mine["alerts"]} == {"minsa"}
    assert {a["entity_id"] for a in theirs["alerts"]} == {"bcrp"}
    assert len(mine["alerts"]) == len(theirs["alerts"]) == 56
    assert len(everything) == 112
    assert mine["cases"] == theirs["cases"] == []


@pytest.mark.parametrize("text", ["entity_id:*", "_id:*", "entity:minsa", "OR entity:minsa",
                                  "*", "Metasploit OR entity_id:minsa", '"" OR ""'])
def test_query_syntax_never_widens(indexed: SharedCase, text: str) -> None:
    found = FtsSearch(indexed.built.store).search(text, BCRP, limit=1000)
    assert all(a["entity_id"] == "bcrp" for a in found["alerts"])
    assert found["cases"] == []
    if "entity" in text:
        assert found["alerts"] == []
    if text == "*":
        assert len(found["alerts"]) == 56


def test_triggers_follow_changes(indexed: SharedCase) -> None:
    built = indexed.built
    search = FtsSearch(built.store)
    built.cases.update(indexed.case_id, {"title": "Ransomware Xorist at MINSA"}, ANALYST)
    assert [c["number"] for c in search.search("xorist", None)["cases"]] == [indexed.number]
    assert search.search("nmap", None)["cases"] == []
    with built.store.write() as conn:
        conn.execute(update(alerts).where(alerts.c.id == indexed.alert_ids[0])
                     .values(title="Renamed scan"))
    assert titles(search.search('"Renamed scan"', MINSA)) == ["Renamed scan"]
    with built.store.write() as conn:
        conn.execute(delete(alerts).where(alerts.c.title == "Renamed scan"))
    assert titles(search.search("renamed", None)) == []
    check_integrity(built)


def test_installing_late_indexes_what_is_there(pukara_home: Path, shared_data: Path) -> None:
    built = make_services(pukara_home)
    try:
        case = build_case(built, shared_data)
        with built.store.write() as conn:
            # a store from before FTS: the index tables do not exist yet
            conn.exec_driver_sql("DROP TABLE alerts_fts")
            conn.exec_driver_sql("DROP TABLE cases_fts")
            assert install_fts(conn) is True
        with built.store.write() as conn:
            assert install_fts(conn) is False
        found = FtsSearch(built.store).search('"Nmap SYN Port Scan"', MINSA)
        assert titles(found) == [NMAP]
        assert [c["number"] for c in FtsSearch(built.store).search("nmap", None)["cases"]] == [
            case.number]
        check_integrity(built)
    finally:
        built.close()


def test_cli_search_json(pukara_home: Path, shared_data: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    built = make_services(pukara_home)
    case = build_case(built, shared_data)
    built.close()
    assert main(["search", '"Nmap SYN Port Scan"', "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert set(found) == {"alerts", "cases"}
    assert [a["title"] for a in found["alerts"]] == [NMAP]
    assert [c["number"] for c in found["cases"]] == [case.number]
    assert main(["search", "title:nmap", "--json"]) == 1
    assert "unknown field 'title'" in capsys.readouterr().err


def test_postgresql_fallback(pukara_home: Path, shared_data: Path, pg_url: str) -> None:
    """The same searches on PostgreSQL (ILIKE over the same fields), same visibility."""
    built = make_services(pukara_home, pg_url)
    try:
        case = build_case(built, shared_data)
        ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
        search = FtsSearch(built.store)
        found = search.search('"Nmap SYN Port Scan"', ANALYST_PRINCIPAL)
        assert titles(found) == [NMAP, NMAP]
        assert [c["number"] for c in found["cases"]] == [case.number]
        assert titles(search.search('"Nmap SYN Port Scan"', BCRP)) == [NMAP]
        assert search.search("entity_id:* OR entity:minsa", BCRP) == {"alerts": [],
                                                                       "cases": []}
        assert [c["number"] for c in search.search(
            "observable:0749bae92ca336a02c83d126e04ec628", None)["cases"]] == [case.number]
        assert len(search.search("entity:minsa observable:192.168.137.1 severity:>=low", None,
                                 limit=100)["alerts"]) == 6
    finally:
        built.close()
