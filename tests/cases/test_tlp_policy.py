"""The TLP decision, row by row of SECURITY §3 (and M1 for exercise data)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.sharing.tlp_policy import Subject, Target, decide, require
from pukara.core.errors import TLPViolation
from pukara.core.taxonomy import TLP

PARTNERS = {"minsa": ["essalud"]}


def subject(tlp: TLP, entities: tuple[str, ...] = ("minsa",), exercise: str | None = None
            ) -> Subject:
    """minsa's data (listed partner: essalud) at ``tlp``."""
    return Subject.of(tlp, entities, partners=PARTNERS, exercise_id=exercise)


# (tlp, target, recipient) → allowed
MATRIX = [
    (TLP.RED, Target.MISP, None, False),
    (TLP.RED, Target.STIX, "minsa", True),
    (TLP.RED, Target.STIX, "essalud", False),
    (TLP.RED, Target.STIX, None, False),
    (TLP.RED, Target.MARKDOWN, None, False),
    (TLP.RED, Target.ENTITY, "bcrp", False),
    (TLP.RED, Target.PUBLIC, None, False),
    (TLP.AMBER_STRICT, Target.MISP, None, False),
    (TLP.AMBER_STRICT, Target.ENTITY, "minsa", True),
    (TLP.AMBER_STRICT, Target.ENTITY, "essalud", False),
    (TLP.AMBER_STRICT, Target.STIX, "essalud", False),
    (TLP.AMBER_STRICT, Target.MARKDOWN, None, True),
    (TLP.AMBER, Target.MISP, None, True),
    (TLP.AMBER, Target.ENTITY, "minsa", True),
    (TLP.AMBER, Target.STIX, "essalud", True),
    (TLP.AMBER, Target.STIX, "bcrp", False),
    (TLP.AMBER, Target.STIX, None, False),
    (TLP.AMBER, Target.PUBLIC, None, False),
    (TLP.GREEN, Target.STIX, "bcrp", True),
    (TLP.GREEN, Target.STIX, None, True),
    (TLP.GREEN, Target.MISP, None, True),
    (TLP.GREEN, Target.PUBLIC, None, False),
    (TLP.CLEAR, Target.PUBLIC, None, True),
    (TLP.CLEAR, Target.ENTITY, "bcrp", True),
]


@pytest.mark.parametrize(("tlp", "target", "recipient", "allowed"), MATRIX)
def test_matrix(tlp: TLP, target: Target, recipient: str | None, allowed: bool) -> None:
    assert decide(subject(tlp), target, recipient).allowed is allowed


def test_red_refusal_says_never_pushed() -> None:
    with pytest.raises(TLPViolation) as caught:
        require(subject(TLP.RED), Target.MISP)
    assert caught.value.message == (
        "TLP:RED is for named recipients only: it is never pushed to MISP or exported "
        "(SECURITY §3, B6)")
    assert caught.value.status == 403


def test_amber_strict_refusal_names_the_recipient() -> None:
    decision = decide(subject(TLP.AMBER_STRICT), Target.ENTITY, "essalud")
    assert decision.reason == ("TLP:AMBER+STRICT is for the originating entity only; essalud "
                               "is not it (SECURITY §3, B7)")


def test_amber_partner_reason() -> None:
    assert decide(subject(TLP.AMBER), Target.ENTITY, "essalud").reason == (
        "TLP:AMBER: essalud is a listed partner of an affected entity")


def test_amber_strict_of_a_campaign_goes_to_no_single_entity() -> None:
    campaign = subject(TLP.AMBER_STRICT, ("minsa", "bcrp"))
    assert not decide(campaign, Target.ENTITY, "minsa")
    assert not decide(campaign, Target.ENTITY, "bcrp")


def test_green_never_public() -> None:
    assert decide(subject(TLP.GREEN), Target.PUBLIC).reason == (
        "TLP:GREEN never goes to public feeds; only TLP:CLEAR is publishable")


@pytest.mark.parametrize("target", [Target.MISP, Target.STIX, Target.PUBLIC])
def test_exercise_data_is_never_shared(target: Target) -> None:
    decision = decide(subject(TLP.CLEAR, exercise="ex-2026-01"), target, "minsa")
    assert not decision.allowed
    assert decision.reason == (f"exercise data (ex-2026-01) is never shared to {target.value} "
                               "(SECURITY M1)")


def test_exercise_report_stays_possible() -> None:
    assert decide(subject(TLP.AMBER, exercise="ex-2026-01"), Target.MARKDOWN).allowed


@given(tlp=st.sampled_from(list(TLP)), target=st.sampled_from(list(Target)),
       recipient=st.sampled_from([None, "minsa", "essalud", "bcrp"]))
def test_a_stricter_tlp_never_widens(tlp: TLP, target: Target, recipient: str | None) -> None:
    """Property: if an object may go somewhere, the same object at any laxer TLP may too."""
    if decide(subject(tlp), target, recipient).allowed:
        for laxer in TLP:
            if laxer <= tlp:
                assert decide(subject(laxer), target, recipient).allowed
