"""RSIT classification, TLP 2.0, PAP and severity: the vocabularies every record carries.

The RSIT vocabulary is read from MISP's ``rsit`` machine-tag taxonomy shipped in
``pukara/core/data``; its version is pinned and stored with every classification. Types of
the older eCSIRT taxonomy (``malicious-code/ransomware``, ``intrusions/defacement`` …) are
still accepted, as IntelMQ does, and map to their RSIT successor for statistics.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from pukara.core.errors import InvalidInput, UnknownClassification

# eCSIRT (legacy) type → RSIT type in the same class, after IntelMQ's legacy mapping.
LEGACY_TO_RSIT: dict[tuple[str, str], str] = {
    ("malicious-code", "virus"): "infected-system",
    ("malicious-code", "worm"): "infected-system",
    ("malicious-code", "trojan"): "infected-system",
    ("malicious-code", "spyware"): "infected-system",
    ("malicious-code", "dialer"): "infected-system",
    ("malicious-code", "rootkit"): "infected-system",
    ("malicious-code", "malware"): "infected-system",
    ("malicious-code", "botnet-drone"): "infected-system",
    ("malicious-code", "ransomware"): "infected-system",
    ("malicious-code", "c&c"): "c2-server",
    ("intrusions", "bot"): "system-compromise",
    ("intrusions", "defacement"): "application-compromise",
    ("intrusions", "compromised"): "system-compromise",
    ("intrusions", "backdoor"): "system-compromise",
    ("information-content-security", "dropzone"): "data-leak",
    ("vulnerable", "vulnerable-service"): "vulnerable-system",
    ("other", "blacklist"): "other",
    ("other", "unknown"): "undetermined",
}


def _load_machinetag(name: str) -> dict[str, Any]:
    text = resources.files("pukara.core.data").joinpath(f"{name}.machinetag.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def rsit_version() -> str:
    """The pinned RSIT taxonomy version, e.g. ``rsit-1003``."""
    return f"rsit-{_load_machinetag('rsit')['version']}"


@cache
def rsit_types() -> dict[str, tuple[str, ...]]:
    """Class → allowed RSIT types of the pinned version."""
    data = _load_machinetag("rsit")
    types = {v["predicate"]: tuple(e["value"] for e in v["entry"]) for v in data["values"]}
    return {p["value"]: types.get(p["value"], ()) for p in data["predicates"]}


@cache
def accepted_types() -> dict[str, frozenset[str]]:
    """Class → every accepted type: RSIT plus the legacy eCSIRT names."""
    merged: dict[str, set[str]] = {k: set(v) for k, v in rsit_types().items()}
    for taxonomy, legacy in LEGACY_TO_RSIT:
        merged.setdefault(taxonomy, set()).add(legacy)
    return {k: frozenset(v) for k, v in merged.items()}


def validate_classification(taxonomy: str, type_: str) -> tuple[str, str]:
    """Normalise and check an RSIT (or legacy eCSIRT) class/type pair."""
    taxonomy = taxonomy.strip().lower()
    type_ = type_.strip().lower()
    known = accepted_types()
    if taxonomy not in known:
        raise UnknownClassification(
            f"unknown RSIT class {taxonomy!r}; allowed: {', '.join(sorted(known))}",
            field="classification",
        )
    if type_ not in known[taxonomy]:
        raise UnknownClassification(
            f"unknown type {type_!r} for RSIT class {taxonomy!r}; allowed: "
            f"{', '.join(sorted(known[taxonomy]))}",
            field="classification",
        )
    return taxonomy, type_


def canonical_rsit_type(taxonomy: str, type_: str) -> str:
    """The current RSIT type for a possibly legacy type."""
    return LEGACY_TO_RSIT.get((taxonomy, type_), type_)


class _Ranked(StrEnum):
    """A string enum with an order given by declaration."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)

    def __ge__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return self.rank >= other.rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return self.rank > other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return self.rank <= other.rank
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return self.rank < other.rank
        return NotImplemented


class TLP(_Ranked):
    """Traffic Light Protocol 2.0, least to most restrictive."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @classmethod
    def parse(cls, value: str) -> TLP:
        """Accept ``amber``, ``TLP:AMBER``, ``tlp:amber+strict``; ``white`` means CLEAR."""
        text = value.strip().lower()
        text = text.removeprefix("tlp:").removeprefix("tlp ").strip().strip('"')
        if text == "white":
            return cls.CLEAR
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise InvalidInput(f"unknown TLP {value!r}; allowed: {allowed}", field="tlp") from None

    @property
    def tag(self) -> str:
        """The MISP machine tag, e.g. ``tlp:amber+strict``."""
        return f"tlp:{self.value}"


class PAP(_Ranked):
    """Permissible Actions Protocol."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    RED = "red"

    @classmethod
    def parse(cls, value: str) -> PAP:
        """Accept ``amber`` or ``PAP:AMBER``; ``white`` means CLEAR."""
        text = value.strip().lower().removeprefix("pap:")
        if text == "white":
            return cls.CLEAR
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise InvalidInput(f"unknown PAP {value!r}; allowed: {allowed}", field="pap") from None


class Severity(_Ranked):
    """Severity of an alert or incident, lowest first."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @classmethod
    def parse(cls, value: str | int) -> Severity:
        """Accept a name or TheHive's 1–4 scale (1 low … 4 critical)."""
        if isinstance(value, int) and not isinstance(value, bool):
            by_number = {0: cls.INFO, 1: cls.LOW, 2: cls.MEDIUM, 3: cls.HIGH, 4: cls.CRITICAL}
            if value in by_number:
                return by_number[value]
        elif isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        allowed = ", ".join(m.value for m in cls)
        raise InvalidInput(f"unknown severity {value!r}; allowed: {allowed}", field="severity")

    def raised(self, steps: int = 1) -> Severity:
        """This severity moved ``steps`` up the scale, capped at CRITICAL."""
        members = list(Severity)
        return members[min(len(members) - 1, self.rank + steps)]
