"""A case from the real samples as a STIX 2.1 bundle: parses with ``stix2.parse``, holds
the expected objects, leaves out what the recipient may not receive, refuses RED."""

from __future__ import annotations

from collections import Counter

import pytest
import stix2
from sqlalchemy import select

from cases.sharing.case_data import load_case, mark_observable
from cases.sharing.stix_export import TLP2_IDS, build_bundle, export_bundle
from cases.store.tables import audit_log
from pukara.core.errors import TLPViolation
from pukara.core.taxonomy import TLP
from tests.cases.sharing_kit import ANALYST, SharedCase, shared_case

__all__ = ["shared_case"]

CENTER = "Centro Nacional de Seguridad Digital"
SHA256 = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"


def test_bundle_parses_and_holds_the_case(shared_case: SharedCase) -> None:
    export = load_case(shared_case.built.store, shared_case.case_id)
    result = build_bundle(export, CENTER, recipient="essalud")
    parsed = stix2.parse(result.bundle.serialize(), version="2.1")
    kinds = Counter(o.type for o in parsed.objects)
    assert kinds == {"identity": 1, "marking-definition": 2, "incident": 1, "report": 1,
                     "ipv4-addr": 2, "file": 4, "observed-data": 6, "indicator": 5,
                     "relationship": 10}
    patterns = sorted(o.pattern for o in parsed.objects if o.type == "indicator")
    assert patterns == [
        "[file:hashes.'SHA-1' = '77b0c41b7d340b8a3d903f21347bbf06aa766b5b']",
        f"[file:hashes.'SHA-256' = '{SHA256}']",
        "[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']",
        "[ipv4-addr:value = '192.168.137.1']",
        "[ipv4-addr:value = '192.168.137.128']",
    ]
    incident = next(o for o in parsed.objects if o.type == "incident")
    assert incident.name == f"{shared_case.number}: Nmap SYN Port Scan Detected"
    assert incident.object_marking_refs == [TLP2_IDS[TLP.AMBER]]
    markings = {o.id: o.name for o in parsed.objects if o.type == "marking-definition"}
    assert markings == {TLP2_IDS[TLP.AMBER]: "TLP:AMBER", TLP2_IDS[TLP.GREEN]: "TLP:GREEN"}
    report = next(o for o in parsed.objects if o.type == "report")
    assert incident.id in report.object_refs


def test_same_case_same_ids(shared_case: SharedCase) -> None:
    export = load_case(shared_case.built.store, shared_case.case_id)
    first = build_bundle(export, CENTER, recipient="minsa").bundle
    second = build_bundle(export, CENTER, recipient="minsa").bundle
    assert [o.id for o in first.objects] == [o.id for o in second.objects]


def test_amber_case_to_an_outsider_is_refused(shared_case: SharedCase) -> None:
    export = load_case(shared_case.built.store, shared_case.case_id)
    with pytest.raises(TLPViolation) as caught:
        build_bundle(export, CENTER, recipient="bcrp")
    assert caught.value.message == ("TLP:AMBER is for the affected entities and their listed "
                                    "partners; bcrp is neither (SECURITY §3, B7)")


def test_strict_observable_left_out_for_a_partner(shared_case: SharedCase) -> None:
    store = shared_case.built.store
    mark_observable(store, shared_case.case_id, ("sha256", SHA256), "amber+strict", ANALYST)
    result = build_bundle(load_case(store, shared_case.case_id), CENTER, recipient="essalud")
    assert result.excluded == [("sha256", SHA256, "TLP:AMBER+STRICT is for the originating "
                                "entity only; essalud is not it (SECURITY §3, B7)")]
    text = result.bundle.serialize()
    assert SHA256 not in text
    own = build_bundle(load_case(store, shared_case.case_id), CENTER, recipient="minsa")
    assert SHA256 in own.bundle.serialize()


def test_red_case_never_exported(shared_case: SharedCase) -> None:
    built = shared_case.built
    built.cases.update(shared_case.case_id, {"tlp": "red"}, ANALYST)
    with pytest.raises(TLPViolation, match="never exported"):
        build_bundle(load_case(built.store, shared_case.case_id), CENTER, recipient="essalud")


def test_export_is_audited(shared_case: SharedCase) -> None:
    store = shared_case.built.store
    export_bundle(store, load_case(store, shared_case.case_id), CENTER, ANALYST, "essalud")
    with store.read() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "case.share.stix")
                           ).one()
    assert (row.details["recipient"], row.details["tlp"], row.details["objects"]) == (
        "essalud", "amber", 32)
