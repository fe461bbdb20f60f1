"""Observables built cheaply: fast paths for already-canonical values, a bounded cache, a bag.

:func:`make_observable` builds an :class:`Observable` through a bounded LRU cache; values
are normalised once per distinct ``(type, value, role)`` and Observable is frozen, so one
instance is shared by many alerts. Invalid values give ``None`` instead of raising.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType
from pukara.core.schema import Observable, construct

OT = ObservableType
MAX_OBSERVABLES = 200

# Fast paths. The kernel's normalize() is exact but costly (ipaddress, IDNA for every
# name). For the common case of a value that is *already* canonical, the functions below
# prove it cheaply and return the canonical text, or None to fall back to normalize().
# tests/collectors/test_fuzz_parsers_a.py checks with Hypothesis that whenever a fast path
# answers, its answer equals normalize()'s.
_DEFANG_MARKS = frozenset("[](){}")
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_URL_UNSAFE = frozenset("#[](){}\\") | {chr(c) for c in range(33)} | {chr(127)}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def fast_ipv4(value: str) -> str | None:
    """``value`` if it is a canonical dotted-quad IPv4 address, else None."""
    parts = value.split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()):
            return None
        if (part[0] == "0" and len(part) > 1) or int(part) > 255:
            return None
    return value


def fast_domain(value: str) -> str | None:
    """The canonical form of a plain ASCII host name, or None if it needs the full path."""
    if not value.isascii() or len(value) > 253 or _DEFANG_MARKS.intersection(value):
        return None
    text = value.rstrip(".").lower()
    if not text or text.startswith(("hxxp", "fxp")) or "xn--" in text:
        return None
    for label in text.split("."):
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return None
        if not _LABEL_CHARS.issuperset(label):
            return None
    if fast_ipv4(text) is not None:
        return None
    return text


def fast_url(value: str) -> str | None:
    """The canonical form of a simple ``scheme://host[:port]/path[?query]`` URL, or None."""
    scheme, sep, rest = value.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or len(value) > 4096:
        return None
    netloc, slash, path = rest.partition("/")
    if not slash or path.endswith("?") or _URL_UNSAFE.intersection(path):
        return None
    host, colon, port = netloc.partition(":")
    if colon:
        if not (port.isascii() and port.isdigit() and len(port) <= 5) or port[0] == "0":
            return None
        if int(port) > 65535:
            return None
        if int(port) == _DEFAULT_PORTS[scheme]:
            colon = port = ""
    canonical_host = fast_ipv4(host) or fast_domain(host)
    if canonical_host is None or (colon and not port):
        return None
    return f"{scheme}://{canonical_host}{colon}{port}/{path}"


_HEX_DIGITS = frozenset("0123456789abcdef")
_HEX_LENGTHS = {OT.MD5: 32, OT.SHA1: 40, OT.SHA256: 64}


def fast_hex(kind: ObservableType, value: str) -> str | None:
    """The lower-case form of an md5/sha1/sha256 of the right length, else None."""
    text = value.lower()
    if len(text) != _HEX_LENGTHS[kind] or not _HEX_DIGITS.issuperset(text):
        return None
    return text


_FAST = {
    OT.MD5: lambda value: fast_hex(OT.MD5, value),
    OT.SHA1: lambda value: fast_hex(OT.SHA1, value),
    OT.SHA256: lambda value: fast_hex(OT.SHA256, value),
    OT.IPV4: fast_ipv4,
    OT.DOMAIN: fast_domain,
    OT.HOSTNAME: fast_domain,
    OT.URL: fast_url,
}


@lru_cache(maxsize=1 << 18)
def make_observable(kind: ObservableType, value: str, role: str | None = None) -> Observable | None:
    """A normalised Observable, or None when ``value`` is not a valid ``kind``."""
    fast = _FAST.get(kind)
    canonical = fast(value) if fast is not None else None
    if canonical is not None:
        return construct(Observable, {"type": kind, "value": canonical, "role": role})
    try:
        return Observable(type=kind, value=value, role=role)
    except (InvalidInput, ValueError):
        return None


def ip_observable(value: Any, role: str | None = None) -> Observable | None:
    """An ipv4 or ipv6 Observable (chosen by the presence of ':'), or None."""
    if not isinstance(value, str) or not value:
        return None
    return make_observable(OT.IPV6 if ":" in value else OT.IPV4, value, role)


def host_observable(value: Any, role: str | None = None) -> Observable | None:
    """An IP observable if ``value`` is an address, else a hostname; None if neither."""
    if not isinstance(value, str) or not value:
        return None
    first = value[0]
    if first.isdigit() or first == "[" or ":" in value:
        found = ip_observable(value.strip("[]"), role)
        if found is not None:
            return found
    return make_observable(OT.HOSTNAME, value, role)


class ObservableBag:
    """Collects observables in order without duplicates, remembering values that were invalid."""

    __slots__ = ("_seen", "invalid", "items")

    def __init__(self) -> None:
        self.items: list[Observable] = []
        self.invalid: list[str] = []
        self._seen: set[Observable] = set()

    def add(self, found: Observable | None, original: Any = None) -> None:
        """Add ``found``; when it is None and ``original`` was given, remember it as invalid."""
        if found is None:
            if original not in (None, ""):
                self.invalid.append(str(original)[:256])
            return
        if found not in self._seen and len(self.items) < MAX_OBSERVABLES:
            self._seen.add(found)
            self.items.append(found)

    def typed(self, kind: ObservableType, value: Any, role: str | None = None) -> None:
        """Add ``value`` as ``kind`` if it is a non-empty string."""
        if isinstance(value, str) and value:
            self.add(make_observable(kind, value, role), value)
