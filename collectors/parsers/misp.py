"""An entity's MISP event export, loaded with ``pymisp.MISPEvent``.

Accepted shapes: ``{"Event": …}``, the REST ``{"response": [{"Event": …}, …]}`` and a bare
event object. Each event gives one Alert whose observables are the ``to_ids`` attributes
(object attributes included), typed by ``MISP_TYPES``. ``rsit:``/``ecsirt:`` machine tags give
the classification (else other/undetermined), ``tlp:`` tags the TLP, ``threat_level_id`` the
severity. With ``report.metadata["as_indicators"]`` each ``to_ids`` attribute is also yielded
as an Indicator (the intel loader uses that).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError
from pymisp import MISPAttribute, MISPEvent
from pymisp.exceptions import PyMISPError

from collectors.parsers.base import failure, source_name
from pukara.core.errors import InvalidInput, PukaraError
from pukara.core.observables import ObservableType
from pukara.core.schema import (
    Alert,
    Classification,
    Indicator,
    Observable,
    RawReport,
    Record,
    undetermined,
)
from pukara.core.taxonomy import TLP, Severity

MAX_EXPORT_BYTES = 128 * 1024 * 1024
_CLASS_TAG = re.compile(r'^(?:rsit|ecsirt):([a-z-]+)="([^"]+)"$', re.IGNORECASE)
SEVERITY_BY_THREAT_LEVEL = {
    1: Severity.HIGH,
    2: Severity.MEDIUM,
    3: Severity.LOW,
    4: Severity.INFO,
}

_IP = "ip"  # resolved to ipv4, ipv6 or cidr from the value
#: MISP attribute type → observable type of each '|'-separated part (None: not an observable)
MISP_TYPES: dict[str, tuple[str | None, ...]] = {
    "ip-src": (_IP,),
    "ip-dst": (_IP,),
    "ip-src|port": (_IP, None),
    "ip-dst|port": (_IP, None),
    "domain": ("domain",),
    "hostname": ("hostname",),
    "domain|ip": ("domain", _IP),
    "hostname|port": ("hostname", None),
    "url": ("url",),
    "email": ("email",),
    "email-src": ("email",),
    "email-dst": ("email",),
    "email-reply-to": ("email",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "sha512": ("sha512",),
    "filename": ("filename",),
    "filename|md5": ("filename", "md5"),
    "filename|sha1": ("filename", "sha1"),
    "filename|sha256": ("filename", "sha256"),
    "filename|sha512": ("filename", "sha512"),
    "AS": ("asn",),
    "mac-address": ("mac",),
    "user-agent": ("user-agent",),
    "vulnerability": ("cve",),
    "ja3-fingerprint-md5": ("ja3",),
}


def _role(misp_type: str) -> str | None:
    if misp_type.startswith("ip-src"):
        return "src"
    if misp_type.startswith("ip-dst"):
        return "dst"
    return None


def _ip_type(value: str) -> ObservableType:
    if "/" in value:
        return ObservableType.CIDR
    return ObservableType.IPV6 if ":" in value else ObservableType.IPV4


def attribute_values(misp_type: str, value: str) -> list[tuple[ObservableType, str]]:
    """The ``(type, value)`` observables of one MISP attribute ([] for unmapped types)."""
    kinds = MISP_TYPES.get(misp_type)
    if kinds is None:
        return []
    parts = value.split("|") if len(kinds) > 1 else [value]
    found: list[tuple[ObservableType, str]] = []
    for kind, part in zip(kinds, parts, strict=False):
        if kind is None or not part.strip():
            continue
        found.append((_ip_type(part.strip()) if kind == _IP else ObservableType(kind), part))
    return found


class MispEventParser:
    """MISP event JSON exports: one Alert per event, optionally Indicators."""

    name: ClassVar[str] = "misp"
    priority: ClassVar[int] = 20

    def sniff(self, head: bytes) -> bool:
        """A JSON object with an ``Event``, or a bare event (with ``Attribute``)."""
        text = head.lstrip()
        if not text.startswith(b"{"):
            return False
        return b'"Event"' in text or b'"Attribute"' in text

    def parse(self, report: RawReport) -> Iterator[Record]:
        """Every event of the export; an unreadable export or event is a ParseFailure."""
        where = source_name(report)
        data = report.stream.read(MAX_EXPORT_BYTES + 1)
        if len(data) > MAX_EXPORT_BYTES:
            yield failure(where, None, data[:200], f"export larger than {MAX_EXPORT_BYTES} bytes")
            return
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield failure(where, None, data[:2048], f"not valid JSON: {exc}")
            return
        events = _events(document)
        if isinstance(events, str):
            yield failure(where, None, data[:2048], events)
            return
        for number, raw_event in enumerate(events, start=1):
            yield from _EventReader(report, where, number).read(raw_event)


def _events(document: Any) -> list[Any] | str:
    """The raw event objects of an export, or why there are none."""
    if isinstance(document, dict) and isinstance(document.get("response"), list):
        return list(document["response"])
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and ("Event" in document or "info" in document):
        return [document]
    return "not a MISP event export: expected 'Event', 'response' or an event object"


class _EventReader:
    """Reads one event: its Alert, failures for rejected values, optionally Indicators."""

    def __init__(self, report: RawReport, where: str, number: int) -> None:
        self.report = report
        self.where = where
        self.number = number

    def read(self, raw_event: Any) -> Iterator[Record]:
        event = MISPEvent()
        try:
            event.load(raw_event)
        except (PukaraError, PyMISPError, ValueError, KeyError, TypeError,
                AttributeError) as exc:
            text = orjson.dumps(raw_event, default=str).decode()[:2048]
            yield failure(self.where, None, text, f"not a MISP event: {exc}", self.number)
            return
        tags = [str(tag.name) for tag in event.tags]
        tlp = _tlp(tags)
        observables: list[Observable] = []
        indicators: list[Indicator] = []
        as_indicators = bool(self.report.metadata.get("as_indicators"))
        unmapped: dict[str, int] = {}
        for attribute in _to_ids_attributes(event):
            pairs = attribute_values(str(attribute.type), str(attribute.value))
            if not pairs:
                unmapped[str(attribute.type)] = unmapped.get(str(attribute.type), 0) + 1
            for kind, value in pairs:
                try:
                    observable = Observable(type=kind, value=value, role=_role(attribute.type))
                    if as_indicators:
                        indicators.append(self._indicator(event, attribute, observable, tlp))
                except (InvalidInput, ValidationError) as exc:
                    yield self._rejected(attribute, exc)
                    continue
                if observable not in observables:
                    observables.append(observable)
        yield self._alert(event, tags, tlp, observables, unmapped)
        yield from indicators

    def _rejected(self, attribute: MISPAttribute, exc: Exception) -> Record:
        raw = f"{attribute.type}: {attribute.value}"
        reason = f"attribute {attribute.get('uuid', '?')} value rejected: {_why(exc)}"
        return failure(self.where, None, raw, reason, self.number)

    def _alert(
        self,
        event: MISPEvent,
        tags: list[str],
        tlp: TLP,
        observables: list[Observable],
        unmapped: dict[str, int],
    ) -> Record:
        threat = _int(event.get("threat_level_id"))
        extra: dict[str, Any] = {
            "event_uuid": event.get("uuid"),
            "event_id": event.get("id"),
            "org": _org(event),
            "threat_level_id": threat,
            "analysis": _int(event.get("analysis")),
            "to_ids_not_mapped": unmapped,
        }
        try:
            return Alert(
                source=self.report.source[:64] or "misp",
                source_ref=str(event.get("uuid") or "")[:256] or None,
                entity_id=self.report.entity_id,
                title=str(event.info or "MISP event")[:512],
                classification=_classification(tags),
                severity=SEVERITY_BY_THREAT_LEVEL.get(threat or 4, Severity.INFO),
                tlp=tlp,
                observed_at=_when(event),
                received_at=self.report.received_at,
                observables=observables,
                tags=tags,
                extra={k: v for k, v in extra.items() if v not in (None, {}, "")},
                exercise_id=self.report.exercise_id,
            )
        except (InvalidInput, ValidationError) as exc:
            raw = str(event.get("uuid") or event.info)
            reason = f"cannot build the alert: {_why(exc)}"
            return failure(self.where, None, raw, reason, self.number)

    def _indicator(
        self, event: MISPEvent, attribute: MISPAttribute, observable: Observable, tlp: TLP
    ) -> Indicator:
        attribute_tags = [str(tag.name) for tag in attribute.tags]
        return Indicator(
            type=observable.type,
            value=observable.value,
            source=self.report.source[:128],
            event_uuid=event.get("uuid"),
            event_info=str(event.info or "")[:512] or None,
            threat_level=_int(event.get("threat_level_id")),
            org=_org(event),
            tags=[str(tag.name) for tag in event.tags] + attribute_tags,
            tlp=_tlp(attribute_tags, tlp),
            to_ids=True,
            first_seen=attribute.get("first_seen"),
            last_seen=attribute.get("last_seen"),
        )


def _why(exc: Exception) -> str:
    """A one-line reason: pydantic's first error message, else the exception text."""
    if isinstance(exc, ValidationError) and exc.errors():
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return str(exc)


def _to_ids_attributes(event: MISPEvent) -> Iterator[MISPAttribute]:
    for attribute in event.attributes:
        if attribute.to_ids:
            yield attribute
    for misp_object in event.objects:
        for attribute in misp_object.attributes:
            if attribute.to_ids:
                yield attribute


def _classification(tags: list[str]) -> Classification:
    for tag in tags:
        match = _CLASS_TAG.match(tag.strip())
        if match:
            try:
                return Classification(taxonomy=match.group(1), type=match.group(2))
            except (InvalidInput, ValidationError):
                continue
    return undetermined()


def _tlp(tags: list[str], default: TLP = TLP.AMBER) -> TLP:
    """The most restrictive ``tlp:`` tag, else ``default``."""
    found: list[TLP] = []
    for tag in tags:
        if tag.lower().startswith("tlp:"):
            try:
                found.append(TLP.parse(tag))
            except InvalidInput:
                continue
    return max(found, key=lambda t: t.rank) if found else default


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _org(event: MISPEvent) -> str | None:
    for key in ("Orgc", "Org", "orgc", "org"):
        org: Any = event.get(key)
        name = org.get("name") if org is not None and hasattr(org, "get") else None
        if name:
            return str(name)
    return None


def _when(event: MISPEvent) -> datetime:
    stamp = event.get("timestamp")
    if isinstance(stamp, datetime):
        return stamp
    day = event.get("date")
    if isinstance(day, date):
        return datetime(day.year, day.month, day.day)
    return datetime.now().astimezone()
