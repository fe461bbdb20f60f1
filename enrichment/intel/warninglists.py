"""MISP warninglists: lists of known-benign values. A hit on one is kept but suppressed.

Types, as MISP defines them, and how we match a normalised observable value:

- ``cidr``: the address (or network) lies in a listed network (pytricia, v4 and v6);
- ``string``: equal, case-insensitively; an entry with a leading dot (``.google.com``, as
  the domain lists write them) also covers that name and its sub-domains;
- ``hostname``: the host (of a domain, hostname or URL) equals an entry or is below it;
- ``substring``: an entry occurs in the value;
- ``regex``: a listed pattern (``/…/flags`` or bare) finds a match.

``matching_attributes`` (MISP attribute types) limit which observable types a list applies
to; an empty list applies to every type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytricia

from enrichment.intel.misp_types import observable_types
from pukara.core.errors import ParseError
from pukara.core.observables import ObservableType
from pukara.core.schema import ParseFailure

KINDS = ("string", "substring", "hostname", "cidr", "regex")
_REGEX_DELIMITED = re.compile(r"^/(.*)/([a-z]*)$", re.S)
_FLAGS = {"i": re.I, "m": re.M, "s": re.S, "x": re.X}


@dataclass(frozen=True)
class Warninglist:
    """One MISP warninglist."""

    name: str
    type: str
    entries: tuple[str, ...]
    matching_attributes: tuple[str, ...] = ()
    version: int = 0
    description: str = ""

    def applies_to(self) -> frozenset[ObservableType]:
        """The observable types this list is checked against."""
        if not self.matching_attributes:
            return frozenset(ObservableType)
        found: set[ObservableType] = set()
        for misp_type in self.matching_attributes:
            found |= observable_types(misp_type)
        return frozenset(found)


def read_warninglist(path: Path) -> tuple[Warninglist, list[ParseFailure]]:
    """Read a warninglist JSON file; a bad file raises ParseError, bad entries are reported."""
    where = str(path)
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ParseError(f"{where}: not a readable JSON warninglist: {exc}") from None
    return parse_warninglist(document, where)


def parse_warninglist(document: object, where: str) -> tuple[Warninglist, list[ParseFailure]]:
    """Validate a decoded warninglist document."""
    if not isinstance(document, dict) or not isinstance(document.get("list"), list):
        raise ParseError(f"{where}: a warninglist is an object with a 'list' array")
    kind = document.get("type", "string")
    if kind not in KINDS:
        raise ParseError(f"{where}: warninglist type {kind!r} is not one of {', '.join(KINDS)}")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ParseError(f"{where}: warninglist has no 'name'")
    failures: list[ParseFailure] = []
    entries: list[str] = []
    for number, entry in enumerate(document["list"], start=1):
        reason = _entry_problem(kind, entry)
        if reason:
            failures.append(
                ParseFailure(source=where, record=number, raw=str(entry), reason=reason)
            )
        else:
            entries.append(str(entry).strip())
    attributes = document.get("matching_attributes") or []
    version = document.get("version", 0)
    warninglist = Warninglist(
        name=name.strip(),
        type=kind,
        entries=tuple(entries),
        matching_attributes=tuple(str(a) for a in attributes),
        version=int(version) if str(version).isdigit() else 0,
        description=str(document.get("description", "")),
    )
    return warninglist, failures


def _entry_problem(kind: str, entry: object) -> str | None:
    if not isinstance(entry, str) or not entry.strip():
        return "entry must be a non-empty string"
    if kind == "cidr":
        try:
            pytricia.PyTricia(128).insert(entry.strip(), None)
        except (ValueError, KeyError, TypeError):
            return "not an IP address or network"
    if kind == "regex":
        try:
            _compile(entry.strip())
        except re.error as exc:
            return f"invalid regular expression: {exc}"
    return None


def _compile(entry: str) -> re.Pattern[str]:
    delimited = _REGEX_DELIMITED.match(entry)
    if not delimited:
        return re.compile(entry)
    flags = 0
    for letter in delimited.group(2):
        flags |= _FLAGS.get(letter, 0)
    return re.compile(delimited.group(1), flags)


@dataclass
class _TypedLists:
    strings: dict[str, set[str]] = field(default_factory=dict)
    suffixes: dict[str, set[str]] = field(default_factory=dict)
    hostnames: dict[str, set[str]] = field(default_factory=dict)
    substrings: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    regexes: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No list of these kinds applies."""
        return not (
            self.strings or self.suffixes or self.hostnames or self.substrings or self.regexes
        )


class WarninglistIndex:
    """All warninglists compiled for look-ups by (observable type, normalised value)."""

    def __init__(self, warninglists: Iterable[Warninglist] = ()) -> None:
        self._v4 = pytricia.PyTricia(32)
        self._v6 = pytricia.PyTricia(128)
        self._cidr_types: dict[str, frozenset[ObservableType]] = {}
        self._by_type: dict[ObservableType, _TypedLists] = {
            t: _TypedLists() for t in ObservableType
        }
        self.names: list[str] = []
        #: the observable types at least one list applies to
        self.kinds: set[ObservableType] = set()
        for warninglist in warninglists:
            self.add(warninglist)

    def add(self, warninglist: Warninglist) -> None:
        """Compile one list in."""
        self.names.append(warninglist.name)
        applies = warninglist.applies_to()
        self.kinds |= applies
        if warninglist.type == "cidr":
            self._cidr_types[warninglist.name] = applies
            for entry in warninglist.entries:
                self._add_network(entry, warninglist.name)
            return
        for kind in applies:
            self._add_typed(self._by_type[kind], warninglist)

    def _add_typed(self, lists: _TypedLists, warninglist: Warninglist) -> None:
        name = warninglist.name
        if warninglist.type == "string":
            for entry in warninglist.entries:
                text = entry.casefold()
                target = lists.suffixes if text.startswith(".") else lists.strings
                target.setdefault(text.lstrip("."), set()).add(name)
        elif warninglist.type == "hostname":
            for entry in warninglist.entries:
                lists.hostnames.setdefault(entry.casefold().strip("."), set()).add(name)
        elif warninglist.type == "substring" and warninglist.entries:
            joined = "|".join(re.escape(e.casefold()) for e in warninglist.entries)
            lists.substrings.append((name, re.compile(joined)))
        elif warninglist.type == "regex":
            lists.regexes.extend((name, _compile(e)) for e in warninglist.entries)

    def _add_network(self, entry: str, name: str) -> None:
        trie = self._v6 if ":" in entry else self._v4
        network = entry.strip()
        try:
            existing = trie.get(network) if trie.has_key(network) else None
            trie.insert(network, (existing or frozenset()) | {name})
        except (ValueError, KeyError, TypeError):
            return

    def check(self, kind: ObservableType, value: str) -> list[str]:
        """Names of the warninglists ``value`` (of type ``kind``) is on; empty when none."""
        found: set[str] = set()
        if kind in (ObservableType.IPV4, ObservableType.IPV6, ObservableType.CIDR):
            found |= self._networks(kind, value)
        lists = self._by_type[kind]
        if lists.empty:
            return sorted(found)
        text = value.casefold()
        host = _host_of(kind, text)
        found |= lists.strings.get(text, set())
        if host is not None:
            found |= _names_above(lists.suffixes, host)
            found |= _names_above(lists.hostnames, host)
        found |= {name for name, pattern in lists.substrings if pattern.search(text)}
        found |= {name for name, pattern in lists.regexes if pattern.search(value)}
        return sorted(found)

    def _networks(self, kind: ObservableType, value: str) -> set[str]:
        trie = self._v6 if ":" in value else self._v4
        found: set[str] = set()
        try:
            prefix = trie.get_key(value)
        except (ValueError, KeyError, TypeError):
            return found
        while prefix is not None:
            found |= {n for n in trie.get(prefix) if kind in self._cidr_types.get(n, ())}
            prefix = trie.parent(prefix)
        return found


def url_host(url: str) -> str:
    """The host of a normalised URL (``scheme://[user@]host[:port]/…``), fast."""
    rest = url.partition("://")[2]
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.partition(":")[0]


def _host_of(kind: ObservableType, text: str) -> str | None:
    if kind in (ObservableType.DOMAIN, ObservableType.HOSTNAME):
        return text
    if kind is ObservableType.URL:
        return url_host(text) or None
    if kind is ObservableType.EMAIL:
        return text.rpartition("@")[2]
    return None


def _names_above(table: dict[str, set[str]], host: str) -> set[str]:
    if not table:
        return set()
    found: set[str] = set()
    labels = host.split(".")
    for start in range(len(labels)):
        found |= table.get(".".join(labels[start:]), set())
    return found
