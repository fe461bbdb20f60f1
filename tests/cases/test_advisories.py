"""Advisories: who reads which (community, sector, addressed), TLP rules, read receipts,
audit, and the ``pukara advisory`` commands. Indicators are the hashes of the real Xorist
MISP event (PyMISP test data) as the center would publish them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.services import audit
from cases.services.advisories import AdvisoryService
from cases.services.identity import Principal, Role
from cases.store.tables import audit_log
from pukara.cli import main
from pukara.core.errors import NotFound, PermissionDenied, TLPViolation
from pukara.core.schema import utcnow
from tests.cases.sharing_kit import make_services, xorist_observables

ANA = audit.Actor("ana")
YEAR = utcnow().year
MINSA = Principal(Role.REPORTER, 1, entity_id="minsa")
ESSALUD = Principal(Role.REPORTER, 2, entity_id="essalud")
BCRP = Principal(Role.REPORTER, 3, entity_id="bcrp")


@pytest.fixture
def service(pukara_home: Path) -> Iterator[AdvisoryService]:
    built = make_services(pukara_home)
    yield AdvisoryService(built.store)
    built.close()


def numbers(found: list[dict[str, object]]) -> list[object]:
    return [a["number"] for a in found]


def publish(service: AdvisoryService, title: str, **extra: object) -> dict[str, object]:
    return service.publish({"title": title, "summary": f"{title}: summary", **extra}, ANA)


def test_who_reads_what(service: AdvisoryService, shared_data: Path) -> None:
    hashes = [o for o in xorist_observables(shared_data) if o["type"] != "filename"]
    everyone = publish(service, "Xorist ransomware", tlp="clear", indicators=hashes,
                       recommendations=["Block the hashes", "Restore from backups"])
    health = publish(service, "Health sector phishing", tlp="green", sectors=["Health"])
    only_bcrp = publish(service, "BCRP exposure", tlp="green", entity_ids=["bcrp"])
    amber = publish(service, "Health AMBER", tlp="amber", sectors=["health"])
    assert (everyone["number"], health["number"], only_bcrp["number"], amber["number"]) == (
        f"ADV-{YEAR}-0001", f"ADV-{YEAR}-0002", f"ADV-{YEAR}-0003", f"ADV-{YEAR}-0004")
    assert numbers(service.list_for(MINSA)) == [f"ADV-{YEAR}-0004", f"ADV-{YEAR}-0002",
                                               f"ADV-{YEAR}-0001"]
    assert numbers(service.list_for(ESSALUD)) == numbers(service.list_for(MINSA))
    assert numbers(service.list_for(BCRP)) == [f"ADV-{YEAR}-0003", f"ADV-{YEAR}-0001"]
    assert len(service.list_for(None)) == 4
    first = service.list_for(BCRP)[1]
    assert [i["value"] for i in first["indicators"]] == [
        "0749bae92ca336a02c83d126e04ec628", "77b0c41b7d340b8a3d903f21347bbf06aa766b5b",
        "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"]
    assert first["recommendations"] == ["Block the hashes", "Restore from backups"]


def test_amber_is_addressed_and_tracked(service: AdvisoryService) -> None:
    amber = publish(service, "Health AMBER", tlp="amber", sectors=["health"])
    assert amber["recipients"] == [
        {"entity_id": "essalud", "addressed": True, "read_at": None},
        {"entity_id": "minsa", "addressed": True, "read_at": None}]
    read = service.read(MINSA, str(amber["id"]))
    assert read["read_at"] is not None
    assert service.read(MINSA, str(amber["id"]))["read_at"] == read["read_at"]
    staff = service.list_for(None)[0]
    assert [(r["entity_id"], r["read_at"] is not None) for r in staff["recipients"]] == [
        ("essalud", False), ("minsa", True)]
    with pytest.raises(NotFound):
        service.read(BCRP, str(amber["id"]))
    with service.store.read() as conn:
        reads = conn.execute(select(audit_log.c.actor, audit_log.c.entity_id).where(
            audit_log.c.action == "advisory.read")).all()
    assert [tuple(r) for r in reads] == [("entity:minsa", "minsa"), ("entity:minsa", "minsa")]


def test_community_read_leaves_a_receipt(service: AdvisoryService) -> None:
    green = publish(service, "Community", tlp="green")
    service.read(BCRP, str(green["id"]))
    recipients = service.list_for(None)[0]["recipients"]
    assert [(r["entity_id"], r["addressed"]) for r in recipients] == [("bcrp", False)]
    assert service.list_for(BCRP)[0]["read_at"] is not None
    assert service.list_for(MINSA)[0]["read_at"] is None


@pytest.mark.parametrize(("extra", "message"), [
    ({"tlp": "red"}, "TLP:RED is never published as an advisory"),
    ({"tlp": "amber+strict"}, "TLP:AMBER+STRICT is never published as an advisory"),
    ({"tlp": "amber"}, "a TLP:AMBER advisory must be addressed to named entities or sectors"),
])
def test_tlp_refusals(service: AdvisoryService, extra: dict[str, str], message: str) -> None:
    with pytest.raises(TLPViolation) as caught:
        publish(service, "Nope", **extra)
    assert caught.value.message.startswith(message)
    assert service.list_for(None) == []


def test_entities_cannot_publish(service: AdvisoryService) -> None:
    with pytest.raises(PermissionDenied):
        service.publish({"title": "x", "summary": "y"}, ANA, principal=MINSA)


def test_publish_is_audited(service: AdvisoryService) -> None:
    amber = publish(service, "Health AMBER", tlp="amber", sectors=["health"])
    with service.store.read() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "advisory.publish")
                           ).one()
    assert (row.actor, row.object_id) == ("ana", amber["id"])
    assert row.details == {"tlp": "amber", "sectors": ["health"],
                           "recipients": ["essalud", "minsa"]}


def test_cli_publish_and_list(service: AdvisoryService,
                              capsys: pytest.CaptureFixture[str]) -> None:
    service.store.close()
    code = main(["advisory", "publish", "--title", "Xorist", "--summary", "Block it",
                 "--tlp", "green", "--sector", "finance",
                 "--indicator", "md5:0749BAE92CA336A02C83D126E04EC628", "--json"])
    published = json.loads(capsys.readouterr().out)
    assert code == 0
    assert published["indicators"] == [{"type": "md5", "value":
                                        "0749bae92ca336a02c83d126e04ec628", "role": None}]
    assert main(["advisory", "list", "--entity", "bcrp", "--json"]) == 0
    assert numbers(json.loads(capsys.readouterr().out)) == [f"ADV-{YEAR}-0001"]
    assert main(["advisory", "list", "--entity", "minsa", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
