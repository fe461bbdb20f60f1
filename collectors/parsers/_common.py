"""Helpers shared by the parsers: timestamps, cheap observables, IntelMQ-style field mapping.

- :func:`parse_time` reads ISO 8601 strings (``Z``, ``+0000``, ``+00:00``, space instead of
  ``T``) and epoch seconds (int, float or numeric string) into an aware UTC datetime.
- :func:`make_observable`, :func:`ip_observable`, :func:`host_observable` and
  :class:`ObservableBag` (re-exported from ``_observe``) build Observables cheaply.
- :func:`build_alert` assembles an Alert from validated parts without re-validating them.
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
from typing import Any

import orjson
from pydantic import ValidationError

from collectors.parsers._observe import (
    MAX_OBSERVABLES,
    OT,
    ObservableBag,
    host_observable,
    ip_observable,
    make_observable,
)
from collectors.parsers.base import failure, iter_lines, source_name
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
    construct,
)
from pukara.core.taxonomy import TLP, Severity, accepted_types

SkipCounter = Counter[str]
__all__ = [
    "MAX_OBSERVABLES",
    "OT",
    "ObservableBag",
    "alert_from_fields",
    "as_port",
    "build_alert",
    "clip",
    "flatten",
    "host_observable",
    "ip_observable",
    "json_lines",
    "make_observable",
    "parse_time",
    "reason_of",
    "stamp",
]


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


_TYPED_PARTS: tuple[tuple[str, Any], ...] = (
    ("classification", Classification),
    ("severity", Severity),
    ("tlp", TLP),
    ("flow", Flow | None),
    ("observed_at", datetime),
    ("received_at", datetime),
    ("extra", dict),
    ("observables", list),
    ("tags", list),
)
# Every field is passed explicitly: model_construct inspects default factories per call.
_LIST_FIELDS = ("observables", "attachments", "hits", "tags")
_PLAIN_DEFAULTS: dict[str, Any] = {
    name: info.default
    for name, info in Alert.model_fields.items()
    if info.default_factory is None and not info.is_required() and name not in _LIST_FIELDS
}


def _constructible(fields: dict[str, Any]) -> bool:
    """True when every part of ``fields`` is already of the type and size Alert wants."""
    for name, limit in _CHECKED_TEXT.items():
        value = fields.get(name)
        if value is not None and (
            not isinstance(value, str) or len(value) > limit or value != value.strip()
        ):
            return False
    if not fields.get("source") or not fields.get("title") or "classification" not in fields:
        return False
    for name, kind in _TYPED_PARTS:
        if name in fields and not isinstance(fields[name], kind):
            return False
    for name in ("observed_at", "received_at"):
        if fields.get(name) is not None and fields[name].utcoffset() is None:
            return False
    return all(isinstance(o, Observable) for o in fields.get("observables", ()))


def build_alert(**fields: Any) -> Alert:
    """An Alert from parts the parser already validated, without re-validating them.

    ``Alert(...)`` re-runs every Observable's normaliser (a model ``after`` validator runs even
    on instances), which dominates parse time at a million lines. Parsers that build each part
    from validated pieces (Observables from :func:`make_observable`, a validated ``Flow``,
    a ``Classification`` instance, enum severities, aware UTC datetimes) use this instead.
    The parts are still checked for type and size; anything unexpected goes to ``Alert(...)``.
    """
    if not _constructible(fields):
        return Alert(**fields)
    now = datetime.now(UTC)
    for name in ("observed_at", "received_at"):
        fields[name] = fields[name].astimezone(UTC) if fields.get(name) else now
    for name in _LIST_FIELDS:
        fields.setdefault(name, [])
    fields.setdefault("extra", {})
    for name, default in _PLAIN_DEFAULTS.items():
        fields.setdefault(name, default)
    # Classification is mutable: each alert gets its own copy of the parser's table entry.
    fields["classification"] = fields["classification"].model_copy()
    return construct(Alert, fields)


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


def class_of_type(type_: str) -> str | None:
    """The RSIT class of a type name when exactly one class has it (types are unique)."""
    wanted = type_.strip().lower()
    owners = [name for name, types in accepted_types().items() if wanted in types]
    return owners[0] if len(owners) == 1 else None


def _classification(fields: Mapping[str, Any], extra: dict[str, Any]) -> Classification | None:
    taxonomy, type_ = fields.get("classification.taxonomy"), fields.get("classification.type")
    if not type_:
        return None
    try:
        if not taxonomy:
            if "/" in str(type_):
                return Classification.parse(str(type_))
            taxonomy = class_of_type(str(type_))
            if taxonomy is None:
                extra["classification.invalid"] = f"type {type_!r} without a taxonomy"
                return None
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


def _flow_of(fields: Mapping[str, Any]) -> Flow | None:
    src_ip, dst_ip = fields.get("source.ip"), fields.get("destination.ip")
    if not src_ip and not dst_ip:
        return None
    proto = fields.get("protocol.transport")
    return Flow(
        src_ip=str(src_ip) if src_ip else None,
        src_port=as_port(fields.get("source.port")),
        dst_ip=str(dst_ip) if dst_ip else None,
        dst_port=as_port(fields.get("destination.port")),
        proto=str(proto)[:16] if proto else None,
    )


def alert_from_fields(
    fields: Mapping[str, Any],
    *,
    default_source: str,
    raw: str | None = None,
    default_time: datetime | None = None,
) -> Alert:
    """An Alert from IntelMQ-named fields; unmapped keys go to ``extra`` unchanged.

    Without ``time.source`` the alert is dated ``default_time`` (the report's reception).
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
    values: dict[str, Any] = {
        "source": clip(fields.get("feed.name") or default_source, 64),
        "title": _title(fields, classification),
        "description": str(fields.get("event_description.text") or "")[:100_000],
        "severity": severity,
        "tlp": tlp,
        "signature": clip(fields["classification.identifier"])
        if fields.get("classification.identifier")
        else None,
        "flow": _flow_of(fields),
        "observables": _observables(fields, extra),
        "extra": extra,
        "raw": raw,
    }
    if classification is not None:
        values["classification"] = classification
    observed = parse_time(fields.get("time.source")) or default_time
    if observed is not None:
        values["observed_at"] = observed
    return Alert(**values)


UNDETERMINED = Classification(taxonomy="other", type="undetermined")


def observation_fields(sensor: str, kind: str, bag: ObservableBag) -> dict[str, Any]:
    """Alert fields of a low-severity observation (a DNS answer, an HTTP request, a flow):
    titled by its first non-address observable, else its addresses; tagged for filtering."""
    detail = next((o.value for o in bag.items if o.role not in ("src", "dst")), "")
    addresses = " → ".join(o.value for o in bag.items[:2] if o.role in ("src", "dst"))
    return {
        "title": clip(f"{sensor.capitalize()} {kind}: {detail or addresses}"),
        "classification": UNDETERMINED,
        "severity": Severity.INFO,
        "tags": [sensor, "observation", kind],
    }
