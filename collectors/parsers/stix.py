"""STIX 2.1 bundles, read with the ``stix2`` library.

``sighting`` and ``observed-data`` become Alerts whose observables come from the referenced
cyber-observables (refs are followed one level: network-traffic → addresses, email-message →
addresses). ``indicator`` objects whose pattern is a simple comparison, or an OR of them,
become Indicators; any other pattern is a ParseFailure "pattern not a simple comparison".
TLP marking definitions (the four predefined ones, or any ``tlp`` definition in the bundle)
give the TLP. A single object that is not a bundle is read as a bundle of one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import orjson
import stix2
from pydantic import ValidationError
from stix2.pattern_visitor import create_pattern_object
from stix2.patterns import (
    EqualityComparisonExpression,
    ObservationExpression,
    OrBooleanExpression,
    OrObservationExpression,
)

from collectors.parsers.base import failure, source_name
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType
from pukara.core.schema import Alert, Flow, Indicator, Observable, RawReport, Record
from pukara.core.taxonomy import TLP

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
NOT_SIMPLE = "pattern not a simple comparison"
IMPORTED_TYPES = frozenset({"sighting", "observed-data", "indicator"})

PREDEFINED_TLP = {
    stix2.TLP_WHITE.id: TLP.CLEAR,
    stix2.TLP_GREEN.id: TLP.GREEN,
    stix2.TLP_AMBER.id: TLP.AMBER,
    stix2.TLP_RED.id: TLP.RED,
}
_VALUE_TYPES = {
    "ipv4-addr": ObservableType.IPV4,
    "ipv6-addr": ObservableType.IPV6,
    "domain-name": ObservableType.DOMAIN,
    "url": ObservableType.URL,
    "email-addr": ObservableType.EMAIL,
    "mac-addr": ObservableType.MAC,
}
_HASHES = {
    "md5": ObservableType.MD5,
    "sha-1": ObservableType.SHA1,
    "sha1": ObservableType.SHA1,
    "sha-256": ObservableType.SHA256,
    "sha256": ObservableType.SHA256,
    "sha-512": ObservableType.SHA512,
    "sha512": ObservableType.SHA512,
}


def _observable_type(object_type: str, path: list[str], value: str) -> ObservableType | None:
    """The observable type of ``object_type:path`` (e.g. ``file:hashes.'SHA-256'``)."""
    if object_type in _VALUE_TYPES and path == ["value"]:
        kind = _VALUE_TYPES[object_type]
        is_ip = kind in (ObservableType.IPV4, ObservableType.IPV6)
        return ObservableType.CIDR if is_ip and "/" in value else kind
    if object_type == "file" and len(path) == 2 and path[0] == "hashes":
        return _HASHES.get(path[1].lower())
    if object_type == "file" and path == ["name"]:
        return ObservableType.FILENAME
    if object_type == "autonomous-system" and path == ["number"]:
        return ObservableType.ASN
    return None


def simple_comparisons(pattern: str) -> list[tuple[ObservableType, str]] | str:
    """``[(type, value), …]`` for a pattern of '=' comparisons joined by OR, else a reason."""
    try:
        tree = create_pattern_object(pattern, version="2.1")
    except Exception as exc:
        return f"invalid STIX pattern: {exc}"
    found: list[tuple[ObservableType, str]] = []
    pending: list[Any] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, OrObservationExpression | OrBooleanExpression):
            pending.extend(reversed(node.operands))
        elif isinstance(node, ObservationExpression):
            pending.append(node.operand)
        elif isinstance(node, EqualityComparisonExpression) and not node.negated:
            path = [str(part.property_name) for part in node.lhs.property_path]
            value = str(node.rhs.value)
            kind = _observable_type(node.lhs.object_type_name, path, value)
            if kind is None:
                return f"{NOT_SIMPLE}: {node.lhs} is not an observable Pukara matches"
            found.append((kind, value))
        else:
            return NOT_SIMPLE
    return found


class StixBundleParser:
    """STIX 2.1 bundles: sightings and observed data → Alerts, indicators → Indicators."""

    name: ClassVar[str] = "stix"
    priority: ClassVar[int] = 20

    def sniff(self, head: bytes) -> bool:
        """A JSON object with STIX's ``spec_version`` or ``"type": "bundle"``."""
        text = head.lstrip()
        if not text.startswith(b"{"):
            return False
        compact = text.replace(b" ", b"")
        return b'"type":"bundle"' in compact or b'"spec_version":"2.' in compact

    def parse(self, report: RawReport) -> Iterator[Record]:
        """Every importable object of the bundle; a bad object is a ParseFailure."""
        where = source_name(report)
        data = report.stream.read(MAX_BUNDLE_BYTES + 1)
        if len(data) > MAX_BUNDLE_BYTES:
            yield failure(where, None, data[:200], f"bundle larger than {MAX_BUNDLE_BYTES} bytes")
            return
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield failure(where, None, data[:2048], f"not valid JSON: {exc}")
            return
        if not isinstance(document, dict):
            yield failure(where, None, data[:2048], "a STIX document must be a JSON object")
            return
        yield from _Bundle(report, where, document).records()


class _Bundle:
    """One bundle's objects, indexed by id so refs can be followed."""

    def __init__(self, report: RawReport, where: str, document: dict[str, Any]) -> None:
        self.report = report
        self.where = where
        self.single = document.get("type") != "bundle"
        objects = [document] if self.single else document.get("objects")
        self.raw_objects: list[Any] = objects if isinstance(objects, list) else []
        self.by_id: dict[str, Any] = {}
        self.tlp_by_marking: dict[str, TLP] = dict(PREDEFINED_TLP)

    def records(self) -> Iterator[Record]:
        if not self.raw_objects:
            yield failure(self.where, None, "", "bundle has no objects")
            return
        parsed: list[tuple[int, Any]] = []
        for number, raw in enumerate(self.raw_objects, start=1):
            try:
                item = stix2.parse(raw, allow_custom=True, version="2.1")
            except Exception as exc:
                yield self._failure(number, raw, f"not a valid STIX 2.1 object: {exc}")
                continue
            parsed.append((number, item))
            if isinstance(item, dict) or not hasattr(item, "id"):
                continue
            self.by_id[item.id] = item
            self._learn_marking(item)
        sighted = {ref for _, o in parsed if _type(o) == "sighting" for ref in _refs(o)}
        emitted = 0
        for number, item in parsed:
            kind = _type(item)
            if kind == "indicator":
                produced = list(self._indicator(number, item))
            elif kind == "sighting":
                produced = [self._sighting(number, item)]
            elif kind == "observed-data" and item.id not in sighted:
                produced = [self._observed(number, item)]
            else:
                continue
            emitted += len(produced)
            yield from produced
        if not emitted and not any(isinstance(o, dict) for _, o in parsed) and parsed:
            types = sorted({_type(o) for _, o in parsed})
            shape = f"a single {types[0]!r} object, not a bundle" if self.single else "bundle"
            reason = f"{shape}: no sighting, observed-data or indicator (types: {types})"
            yield failure(self.where, None, "", reason)

    def _failure(self, number: int, raw: Any, reason: str) -> Record:
        text = orjson.dumps(raw).decode() if isinstance(raw, dict | list) else str(raw)
        return failure(self.where, None, text, reason, record=number)

    def _learn_marking(self, item: Any) -> None:
        if _type(item) != "marking-definition":
            return
        definition = item.get("definition") or {}
        label = definition.get("tlp") if isinstance(definition, dict) else None
        name = str(item.get("name", ""))
        label = label or (name if name.upper().startswith("TLP") else None)
        if label:
            try:
                self.tlp_by_marking[item.id] = TLP.parse(str(label))
            except InvalidInput:
                return

    def tlp(self, item: Any, default: TLP) -> TLP:
        """The most restrictive TLP among the object's markings, else ``default``."""
        found = [self.tlp_by_marking[m] for m in item.get("object_marking_refs", []) or []
                 if m in self.tlp_by_marking]  # fmt: skip
        return max(found, key=lambda t: t.rank) if found else default

    def _indicator(self, number: int, item: Any) -> Iterator[Record]:
        comparisons = simple_comparisons(str(item.get("pattern", "")))
        if isinstance(comparisons, str):
            yield self._failure(number, _plain(item), comparisons)
            return
        for kind, value in comparisons:
            try:
                yield Indicator(
                    type=kind,
                    value=value,
                    source=self.report.source[:128],
                    event_uuid=item.id,
                    event_info=(item.get("name") or item.get("description") or item.id)[:512],
                    tags=[*(item.get("indicator_types") or []), *(item.get("labels") or [])],
                    tlp=self.tlp(item, TLP.GREEN),
                    first_seen=item.get("valid_from"),
                    expires_at=item.get("valid_until"),
                )
            except (InvalidInput, ValidationError) as exc:
                yield self._failure(number, _plain(item), f"indicator value rejected: {exc}")

    def _sighting(self, number: int, item: Any) -> Record:
        observables: list[Observable] = []
        flow: Flow | None = None
        for ref in item.get("observed_data_refs", []) or []:
            observed = self.by_id.get(ref)
            if observed is not None:
                more, more_flow = self._observables_of(observed)
                observables.extend(more)
                flow = flow or more_flow
        target = self.by_id.get(item.sighting_of_ref)
        name = target.get("name") if target is not None else None
        if target is not None and _type(target) == "indicator":
            found = simple_comparisons(str(target.get("pattern", "")))
            for kind, value in found if isinstance(found, list) else []:
                _add(observables, kind, value, "indicator")
        extra = {
            "stix_id": item.id,
            "sighting_of_ref": item.sighting_of_ref,
            "count": item.get("count"),
            "where_sighted_refs": list(item.get("where_sighted_refs", []) or []),
        }
        when = item.get("last_seen") or item.get("first_seen") or item.created
        title = f"STIX sighting of {name or item.sighting_of_ref}"
        return self._alert(
            number,
            item=item,
            title=title,
            when=when,
            observables=observables,
            flow=flow,
            extra=extra,
        )

    def _observed(self, number: int, item: Any) -> Record:
        observables, flow = self._observables_of(item)
        count = item.get("number_observed")
        extra = {"stix_id": item.id, "number_observed": count}
        title = f"STIX observed data ({count} observation(s))"
        when = item.get("last_observed") or item.created
        return self._alert(
            number,
            item=item,
            title=title,
            when=when,
            observables=observables,
            flow=flow,
            extra=extra,
        )

    def _alert(
        self,
        number: int,
        *,
        item: Any,
        title: str,
        when: datetime,
        observables: list[Observable],
        flow: Flow | None,
        extra: dict[str, Any],
    ) -> Record:
        try:
            return Alert(
                source=self.report.source[:64] or "stix",
                source_ref=item.id,
                entity_id=self.report.entity_id,
                title=title[:512],
                description=str(item.get("description") or "")[:100_000],
                tlp=self.tlp(item, TLP.AMBER),
                observed_at=when,
                received_at=self.report.received_at,
                observables=observables,
                flow=flow,
                extra={k: v for k, v in extra.items() if v not in (None, [])},
                raw=item.serialize(),
                exercise_id=self.report.exercise_id,
            )
        except (InvalidInput, ValidationError) as exc:
            return self._failure(number, _plain(item), f"cannot build the alert: {exc}")

    def _observables_of(self, observed: Any) -> tuple[list[Observable], Flow | None]:
        """Observables of an observed-data: its object_refs (2.1) or embedded objects (2.0)."""
        scos: list[Any] = [self.by_id[r] for r in observed.get("object_refs", []) or []
                           if r in self.by_id]  # fmt: skip
        embedded = observed.get("objects") or {}
        scos.extend(embedded.values() if isinstance(embedded, dict) else [])
        observables: list[Observable] = []
        flow: Flow | None = None
        for sco in scos:
            if _type(sco) == "network-traffic":
                flow = flow or self._traffic(sco, observables, embedded)
            else:
                _add_sco(observables, sco, "observed", self._resolver(embedded))
        return observables, flow

    def _resolver(self, embedded: Any) -> Any:
        def resolve(ref: str) -> Any:
            if isinstance(embedded, dict) and ref in embedded:
                return embedded[ref]
            return self.by_id.get(ref)

        return resolve

    def _traffic(self, sco: Any, observables: list[Observable], embedded: Any) -> Flow | None:
        resolve = self._resolver(embedded)
        ends: dict[str, str | None] = {}
        for end in ("src", "dst"):
            target = resolve(sco.get(f"{end}_ref", "")) if sco.get(f"{end}_ref") else None
            ends[end] = target.get("value") if target is not None else None
            if target is not None:
                _add_sco(observables, target, end, resolve)
        protocols = sco.get("protocols") or []
        try:
            return Flow(
                src_ip=ends["src"],
                dst_ip=ends["dst"],
                src_port=sco.get("src_port"),
                dst_port=sco.get("dst_port"),
                proto=str(protocols[-1])[:16] if protocols else None,
            )
        except ValidationError:
            return None


def _type(item: Any) -> str:
    return str(item.get("type", "")) if hasattr(item, "get") else ""


def _refs(item: Any) -> list[str]:
    return list(item.get("observed_data_refs", []) or [])


def _plain(item: Any) -> Any:
    return orjson.loads(item.serialize()) if hasattr(item, "serialize") else item


def _add(observables: list[Observable], kind: ObservableType, value: Any, role: str) -> None:
    try:
        made = Observable(type=kind, value=str(value), role=role)
    except (InvalidInput, ValidationError):
        return
    if made not in observables:
        observables.append(made)


def _add_sco(observables: list[Observable], sco: Any, role: str, resolve: Any) -> None:
    """The observables of one cyber-observable, following its address refs one level."""
    kind = _type(sco)
    value = sco.get("value")
    value_type = _observable_type(kind, ["value"], str(value)) if value is not None else None
    if kind in _VALUE_TYPES and value_type is not None:
        _add(observables, value_type, value, role)
    elif kind == "file":
        for algorithm, digest in (sco.get("hashes") or {}).items():
            if str(algorithm).lower() in _HASHES:
                _add(observables, _HASHES[str(algorithm).lower()], digest, role)
        if sco.get("name"):
            _add(observables, ObservableType.FILENAME, sco["name"], role)
    elif kind == "autonomous-system" and sco.get("number") is not None:
        _add(observables, ObservableType.ASN, sco["number"], role)
    elif kind == "email-message":
        for ref in [sco.get("from_ref"), sco.get("sender_ref"), *(sco.get("to_refs") or [])]:
            target = resolve(ref) if ref else None
            if target is not None and _type(target) == "email-addr":
                _add(observables, ObservableType.EMAIL, target.get("value"), role)
