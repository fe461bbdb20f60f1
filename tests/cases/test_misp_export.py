"""A case from the real samples as a MISP event: loads back with pymisp, exact attributes per
TLP (SECURITY B8, PyMISP ``testlive_sync`` style), refusals, idempotent pushes (G2), audit.

The MISP server is the one system we cannot run here: unit tests push to ``FakeMisp``, a
fake at the :class:`MispClient` seam that keeps events by UUID like a server would. The live
test runs only when ``PUKARA_TEST_MISP_URL`` (and ``PUKARA_TEST_MISP_KEY``) are set.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent
from sqlalchemy import select

from cases.services.case_models import CaseDraft
from cases.sharing.case_data import load_case, mark_observable
from cases.sharing.misp_export import build_event, event_uuid, push
from cases.store.tables import audit_log
from pukara.core.errors import TLPViolation
from tests.cases.sharing_kit import ANALYST, SharedCase, shared_case

__all__ = ["shared_case"]

MD5 = "0749bae92ca336a02c83d126e04ec628"
SHA1 = "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"
SHA256 = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"
FILENAME = "3Z4wnG9603it23y.exe"


class FakeMisp:
    """Stands in for PyMISP at the seam: events kept by UUID, calls recorded."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def event_exists(self, event: Any) -> bool:
        return str(event) in self.events

    def add_event(self, event: MISPEvent, pythonify: bool = False) -> Any:
        self.calls.append("add")
        if event.uuid in self.events:
            return {"errors": (403, {"message": "Event already exists"})}
        self.events[event.uuid] = event.to_dict()
        return {"Event": self.events[event.uuid]}

    def update_event(self, event: MISPEvent, event_id: int | None = None,
                     pythonify: bool = False) -> Any:
        self.calls.append("update")
        self.events[event.uuid] = event.to_dict()
        return {"Event": self.events[event.uuid]}


def attributes(event: MISPEvent) -> set[tuple[str, str, bool, int, str]]:
    """(type, value, to_ids, distribution, tlp tag) of every attribute."""
    return {(a.type, a.value, bool(a.to_ids), int(a.distribution), a.tags[0].name)
            for a in event.attributes}


def test_event_loads_back_with_pymisp(shared_case: SharedCase) -> None:
    built = build_event(load_case(shared_case.built.store, shared_case.case_id))
    loaded = MISPEvent()
    loaded.load(built.event.to_json())
    assert loaded.uuid == event_uuid(shared_case.case_id)
    assert loaded.info == f"{shared_case.number}: Nmap SYN Port Scan Detected"
    assert int(loaded.threat_level_id) == 3  # severity low
    assert int(loaded.analysis) == 0  # case new
    assert int(loaded.distribution) == 0  # case TLP:AMBER → your organisation only
    assert [t.name for t in loaded.tags] == [
        "tlp:amber", "PAP:AMBER", 'rsit:intrusion-attempts="ids-alert"']
    assert attributes(loaded) == {
        ("ip-dst", "192.168.137.1", False, 0, "tlp:amber"),
        ("ip-dst", "192.168.137.128", False, 0, "tlp:amber"),
        ("filename", FILENAME, False, 1, "tlp:green"),
        ("md5", MD5, True, 1, "tlp:green"),
        ("sha1", SHA1, True, 1, "tlp:green"),
        ("sha256", SHA256, True, 1, "tlp:green"),
    }


def test_event_tags_are_valid_machine_tags(shared_case: SharedCase, shared_data: Path) -> None:
    """Every event tag exists in the real MISP taxonomies (tlp, PAP, rsit)."""
    built = build_event(load_case(shared_case.built.store, shared_case.case_id))
    known = set()
    for name in ("tlp", "pap", "rsit"):
        taxonomy = json.loads((shared_data / "taxonomies" / f"{name}.machinetag.json")
                              .read_text())
        namespace = taxonomy["namespace"]
        known |= {f"{namespace}:{p['value']}" for p in taxonomy["predicates"]}
        known |= {f'{namespace}:{v["predicate"]}="{e["value"]}"'
                  for v in taxonomy.get("values", []) for e in v["entry"]}
    assert {t.name for t in built.event.tags} <= known


def test_red_and_amber_strict_attributes_never_leave(shared_case: SharedCase) -> None:
    store = shared_case.built.store
    mark_observable(store, shared_case.case_id, ("sha1", SHA1), "red", ANALYST)
    mark_observable(store, shared_case.case_id, ("ipv4", "192.168.137.1"), "amber+strict",
                    ANALYST)
    fake = FakeMisp()
    summary = push(store, load_case(store, shared_case.case_id), fake, ANALYST)
    assert summary == {"event_uuid": event_uuid(shared_case.case_id), "updated": False,
                       "attributes": 4, "excluded": 2}
    reached = MISPEvent()
    reached.load(fake.events[summary["event_uuid"]])
    assert attributes(reached) == {
        ("ip-dst", "192.168.137.128", False, 0, "tlp:amber"),
        ("filename", FILENAME, False, 1, "tlp:green"),
        ("md5", MD5, True, 1, "tlp:green"),
        ("sha256", SHA256, True, 1, "tlp:green"),
    }


def test_retried_push_updates_the_same_event(shared_case: SharedCase) -> None:
    store = shared_case.built.store
    fake = FakeMisp()
    first = push(store, load_case(store, shared_case.case_id), fake, ANALYST)
    second = push(store, load_case(store, shared_case.case_id), fake, ANALYST)
    assert fake.calls == ["add", "update"]
    assert list(fake.events) == [first["event_uuid"]]
    assert second["updated"] is True
    uuids = [a["uuid"] for a in fake.events[first["event_uuid"]]["Attribute"]]
    assert uuids == [str(uuid.uuid5(uuid.UUID(first["event_uuid"]), key)) for key in (
        "ipv4:192.168.137.1", "ipv4:192.168.137.128", f"filename:{FILENAME}", f"md5:{MD5}",
        f"sha1:{SHA1}", f"sha256:{SHA256}")]


def test_push_is_audited_with_target_and_tlp(shared_case: SharedCase) -> None:
    store = shared_case.built.store
    push(store, load_case(store, shared_case.case_id), FakeMisp(), ANALYST)
    with store.read() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "case.share.misp")
                           ).one()
    assert (row.actor, row.object_id) == ("ana", shared_case.case_id)
    assert row.details["target"] == "misp"
    assert row.details["tlp"] == "amber"
    assert row.details["attributes"] == 6


def test_red_case_is_refused_and_nothing_is_pushed(shared_case: SharedCase) -> None:
    built = shared_case.built
    built.cases.update(shared_case.case_id, {"tlp": "red"}, ANALYST)
    fake = FakeMisp()
    with pytest.raises(TLPViolation, match="never pushed to MISP"):
        push(built.store, load_case(built.store, shared_case.case_id), fake, ANALYST)
    assert fake.calls == []
    with built.store.read() as conn:
        refused = conn.execute(select(audit_log).where(
            audit_log.c.action == "case.share.refused")).one()
    assert refused.details == {
        "target": "misp", "tlp": "red", "recipient": None,
        "reason": "TLP:RED is for named recipients only: it is never pushed to MISP or "
                  "exported (SECURITY §3, B6)"}


def test_exercise_case_is_refused(shared_case: SharedCase) -> None:
    built = shared_case.built
    case = built.cases.create(CaseDraft(title="Drill", entity_ids=["minsa"], tlp="green",
                                        exercise_id="ex-2026-07"), ANALYST)
    with pytest.raises(TLPViolation, match=r"exercise data \(ex-2026-07\) is never shared"):
        build_event(load_case(built.store, case["id"]))


@pytest.mark.skipif(not os.environ.get("PUKARA_TEST_MISP_URL"),
                    reason="PUKARA_TEST_MISP_URL is not set: no MISP server to push to")
def test_live_push(shared_case: SharedCase) -> None:
    from pymisp import PyMISP

    client = PyMISP(os.environ["PUKARA_TEST_MISP_URL"], os.environ["PUKARA_TEST_MISP_KEY"],
                    ssl=False)
    store = shared_case.built.store
    first = push(store, load_case(store, shared_case.case_id), client, ANALYST)
    again = push(store, load_case(store, shared_case.case_id), client, ANALYST)
    fetched = client.get_event(first["event_uuid"], pythonify=True)
    assert again["updated"] is True
    assert {a.value for a in fetched.attributes} == {  # type: ignore[union-attr]
        "192.168.137.1", "192.168.137.128", FILENAME, MD5, SHA1, SHA256}
    client.delete_event(fetched)
