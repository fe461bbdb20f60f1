"""Observable types and the normalisation every value gets on construction.

Normalising once, here, is what lets matching be a dictionary look-up: domains are
lower-cased and IDNA-encoded, IPs canonical, URLs refanged with a lower-case scheme and host,
hashes lower-case hex. Defanged forms (``hxxp://``, ``example[.]com``) are understood.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

import idna

from pukara.core.errors import InvalidInput

MAX_VALUE_LENGTH = 4096


class ObservableType(StrEnum):
    """The kinds of observable Pukara knows."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    HOSTNAME = "hostname"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    FILENAME = "filename"
    ASN = "asn"
    MAC = "mac"
    USER_AGENT = "user-agent"
    CVE = "cve"
    JA3 = "ja3"
    JA4 = "ja4"


_HEX_LENGTHS = {
    ObservableType.MD5: 32,
    ObservableType.SHA1: 40,
    ObservableType.SHA256: 64,
    ObservableType.SHA512: 128,
    ObservableType.JA3: 32,
}
_HEX = re.compile(r"^[0-9a-f]+$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_JA4 = re.compile(r"^[a-z0-9]{10}_[0-9a-f]{12}_[0-9a-f]{12}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEFANG = [
    (re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.I), "."),
    (re.compile(r"\[:\]"), ":"),
    (re.compile(r"\[@\]|\[at\]|\(at\)", re.I), "@"),
    (re.compile(r"^hxxp", re.I), "http"),
    (re.compile(r"^fxp", re.I), "ftp"),
    (re.compile(r"\[://\]"), "://"),
]


def refang(value: str) -> str:
    """Undo common defanging: ``hxxp://evil[.]com`` → ``http://evil.com``."""
    text = value.strip()
    for pattern, replacement in _DEFANG:
        text = pattern.sub(replacement, text)
    return text


def _fail(kind: str, value: str, why: str) -> InvalidInput:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return InvalidInput(f"invalid {kind} {shown!r}: {why}", field="value")


def normalize_domain(value: str, kind: str = "domain") -> str:
    """Lower-case, strip the root dot, IDNA-encode (UTS 46) and check each label."""
    text = refang(value).rstrip(".").lower()
    if not text or len(text) > 253:
        raise _fail(kind, value, "empty or longer than 253 characters")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise _fail(kind, value, "is an IP address, not a name")
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            raise _fail(kind, value, "not a valid internationalised name") from None
    labels = text.split(".")
    if any(not _LABEL.match(label) for label in labels):
        raise _fail(kind, value, "labels must be 1-63 letters, digits, '-' or '_'")
    return text


def _normalize_ip(value: str, version: int) -> str:
    text = refang(value)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _fail(f"ipv{version}", value, "not an IP address") from None
    if address.version != version:
        raise _fail(f"ipv{version}", value, f"is an IPv{address.version} address")
    return address.compressed


def _normalize_cidr(value: str) -> str:
    try:
        return ipaddress.ip_network(refang(value), strict=False).compressed
    except ValueError:
        raise _fail("cidr", value, "not a network in CIDR notation") from None


def _normalize_url(value: str) -> str:
    text = refang(value)
    if "://" not in text:
        raise _fail("url", value, "has no scheme")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _fail("url", value, str(exc)) from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if not host:
        raise _fail("url", value, "has no host")
    try:
        host = ipaddress.ip_address(host.strip("[]")).compressed
        if ":" in host:
            host = f"[{host}]"
    except ValueError:
        host = normalize_domain(host, "url host")
    default_ports = {"http": 80, "https": 443, "ftp": 21}
    netloc = host
    if port is not None and default_ports.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username:
        userinfo = parts.username + (f":{parts.password}" if parts.password else "")
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _normalize_email(value: str) -> str:
    text = refang(value)
    if text.count("@") != 1:
        raise _fail("email", value, "must contain exactly one '@'")
    local, domain = text.split("@")
    if not local or len(local) > 64 or any(c in local for c in ' <>(),;:"[]\\'):
        raise _fail("email", value, "invalid local part")
    return f"{local}@{normalize_domain(domain, 'email domain')}"


def _normalize_hex(kind: ObservableType, value: str) -> str:
    text = value.strip().lower()
    if len(text) != _HEX_LENGTHS[kind] or not _HEX.match(text):
        raise _fail(kind.value, value, f"must be {_HEX_LENGTHS[kind]} hexadecimal digits")
    return text


def _normalize_asn(value: str) -> str:
    text = value.strip().upper().removeprefix("AS").strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 2**32 - 1:
        raise _fail("asn", value, "must be AS number 1..4294967295")
    return str(int(text))


def _normalize_mac(value: str) -> str:
    text = value.strip().lower()
    if not _MAC.match(text):
        raise _fail("mac", value, "must be six hexadecimal octets")
    digits = re.sub(r"[:-]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _normalize_cve(value: str) -> str:
    text = value.strip().upper()
    if not _CVE.match(text):
        raise _fail("cve", value, "must look like CVE-2021-44228")
    return text


def _normalize_ja4(value: str) -> str:
    text = value.strip().lower()
    if not _JA4.match(text):
        raise _fail("ja4", value, "must look like t13d1516h2_8daaf6152771_02713d6af862")
    return text


def _normalize_text(kind: str, value: str) -> str:
    text = value.strip()
    if not text:
        raise _fail(kind, value, "is empty")
    if _CONTROL.search(text):
        raise _fail(kind, value, "contains control characters")
    return text


def normalize(kind: ObservableType, value: str) -> str:
    """Return the canonical form of ``value`` for ``kind`` or raise InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(f"observable value must be a string, not {type(value).__name__}")
    if len(value) > MAX_VALUE_LENGTH:
        raise _fail(kind.value, value, f"longer than {MAX_VALUE_LENGTH} characters")
    match kind:
        case ObservableType.IPV4:
            return _normalize_ip(value, 4)
        case ObservableType.IPV6:
            return _normalize_ip(value, 6)
        case ObservableType.CIDR:
            return _normalize_cidr(value)
        case ObservableType.DOMAIN | ObservableType.HOSTNAME:
            return normalize_domain(value, kind.value)
        case ObservableType.URL:
            return _normalize_url(value)
        case ObservableType.EMAIL:
            return _normalize_email(value)
        case ObservableType.MD5 | ObservableType.SHA1 | ObservableType.SHA256:
            return _normalize_hex(kind, value)
        case ObservableType.SHA512 | ObservableType.JA3:
            return _normalize_hex(kind, value)
        case ObservableType.ASN:
            return _normalize_asn(value)
        case ObservableType.MAC:
            return _normalize_mac(value)
        case ObservableType.CVE:
            return _normalize_cve(value)
        case ObservableType.JA4:
            return _normalize_ja4(value)
        case _:
            return _normalize_text(kind.value, value)


_GUESS_ORDER = (
    ObservableType.IPV4,
    ObservableType.IPV6,
    ObservableType.CIDR,
    ObservableType.URL,
    ObservableType.EMAIL,
    ObservableType.MD5,
    ObservableType.SHA1,
    ObservableType.SHA256,
    ObservableType.SHA512,
    ObservableType.CVE,
    ObservableType.DOMAIN,
)


def guess_type(value: str) -> ObservableType | None:
    """Best guess of an observable's type from its text, or None."""
    text = refang(value)
    for kind in _GUESS_ORDER:
        if kind is ObservableType.CIDR and "/" not in text:
            continue
        if kind is ObservableType.DOMAIN and "." not in text:
            continue
        try:
            normalize(kind, text)
        except InvalidInput:
            continue
        return kind
    return None
