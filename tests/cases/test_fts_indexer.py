"""The lagging FTS5 alert indexer on the real Suricata sample: ingest never indexes, a search
catches up first, changes before and after indexing, deletes that free the newest id,
upgrading a store indexed by the old insert trigger, bounded batches, FTS5 integrity after a
mixed sequence (checked against a word scan of the same rows too)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from cases.search.fts import FtsSearch, alert_select, install_fts
from cases.search.fts_indexer import (
    ALERT_COLUMNS,
    ALERT_OBSERVABLES,
    catch_up,
    index_pending,
    watermark,
)
from cases.search.query import parse
from cases.services.identity import Principal, Role
from cases.store.tables import alerts
from pukara.core.errors import StoreError
from pukara.wiring import Services
from pukara.workers import BackgroundWorkers
from tests.cases.case_kit import ICMP, MUNTAHA, NMAP, alert_ids, ingest
from tests.cases.fts_kit import check_integrity
from tests.cases.sharing_kit import METASPLOIT, build_case, make_services
from tui.client.base import AlertQuery
from tui.client.local import LocalClient

MINSA = Principal(Role.REPORTER, 1, entity_id="minsa")
SAMPLE_ROWS = 56
WORDS = ("nmap", "icmp", "telnet", "ftp", "metasploit", "renamed", "zerologon", "minsa",
         "bcrp", "flow", "scan")


@pytest.fixture
def built(pukara_home: Path) -> Iterator[Services]:
    services = make_services(pukara_home)
    try:
        yield services
    finally:
        services.close()


def newest_and_mark(built: Services) -> tuple[int, int]:
    with built.store.read() as conn:
        newest = conn.execute(select(func.coalesce(func.max(alerts.c.id), 0))).scalar_one()
        return int(newest), watermark(conn)


def matched(built: Services, word: str) -> set[int]:
    """The rowids ``alerts_fts`` itself returns for one word (no watermark, no catch-up)."""
    with built.store.read() as conn:
        found = conn.exec_driver_sql("SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH ?",
                                     (f'"{word}"',))
        return set(found.scalars())


def scanned(built: Services, word: str) -> set[int]:
    """The alerts whose indexed fields hold ``word`` as a token, read from the rows."""
    with built.store.read() as conn:
        rows = conn.exec_driver_sql(f"SELECT rid, {ALERT_COLUMNS} FROM alerts_fts_source")
        return {row[0] for row in rows
                if word in re.findall(r"[^\W_]+", " ".join(map(str, row[1:])).lower())}


def searched(built: Services, text: str) -> set[int]:
    found = FtsSearch(built.store).search(text, None, limit=1000)["alerts"]
    return {int(a["id"]) for a in found}


def rename(built: Services, alert_id: int, title: str) -> None:
    """A new title, in the row and in the document's signature (both are indexed)."""
    with built.store.write() as conn:
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
            title=title, doc=func.json_set(alerts.c.doc, "$.signature", title)))


def triggers(built: Services) -> dict[str, str]:
    with built.store.read() as conn:
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = "
                                    "'trigger' AND name LIKE 'alerts_fts%'")
        return {row.name: row.sql for row in rows}


def test_ingest_leaves_indexing_to_the_search(built: Services, shared_data: Path) -> None:
    assert sorted(triggers(built)) == ["alerts_fts_ad", "alerts_fts_au"]
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    assert newest_and_mark(built) == (SAMPLE_ROWS, 0)
    assert matched(built, "nmap") == set()
    found = FtsSearch(built.store).search('"Nmap SYN Port Scan"', MINSA)
    assert [a["title"] for a in found["alerts"]] == [NMAP]
    assert newest_and_mark(built) == (SAMPLE_ROWS, SAMPLE_ROWS)
    check_integrity(built)


def test_changed_before_indexing_is_found_by_its_new_values(built: Services,
                                                           shared_data: Path) -> None:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    [nmap] = alert_ids(built, NMAP)
    [metasploit] = alert_ids(built, METASPLOIT)
    with built.store.read() as conn:
        doc = conn.execute(select(alerts.c.doc).where(alerts.c.id == metasploit)).scalar_one()
    addresses = [o["value"] for o in json.loads(doc)["observables"]]
    assert addresses
    rename(built, nmap, "Renamed scan")
    with built.store.write() as conn:
        conn.execute(update(alerts).where(alerts.c.id == metasploit).values(
            doc=func.json_set(alerts.c.doc, "$.observables", func.json("[]"))))
    assert newest_and_mark(built) == (SAMPLE_ROWS, 0)
    assert searched(built, '"Renamed scan"') == {nmap}
    assert searched(built, '"Nmap SYN Port Scan"') & {nmap} == set()
    for address in addresses:
        found = searched(built, f"observable:{address}")
        assert found and metasploit not in found
    assert searched(built, "metasploit") == {metasploit}
    check_integrity(built)


def test_indexed_rows_follow_updates_and_deletes(built: Services, shared_data: Path) -> None:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    assert catch_up(built.store) == SAMPLE_ROWS
    [nmap] = alert_ids(built, NMAP)
    rename(built, nmap, "Renamed scan")
    assert searched(built, "renamed") == {nmap}
    assert searched(built, "nmap") == set()
    with built.store.write() as conn:
        conn.execute(delete(alerts).where(alerts.c.id == nmap))
    assert searched(built, "renamed") == set()
    check_integrity(built)
    # deleting the newest row frees its id for the next insert: the watermark steps back
    assert nmap < SAMPLE_ROWS - 1
    with built.store.write() as conn:
        conn.execute(delete(alerts).where(alerts.c.id == SAMPLE_ROWS))
    assert newest_and_mark(built) == (SAMPLE_ROWS - 1, SAMPLE_ROWS - 1)
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    assert newest_and_mark(built) == (2 * SAMPLE_ROWS - 1, SAMPLE_ROWS - 1)
    assert searched(built, "bcrp") == set(range(SAMPLE_ROWS, 2 * SAMPLE_ROWS))
    with built.store.write() as conn:
        conn.execute(update(alerts).where(alerts.c.id == SAMPLE_ROWS).values(title="Again"))
    assert searched(built, "again") == {SAMPLE_ROWS}
    check_integrity(built)


def _old_triggers() -> list[str]:
    """The synchronous design, written out by hand: every insert indexed in the write."""
    def values(row: str) -> str:
        return (f"{row}.id, {row}.title, {ALERT_OBSERVABLES.format(row=row)}, "
                f"coalesce(json_extract({row}.doc, '$.signature'), ''), {row}.classification, "
                f"coalesce({row}.entity_id, '')")
    insert = f"INSERT INTO alerts_fts(rowid, {ALERT_COLUMNS}) SELECT {values('new')}"
    remove = (f"INSERT INTO alerts_fts(alerts_fts, rowid, {ALERT_COLUMNS}) "
              f"SELECT 'delete', {values('old')}")
    return [f"CREATE TRIGGER alerts_fts_ai AFTER INSERT ON alerts BEGIN {insert}; END",
            f"CREATE TRIGGER alerts_fts_ad AFTER DELETE ON alerts BEGIN {remove}; END",
            "CREATE TRIGGER alerts_fts_au AFTER UPDATE OF title, classification, doc, "
            f"entity_id ON alerts BEGIN {remove}; {insert}; END"]


def _downgrade(built: Services) -> None:
    with built.store.write() as conn:
        conn.exec_driver_sql("DROP TRIGGER alerts_fts_ad")
        conn.exec_driver_sql("DROP TRIGGER alerts_fts_au")
        conn.exec_driver_sql("DROP TABLE alerts_fts_watermark")
        for statement in _old_triggers():
            conn.exec_driver_sql(statement)


def test_upgrading_a_store_indexed_by_the_insert_trigger(built: Services,
                                                         shared_data: Path) -> None:
    _downgrade(built)
    case = build_case(built, shared_data)
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    [renamed] = [i for i in case.alert_ids if i in alert_ids(built, NMAP)]
    rename(built, renamed, "Renamed scan")
    before = {word: matched(built, word) for word in WORDS}
    assert len(before["nmap"]) == 1 and len(before["renamed"]) == 1
    with built.store.write() as conn:
        assert install_fts(conn) is False
    assert sorted(triggers(built)) == ["alerts_fts_ad", "alerts_fts_au"]
    assert all("watermark" in sql for sql in triggers(built).values())
    assert newest_and_mark(built) == (2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS)
    assert {word: matched(built, word) for word in WORDS} == before
    assert {word: searched(built, word) for word in WORDS} == before
    check_integrity(built)
    with built.store.write() as conn:
        assert install_fts(conn) is False


def test_an_insert_trigger_beside_a_watermark_means_a_rebuild(built: Services,
                                                              shared_data: Path) -> None:
    """An older build opened the upgraded store and put its insert trigger back: rows above
    the watermark may be indexed already, so the index is rebuilt."""
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    with built.store.write() as conn:
        conn.exec_driver_sql(_old_triggers()[0])
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    with built.store.write() as conn:
        assert install_fts(conn) is True
    assert sorted(triggers(built)) == ["alerts_fts_ad", "alerts_fts_au"]
    assert newest_and_mark(built) == (2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS)
    assert len(matched(built, "nmap")) == 2
    check_integrity(built)


def test_an_index_without_watermark_or_insert_trigger_is_rebuilt(built: Services,
                                                                 shared_data: Path) -> None:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    with built.store.write() as conn:
        conn.exec_driver_sql("DROP TABLE alerts_fts_watermark")
        assert install_fts(conn) is True
    assert newest_and_mark(built) == (SAMPLE_ROWS, SAMPLE_ROWS)
    assert matched(built, "icmp") == scanned(built, "icmp") != set()
    check_integrity(built)


def test_index_pending_in_bounded_batches(built: Services, shared_data: Path) -> None:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    with built.store.read() as conn, pytest.raises(StoreError, match="write transaction"):
        index_pending(conn)
    with built.store.write() as conn:
        assert index_pending(conn, limit=10) == 10
        assert watermark(conn) == 10
        assert index_pending(conn, limit=1) == 1
        assert watermark(conn) == 11
        assert index_pending(conn) == SAMPLE_ROWS - 11
        assert index_pending(conn) == 0
        assert watermark(conn) == SAMPLE_ROWS
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    assert catch_up(built.store, batch=7, most=25) == 25  # a background pass's share
    assert newest_and_mark(built) == (2 * SAMPLE_ROWS, SAMPLE_ROWS + 25)
    assert catch_up(built.store, batch=7) == SAMPLE_ROWS - 25
    assert catch_up(built.store) == 0
    assert newest_and_mark(built) == (2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS)
    check_integrity(built)


def test_integrity_after_a_mixed_sequence(built: Services, shared_data: Path) -> None:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    with built.store.write() as conn:
        index_pending(conn, limit=20)
        for alert_id, title in ((3, "Renamed early"), (40, "Renamed late")):
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(title=title))
        conn.execute(delete(alerts).where(alerts.c.id.in_((5, 45))))
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    with built.store.write() as conn:
        index_pending(conn, limit=30)
        conn.execute(update(alerts).where(alerts.c.entity_id == "bcrp", alerts.c.title == ICMP)
                     .values(doc=func.json_set(alerts.c.doc, "$.signature", "Zerologon")))
        newest = conn.execute(select(func.max(alerts.c.id))).scalar_one()
        conn.execute(delete(alerts).where(alerts.c.id.in_((10, 60, newest))))
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    assert catch_up(built.store, batch=9) > 0
    check_integrity(built)
    with built.store.read() as conn:
        every = set(conn.execute(select(alerts.c.id)).scalars())
    for word in WORDS:
        expected = scanned(built, word)
        assert searched(built, word) == expected, word
        assert searched(built, f"-{word}") == every - expected, word
    assert scanned(built, "zerologon") and scanned(built, "renamed")


def test_a_full_text_query_keeps_to_indexed_rows(built: Services, shared_data: Path) -> None:
    """Between a catch-up and the query new rows may arrive: they are left out, never wrongly
    matched by a negated word."""
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    catch_up(built.store)
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    with built.store.read() as conn:
        rows = conn.execute(alert_select(conn, parse("-nmap"), None)).all()
        plain = conn.execute(alert_select(conn, parse("entity:bcrp"), None)).all()
    assert {r.entity_id for r in rows} == {"minsa"} and len(rows) == SAMPLE_ROWS - 1
    assert len(plain) == SAMPLE_ROWS


def test_the_tui_page_and_the_background_loop_catch_up(built: Services,
                                                       shared_data: Path) -> None:
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="minsa")
    page = LocalClient(built).alert_page(AlertQuery(text="nmap"))
    assert [row["title"] for row in page.rows] == [NMAP]
    ingest(built, shared_data / MUNTAHA, "suricata", entity_id="bcrp")
    BackgroundWorkers(built).run_pass()
    assert newest_and_mark(built) == (2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS)
