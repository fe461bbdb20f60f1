"""Helpers shared by the parsers: timestamps, cheap observables, IntelMQ-style field mapping.

- :func:`parse_time` reads ISO 8601 strings (``Z``, ``+0000``, ``+00:00``, space instead of
  ``T``) and epoch seconds (int, float or numeric string) into an aware UTC datetime.
- :func:`make_observable` builds an :class:`Observable` through a bounded LRU cache. Values
  are normalised once per distinct ``(type, value, role)``; Observable is frozen, so one
  instance can be shared by many alerts. Invalid values give ``None`` instead of raising.
- :func:`alert_from_fields` turns a flat record keyed by IntelMQ harmonisation names
  (``source.ip``, ``classification.type``, ``time.source`` …) into an :class:`Alert`; keys it
  does not map are kept in ``extra`` under their own names. The IntelMQ, generic CSV/JSON and
  (if its author wants) Shadowserver parsers use it.
- :class:`SkipCounter`: parsers count what they deliberately do not turn into records
  (e.g. Suricata ``stats`` events) in ``parser.skipped`` so nothing is dropped silently.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError

from collectors.parsers.base import failure, iter_lines, source_name
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType
from pukara.core.schema import (
    MAX_TEXT,
    MAX_TITLE,
    Alert,
    Classification,
    Flow,
    Observable,
    ParseFailure,
    RawReport,
)
from pukara.core.taxonomy import TLP, Severity

OT = ObservableType
MAX_OBSERVABLES = 200
SkipCounter = Counter[str]


def json_lines(report: RawReport) -> Iterator[tuple[int, bytes, dict[str, Any] | ParseFailure]]:
    """NDJSON: ``(line_number, original_line, object)``, or a ParseFailure in place of the
    object when the line is not JSON or not an object."""
    where = source_name(report)
    for number, line in iter_lines(report):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, line, failure(where, number, line, f"not valid JSON: {exc}")
            continue
        if not isinstance(value, dict):
            reason = f"a line must be a JSON object, not {type(value).__name__}"
            yield number, line, failure(where, number, line, reason)
            continue
        yield number, line, value


def reason_of(exc: Exception) -> str:
    """A one-line reason for a ParseFailure; pydantic errors name each field."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False)[:10]:
            where = ".".join(str(p) for p in error["loc"]) or "record"
            parts.append(f"{where}: {error['msg']}")
        return "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text or epoch seconds; None if empty.

    Raises ValueError for a value that is present but not a time.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {type(value).__name__}")
    text = value.strip()
    if text and (text[0].isdigit() and text.replace(".", "", 1).isdigit()):
        return datetime.fromtimestamp(float(text), UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


_FAST = {
    OT.IPV4: fast_ipv4,
    OT.DOMAIN: fast_domain,
    OT.HOSTNAME: fast_domain,
    OT.URL: fast_url,
}


@lru_cache(maxsize=1 << 16)
def make_observable(kind: ObservableType, value: str, role: str | None = None) -> Observable | None:
    """A normalised Observable, or None when ``value`` is not a valid ``kind``."""
    fast = _FAST.get(kind)
    canonical = fast(value) if fast is not None else None
    if canonical is not None:
        return Observable.model_construct(type=kind, value=canonical, role=role)
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


def clip(text: Any, limit: int = MAX_TITLE) -> str:
    """``text`` as a one-line string no longer than ``limit``."""
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def as_port(value: Any) -> int | None:
    """A port number from an int or numeric string; None when absent or not a port."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 0 <= port <= 65535 else None


_CHECKED_TEXT = {"source": 64, "source_ref": 256, "title": MAX_TITLE, "signature": MAX_TITLE}
_CHECKED_TEXT |= {"signature_id": 64, "description": MAX_TEXT}


# Every field is passed explicitly: model_construct inspects default factories per call.
_LIST_FIELDS = ("observables", "attachments", "hits", "tags")
_PLAIN_DEFAULTS: dict[str, Any] = {
    name: info.default
    for name, info in Alert.model_fields.items()
    if info.default_factory is None and not info.is_required() and name not in _LIST_FIELDS
}
_UNDETERMINED = Classification(taxonomy="other", type="undetermined")


def build_alert(**fields: Any) -> Alert:
    """An Alert from parts the parser already validated, without re-validating them.

    ``Alert(...)`` re-runs every Observable's normaliser (a model ``after`` validator runs even
    on instances), which dominates parse time at a million lines. Parsers that build each part
    from validated pieces (Observables from :func:`make_observable`, a validated ``Flow``,
    a ``Classification`` instance, enum severities, aware UTC datetimes) use this instead.
    Text fields are still checked here; anything else unexpected falls back to ``Alert(...)``.
    """
    for name, limit in _CHECKED_TEXT.items():
        value = fields.get(name)
        if value is not None and (
            not isinstance(value, str) or len(value) > limit or value != value.strip()
        ):
            return Alert(**fields)
    if not fields.get("source") or not fields.get("title"):
        return Alert(**fields)
    for name in ("observed_at", "received_at"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            return Alert(**fields)
    if fields.get("observed_at") and fields["observed_at"].tzinfo is not UTC:
        fields["observed_at"] = fields["observed_at"].astimezone(UTC)
    if fields.get("received_at") and fields["received_at"].tzinfo is not UTC:
        fields["received_at"] = fields["received_at"].astimezone(UTC)
    for name in _LIST_FIELDS:
        fields.setdefault(name, [])
    fields.setdefault("extra", {})
    for name, default in _PLAIN_DEFAULTS.items():
        fields.setdefault(name, default)
    if "classification" not in fields:
        fields["classification"] = _UNDETERMINED.model_copy()
    if "observed_at" not in fields or "received_at" not in fields:
        now = datetime.now(UTC)
        fields.setdefault("received_at", now)
        fields.setdefault("observed_at", fields["received_at"])
    return Alert.model_construct(**fields)


def stamp(alert: Alert, report: RawReport) -> Alert:
    """Give ``alert`` the report's reception time and exercise, and its entity when the
    report came through an authenticated channel (the report's entity wins)."""
    alert.received_at = report.received_at
    alert.exercise_id = report.exercise_id
    if report.entity_id:
        alert.entity_id = report.entity_id
    return alert


# ---- IntelMQ harmonisation names → Alert -------------------------------------------------

_ADDRESS_FIELDS: dict[str, tuple[ObservableType | None, str]] = {
    "source.ip": (None, "src"),
    "source.fqdn": (OT.DOMAIN, "src"),
    "source.url": (OT.URL, "src"),
    "source.reverse_dns": (OT.HOSTNAME, "src"),
    "source.asn": (OT.ASN, "src"),
    "source.network": (OT.CIDR, "src"),
    "source.account": (OT.EMAIL, "src"),
    "destination.ip": (None, "dst"),
    "destination.fqdn": (OT.DOMAIN, "dst"),
    "destination.url": (OT.URL, "dst"),
    "destination.reverse_dns": (OT.HOSTNAME, "dst"),
    "destination.asn": (OT.ASN, "dst"),
    "destination.network": (OT.CIDR, "dst"),
    "malware.hash.md5": (OT.MD5, "file"),
    "malware.hash.sha1": (OT.SHA1, "file"),
    "malware.hash.sha256": (OT.SHA256, "file"),
}
_USED_FIELDS = frozenset(
    {
        *_ADDRESS_FIELDS,
        "source.port",
        "destination.port",
        "protocol.transport",
        "classification.taxonomy",
        "classification.type",
        "classification.identifier",
        "feed.name",
        "time.source",
        "event_description.text",
        "tlp",
        "severity",
        "raw",
    }
)
_TLP_NAMES = {"white": TLP.CLEAR, "clear": TLP.CLEAR, "green": TLP.GREEN, "amber": TLP.AMBER}
_TLP_NAMES |= {"amber+strict": TLP.AMBER_STRICT, "amber-strict": TLP.AMBER_STRICT, "red": TLP.RED}
_SEVERITY_NAMES = {s.value: s for s in Severity} | {"unknown": Severity.LOW}


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested objects into dotted keys (``{"source": {"ip": x}}`` → ``source.ip``)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _classification(fields: Mapping[str, Any], extra: dict[str, Any]) -> Classification | None:
    taxonomy, type_ = fields.get("classification.taxonomy"), fields.get("classification.type")
    if not type_:
        return None
    try:
        if not taxonomy:
            return Classification.parse(str(type_)) if "/" in str(type_) else None
        return Classification(taxonomy=str(taxonomy), type=str(type_))
    except ValueError as exc:
        extra["classification.invalid"] = f"{taxonomy}/{type_}: {exc}"
        return None


def _observables(fields: Mapping[str, Any], extra: dict[str, Any]) -> list[Observable]:
    bag = ObservableBag()
    for name, (kind, role) in _ADDRESS_FIELDS.items():
        value = fields.get(name)
        if value in (None, ""):
            continue
        text = str(value)
        found = ip_observable(text, role) if kind is None else make_observable(kind, text, role)
        if found is None:
            extra[f"invalid.{name}"] = text[:256]
        bag.add(found)
    return bag.items


def _raw_text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "backslashreplace")
    except (binascii.Error, ValueError):
        return value


def _title(fields: Mapping[str, Any], classification: Classification | None) -> str:
    for name in ("event_description.text", "classification.identifier", "malware.name"):
        if fields.get(name):
            return clip(fields[name])
    what = str(classification) if classification else "event"
    where = fields.get("source.ip") or fields.get("source.fqdn") or fields.get("source.url")
    return clip(f"{what} {where}" if where else what)


def alert_from_fields(
    fields: Mapping[str, Any], *, default_source: str, raw: str | None = None
) -> Alert:
    """An Alert from IntelMQ-named fields; unmapped keys go to ``extra`` unchanged.

    Raises ValueError (or a pydantic ValidationError, also a ValueError) when a mapped value
    cannot be used, e.g. an unparsable ``time.source``; invalid observable values are kept
    in ``extra`` as ``invalid.<field>`` instead.
    """
    extra: dict[str, Any] = {k: v for k, v in fields.items() if k not in _USED_FIELDS}
    classification = _classification(fields, extra)
    decoded = _raw_text(fields.get("raw"))
    if decoded is not None:
        extra["raw.decoded"] = decoded[:100_000]
    tlp = _TLP_NAMES.get(str(fields.get("tlp") or "amber").strip().lower(), TLP.AMBER)
    severity = _SEVERITY_NAMES.get(str(fields.get("severity") or "low").lower(), Severity.LOW)
    src_port, dst_port = as_port(fields.get("source.port")), as_port(fields.get("destination.port"))
    src_ip, dst_ip = fields.get("source.ip"), fields.get("destination.ip")
    flow = None
    if src_ip or dst_ip:
        flow = Flow(
            src_ip=str(src_ip) if src_ip else None,
            src_port=src_port,
            dst_ip=str(dst_ip) if dst_ip else None,
            dst_port=dst_port,
            proto=str(fields["protocol.transport"])[:16]
            if fields.get("protocol.transport")
            else None,
        )
    values: dict[str, Any] = {
        "source": clip(fields.get("feed.name") or default_source, 64),
        "title": _title(fields, classification),
        "description": str(fields.get("event_description.text") or "")[:100_000],
        "severity": severity,
        "tlp": tlp,
        "signature": clip(fields["classification.identifier"])
        if fields.get("classification.identifier")
        else None,
        "flow": flow,
        "observables": _observables(fields, extra),
        "extra": extra,
        "raw": raw,
    }
    if classification is not None:
        values["classification"] = classification
    observed = parse_time(fields.get("time.source"))
    if observed is not None:
        values["observed_at"] = observed
    return Alert(**values)
