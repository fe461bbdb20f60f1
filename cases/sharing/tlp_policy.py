"""Who may receive what: the one decision every share and export goes through.

It follows the TLP table of SECURITY §3 exactly:

========================  =====================================================
TLP:RED                   never pushed to MISP or exported; only back to the
                          originating entity (the CNSD handlers already hold it)
TLP:AMBER+STRICT          the originating entity only (CNSD holds it)
TLP:AMBER                 the affected entities and their listed partners
                          (``Entity.partners``); on the CNSD MISP server it stays
                          "your organisation only"
TLP:GREEN                 the national community; never public feeds
TLP:CLEAR                 anyone
========================  =====================================================

Exercise data (``exercise_id``) never goes to MISP or to STIX sharing (SECURITY M1). A
decision carries its reason so a refusal says why (B7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pukara.core.errors import TLPViolation
from pukara.core.taxonomy import TLP


class Target(StrEnum):
    """Where an object would go."""

    MISP = "misp"
    STIX = "stix"
    MARKDOWN = "markdown"
    ENTITY = "entity"
    PUBLIC = "public"


#: targets that leave the platform as sharing (refused for exercise data)
SHARING_TARGETS = frozenset({Target.MISP, Target.STIX, Target.PUBLIC})


@dataclass(frozen=True)
class Subject:
    """What is being shared: its TLP, whose data it is, and whether it is an exercise."""

    tlp: TLP
    originators: frozenset[str] = frozenset()
    affected: frozenset[str] = frozenset()
    partners: Mapping[str, frozenset[str]] = field(default_factory=dict)
    exercise_id: str | None = None

    @classmethod
    def of(cls, tlp: TLP | str, entities: Iterable[str], *,
           partners: Mapping[str, Iterable[str]] | None = None,
           exercise_id: str | None = None) -> Subject:
        """A subject whose originating and affected entities are ``entities``."""
        ids = frozenset(entities)
        return cls(tlp=TLP.parse(tlp) if isinstance(tlp, str) else tlp, originators=ids,
                   affected=ids,
                   partners={k: frozenset(v) for k, v in (partners or {}).items()},
                   exercise_id=exercise_id)

    def audience_partners(self) -> frozenset[str]:
        """The listed partners of every affected entity."""
        found: set[str] = set()
        for entity in self.affected:
            found.update(self.partners.get(entity, frozenset()))
        return frozenset(found)


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and why."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def decide(subject: Subject, target: Target | str, recipient: str | None = None) -> Decision:
    """May ``subject`` go to ``target`` (for ``recipient``: an entity id, when one is named)?"""
    target = Target(target)
    label = f"TLP:{subject.tlp.value.upper()}"
    if subject.exercise_id and target in SHARING_TARGETS:
        return Decision(False, f"exercise data ({subject.exercise_id}) is never shared to "
                               f"{target.value} (SECURITY M1)")
    if target is Target.PUBLIC:
        return _public(subject, label)
    if target is Target.MISP:
        return _misp(subject, label)
    if recipient is None:
        if target is Target.STIX:
            return _community(subject, label, "a STIX export with no named recipient")
        return _internal(subject, label)
    return _entity(subject, label, recipient)


def require(subject: Subject, target: Target | str, recipient: str | None = None) -> Decision:
    """:func:`decide`, raising TLPViolation with the reason when refused."""
    decision = decide(subject, target, recipient)
    if not decision.allowed:
        raise TLPViolation(decision.reason, field="tlp")
    return decision


def _public(subject: Subject, label: str) -> Decision:
    if subject.tlp is TLP.CLEAR:
        return Decision(True, "TLP:CLEAR is publishable")
    return Decision(False, f"{label} never goes to public feeds; only TLP:CLEAR is publishable")


def _misp(subject: Subject, label: str) -> Decision:
    if subject.tlp is TLP.RED:
        return Decision(False, "TLP:RED is for named recipients only: it is never pushed to "
                               "MISP or exported (SECURITY §3, B6)")
    if subject.tlp is TLP.AMBER_STRICT:
        return Decision(False, "TLP:AMBER+STRICT stays with the originating entity and the "
                               "CNSD: it is never pushed to MISP (SECURITY §3, B8)")
    if subject.tlp is TLP.AMBER:
        return Decision(True, "TLP:AMBER goes to the CNSD MISP server as 'your organisation "
                              "only'")
    return Decision(True, f"{label} may go to the MISP community")


def _community(subject: Subject, label: str, what: str) -> Decision:
    if subject.tlp in (TLP.CLEAR, TLP.GREEN):
        return Decision(True, f"{label} may go to the national community")
    return Decision(False, f"{label} needs a named recipient in its audience; {what} is "
                           "refused (SECURITY §3)")


def _internal(subject: Subject, label: str) -> Decision:
    if subject.tlp is TLP.RED:
        return Decision(False, "TLP:RED is for named recipients only: it is never exported "
                               "(SECURITY §3, B6)")
    return Decision(True, f"{label} may be reported inside the CNSD")


def _entity(subject: Subject, label: str, recipient: str) -> Decision:
    tlp = subject.tlp
    sole_originator = subject.originators == frozenset({recipient})
    if tlp is TLP.RED:
        if sole_originator:
            return Decision(True, "TLP:RED goes back only to its originating entity")
        return Decision(False, f"TLP:RED is for named recipients only: it is never exported, "
                               f"and {recipient} is not its sole originator (SECURITY §3, B6)")
    if tlp is TLP.AMBER_STRICT:
        if sole_originator:
            return Decision(True, "TLP:AMBER+STRICT goes to its originating entity")
        return Decision(False, f"TLP:AMBER+STRICT is for the originating entity only; "
                               f"{recipient} is not it (SECURITY §3, B7)")
    if tlp is TLP.AMBER:
        if recipient in subject.affected:
            return Decision(True, f"TLP:AMBER: {recipient} is an affected entity")
        if recipient in subject.audience_partners():
            return Decision(True, f"TLP:AMBER: {recipient} is a listed partner of an affected "
                                  "entity")
        return Decision(False, f"TLP:AMBER is for the affected entities and their listed "
                               f"partners; {recipient} is neither (SECURITY §3, B7)")
    return Decision(True, f"{label} may go to any entity of the national community")


__all__ = ["SHARING_TARGETS", "Decision", "Subject", "Target", "decide", "require"]
