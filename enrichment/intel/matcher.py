"""The in-memory indicator index: built once from the store, rebuilt when the store changes.

- exact values (hashes, e-mails, file names, normalised URLs, JA3 …): one dict look-up;
- domains and host names: the name and every parent down to the registrable domain, never
  the public suffix itself (``bad.example.com`` hits ``x.bad.example.com``, not
  ``notbad.example.com``; an indicator ``com`` or ``co.uk`` only hits that exact name);
- IPs and networks: pytricia tries (IPv4 and IPv6) holding single addresses and CIDRs; a hit
  lists every enclosing indicator, the longest prefix first;
- URLs and e-mail addresses also match through their host or domain.

A hit whose observable or indicator value is on a warninglist is kept with
``suppressed=True`` and the lists' names in ``meta["warninglists"]``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import pytricia
from publicsuffixlist import PublicSuffixList

from enrichment.intel.misp_types import is_ip
from enrichment.intel.store import IntelStore, StoredIndicator
from enrichment.intel.warninglists import Warninglist, WarninglistIndex, url_host
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType as T
from pukara.core.observables import guess_type, normalize, refang
from pukara.core.schema import Hit

_PSL = PublicSuffixList()
_NAMES = frozenset({T.DOMAIN, T.HOSTNAME})
_NOT_LISTED: list[str] = []  # shared empty answer; callers never mutate it
_IPS = frozenset({T.IPV4, T.IPV6, T.CIDR})


class EventMeta(NamedTuple):
    """What many indicators of one event share (kept once in memory)."""

    source: str
    event_uuid: str
    event_info: str | None
    threat_level: int | None
    tags: tuple[str, ...]


class Entry(NamedTuple):
    """One indicator in the index."""

    type: str
    value: str
    meta: EventMeta


@lru_cache(maxsize=1 << 16)
def domain_candidates(name: str) -> tuple[str, ...]:
    """``name`` and its parents down to the registrable domain (never a public suffix)."""
    registrable = _PSL.privatesuffix(name)
    if registrable is None or registrable == name:
        return (name,)
    labels = name.split(".")
    keep = registrable.count(".") + 1
    return tuple(".".join(labels[i:]) for i in range(len(labels) - keep + 1))


@lru_cache(maxsize=1 << 14)
def is_public_suffix(name: str) -> bool:
    """True for ``com``, ``co.uk``, ``github.io`` …: names an indicator must not cover."""
    return bool(_PSL.is_public(name))


def _namespace(kind: T) -> str:
    return "domain" if kind in _NAMES else kind.value


class IntelIndex:
    """Look-up structures over the active indicators and the warninglists."""

    def __init__(
        self,
        indicators: Iterable[StoredIndicator],
        warninglists: Iterable[Warninglist] = (),
        version: int = 0,
    ) -> None:
        self.version = version
        self.built_at = time.monotonic()
        self.size = 0
        self._exact: dict[str, dict[str, list[Entry]]] = {}
        self._names: dict[str, list[Entry]] = self._exact.setdefault("domain", {})
        self._v4 = pytricia.PyTricia(32)
        self._v6 = pytricia.PyTricia(128)
        self._warn = WarninglistIndex(warninglists)
        self._warned: dict[tuple[T | str, str], list[str]] = {}
        metas: dict[EventMeta, EventMeta] = {}
        for item in indicators:
            meta = EventMeta(
                item.source, item.event_uuid, item.event_info, item.threat_level, item.tags
            )
            self._add(Entry(item.type, item.value, metas.setdefault(meta, meta)))

    @classmethod
    def from_store(cls, store: IntelStore, now: datetime | None = None) -> IntelIndex:
        """Build from the store's active indicators and warninglists."""
        version = store.version()
        return cls(store.iter_active(now), store.warninglists(), version)

    def _add(self, entry: Entry) -> None:
        self.size += 1
        kind = T(entry.type)
        if kind in _IPS:
            trie = self._v6 if ":" in entry.value else self._v4
            if trie.has_key(entry.value):
                trie.get(entry.value).append(entry)
            else:
                trie.insert(entry.value, [entry])
            return
        self._exact.setdefault(_namespace(kind), {}).setdefault(entry.value, []).append(entry)

    # -- look-ups ------------------------------------------------------------------------
    def entries(self, kind: T, value: str) -> list[Entry]:
        """The indicators a normalised observable matches, most specific first."""
        if kind in _IPS:
            return self._networks(value)
        if kind in _NAMES:
            return self._name_entries(value)
        table = self._exact.get(_namespace(kind))
        found = list(table.get(value, ())) if table else []
        if kind is T.URL:
            found.extend(self._host_entries(url_host(value)))
        elif kind is T.EMAIL:
            found.extend(self._host_entries(value.rpartition("@")[2]))
        return found

    def _name_entries(self, name: str) -> list[Entry]:
        """The name itself, then each parent that is not a public suffix."""
        names = self._names
        found = list(names.get(name, ()))
        dot = name.find(".")
        while dot != -1:
            parent = name[dot + 1 :]
            listed = names.get(parent)
            if listed and not is_public_suffix(parent):
                found.extend(listed)
            dot = name.find(".", dot + 1)
        return found

    def _host_entries(self, host: str) -> list[Entry]:
        host = host.strip("[]")
        if not host:
            return []
        if (host[0].isdigit() or ":" in host) and is_ip(host):  # no name starts so and parses
            return self._networks(host)
        return self._name_entries(host)

    def _networks(self, value: str) -> list[Entry]:
        trie = self._v6 if ":" in value else self._v4
        try:
            prefix = trie.get_key(value)
        except (ValueError, KeyError, TypeError):
            return []
        found: list[Entry] = []
        while prefix is not None:
            found.extend(trie.get(prefix))
            prefix = trie.parent(prefix)
        return found

    def warninglisted(self, kind: T | str, value: str) -> list[str]:
        """Names of the warninglists a value is on (cached)."""
        if kind not in self._warn.kinds:
            return _NOT_LISTED
        key = (kind, value)  # a T is a str: T.IPV4 and "ipv4" are the same key
        names = self._warned.get(key)
        if names is None:
            names = self._warn.check(T(kind), value)
            if len(self._warned) < 1_000_000:
                self._warned[key] = names
        return names

    def match(self, kind: T, value: str) -> list[Hit]:
        """Hits of one normalised observable."""
        entries = self.entries(kind, value)
        if not entries:
            return []
        observed = self.warninglisted(kind, value)
        return [self._hit(kind, value, entry, observed) for entry in entries]

    def _hit(self, kind: T, value: str, entry: Entry, observed: list[str]) -> Hit:
        names = sorted({*observed, *self.warninglisted(entry.type, entry.value)})
        meta = entry.meta
        return Hit.model_construct(  # every field is ours and already typed: skip validation
            kind="indicator",
            observable=f"{kind.value}:{value}",
            indicator=entry.value,
            indicator_type=entry.type,
            source=meta.source,
            event_uuid=meta.event_uuid or None,
            event_info=meta.event_info,
            threat_level=meta.threat_level,
            tags=list(meta.tags),
            suppressed=bool(names),
            meta={"warninglists": names} if names else {},
            rule=None,
            namespace=None,
        )

    def match_value(self, value: str) -> list[Hit]:
        """Hits of a free-text value (type guessed; InvalidInput when no type fits)."""
        kind, normal = parse_value(value)
        return self.match(kind, normal)


def parse_value(value: str) -> tuple[T, str]:
    """Guess the type of ``value`` and normalise it."""
    text = refang(value)
    kind = guess_type(text)
    if kind is None:
        raise InvalidInput(
            f"cannot tell what {value[:80]!r} is (IP, network, URL, e-mail, hash or domain)",
            field="value",
        )
    return kind, normalize(kind, text)


class IntelMatcher:
    """An IntelIndex kept current: rebuilt when the store's version moves or it gets old."""

    def __init__(self, store: IntelStore, max_age_seconds: float = 3600.0) -> None:
        self.store = store
        self.max_age_seconds = max_age_seconds
        self._index: IntelIndex | None = None

    def index(self) -> IntelIndex:
        """The current index (one version query; a rebuild only when something changed)."""
        current = self._index
        if (
            current is None
            or self.store.version() != current.version
            or (time.monotonic() - current.built_at > self.max_age_seconds)
        ):
            current = self._index = IntelIndex.from_store(self.store)
        return current

    @property
    def current(self) -> IntelIndex | None:
        """The index built last, without checking the store (None before the first build)."""
        return self._index

    def match_value(self, value: str) -> list[Hit]:
        """Hits of a free-text value against the current index."""
        return self.index().match_value(value)
