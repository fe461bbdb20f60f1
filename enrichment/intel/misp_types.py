"""MISP attribute types → Pukara observable types (a table, not an ``if`` chain).

A composite MISP type (``domain|ip``, ``filename|sha1``) splits on ``|`` into parts; each
part maps to one observable type, or ``None`` to drop that part (a port). ``"ip"`` means
IPv4 or IPv6 (or a CIDR when the value has a ``/``), decided by the value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from types import MappingProxyType
from typing import Literal

from pukara.core.observables import ObservableType as T

Part = T | Literal["ip"] | None

MISP_TYPES: MappingProxyType[str, tuple[Part, ...]] = MappingProxyType(
    {
        "ip-src": ("ip",),
        "ip-dst": ("ip",),
        "ip-src|port": ("ip", None),
        "ip-dst|port": ("ip", None),
        "domain": (T.DOMAIN,),
        "hostname": (T.HOSTNAME,),
        "domain|ip": (T.DOMAIN, "ip"),
        "hostname|port": (T.HOSTNAME, None),
        "url": (T.URL,),
        "email": (T.EMAIL,),
        "email-src": (T.EMAIL,),
        "email-dst": (T.EMAIL,),
        "md5": (T.MD5,),
        "sha1": (T.SHA1,),
        "sha256": (T.SHA256,),
        "sha512": (T.SHA512,),
        "filename": (T.FILENAME,),
        "filename|md5": (T.FILENAME, T.MD5),
        "filename|sha1": (T.FILENAME, T.SHA1),
        "filename|sha256": (T.FILENAME, T.SHA256),
        "filename|sha512": (T.FILENAME, T.SHA512),
        "malware-sample": (T.FILENAME, T.MD5),
        "AS": (T.ASN,),
        "user-agent": (T.USER_AGENT,),
        "vulnerability": (T.CVE,),
        "mac-address": (T.MAC,),
        "ja3-fingerprint-md5": (T.JA3,),
        "ja4-fingerprint": (T.JA4,),
    }
)

_IP_TYPES = frozenset({T.IPV4, T.IPV6, T.CIDR})
_NAME_TYPES = frozenset({T.DOMAIN, T.HOSTNAME})


def ip_kind(value: str) -> T:
    """IPv4, IPv6 or CIDR, by the text (an unparsable value is called IPv4 and then fails)."""
    if "/" in value:
        return T.CIDR
    return T.IPV6 if ":" in value else T.IPV4


def split_attribute(misp_type: str, value: str) -> Iterator[tuple[T, str]] | None:
    """The (observable type, raw value) parts of a MISP attribute; None for an unknown type."""
    parts = MISP_TYPES.get(misp_type)
    if parts is None:
        return None
    values = value.split("|", len(parts) - 1) if len(parts) > 1 else [value]
    return _pairs(parts, values)


def _pairs(parts: tuple[Part, ...], values: list[str]) -> Iterator[tuple[T, str]]:
    for part, raw in zip(parts, values, strict=False):
        if part is None:
            continue
        if part == "ip":
            yield ip_kind(raw.strip()), raw
        else:
            yield part, raw


def observable_types(misp_type: str) -> frozenset[T]:
    """Every observable type a MISP attribute type can stand for (for matching_attributes)."""
    found: set[T] = set()
    for part in MISP_TYPES.get(misp_type, ()):
        if part == "ip":
            found |= _IP_TYPES
        elif part in _NAME_TYPES:
            found |= _NAME_TYPES
        elif part is not None:
            found.add(part)
    if misp_type in ("uri", "link"):
        found.add(T.URL)
    return frozenset(found)


def is_ip(value: str) -> bool:
    """True when ``value`` parses as an IP address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
