"""Shadowserver CSV reports: one generic, table-driven CSV parser.

The report type comes from ``report.metadata["report_type"]``, else from the Shadowserver
file name (``2019-01-01-scan_ftp-test-geo.csv``), else from the header
(``shadowserver_reports.by_header``). The type's row in ``shadowserver_reports.REPORTS``
gives classification, severity and which columns are IPs, ports, hostnames, ASNs …; every
other non-empty column is kept in ``extra``. One Alert per row. Entities are not resolved
here: the constituency enricher routes on the observables and flow.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import PurePath
from typing import ClassVar

from pydantic import ValidationError

from collectors.parsers.base import failure, source_name
from collectors.parsers.shadowserver_reports import GENERIC, REPORTS, ReportType, Role, by_header
from pukara.core.errors import InvalidInput
from pukara.core.observables import ObservableType
from pukara.core.schema import (
    Alert,
    Classification,
    Flow,
    Observable,
    ParseFailure,
    RawReport,
    Record,
)

_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}-")
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_ASCII_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_DIGITS_AND_DOTS = re.compile(r"^[0-9.]+$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
_CACHE_SIZE = 4096
_GEO_COLUMNS = frozenset({"geo", "src_geo", "dst_geo", "http_referer_geo"})
_IP_ROLES = {Role.SRC_IP: "src", Role.DST_IP: "dst"}
_NAME_ROLES = {Role.SRC_HOSTNAME: "src", Role.DST_HOSTNAME: "dst", Role.HOST: "host"}
_ASN_ROLES = {Role.SRC_ASN: "src", Role.DST_ASN: "dst"}
_OTHER_ROLES = {
    Role.URL: ObservableType.URL,
    Role.MD5: ObservableType.MD5,
    Role.SHA256: ObservableType.SHA256,
}


def report_type_from_filename(filename: str) -> ReportType | None:
    """``2019-01-01-scan_ftp-test-geo.csv`` → the ``scan_ftp`` report type (longest match)."""
    stem = PurePath(filename).name.removesuffix(".csv")
    stem = _DATE_PREFIX.sub("", stem)
    best: ReportType | None = None
    for name, report in REPORTS.items():
        matches = stem == name or stem.startswith(name + "-")
        if matches and (best is None or len(name) > len(best.name)):
            best = report
    return best


def detect_report_type(report: RawReport, header: list[str]) -> ReportType:
    """Metadata first, then the file name, then the header."""
    named = report.metadata.get("report_type")
    if isinstance(named, str) and named in REPORTS:
        return REPORTS[named]
    from_name = report_type_from_filename(report.filename) if report.filename else None
    return from_name or by_header(header)


@lru_cache(maxsize=4096)
def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace(" UTC", "").replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ip(text: str) -> tuple[ObservableType, str] | None:
    """An IP address, or a network (blocklist rows carry CIDRs in the ``ip`` column).

    A dotted quad without leading zeros is already what ``ipaddress`` would print, so it is
    accepted by a regular expression; everything else goes through ``ipaddress``.
    """
    if _CANONICAL_IPV4.match(text):
        return ObservableType.IPV4, text
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if "/" not in text:
            return None
        try:
            return ObservableType.CIDR, ipaddress.ip_network(text, strict=False).compressed
        except ValueError:
            return None
    kind = ObservableType.IPV4 if address.version == 4 else ObservableType.IPV6
    return kind, address.compressed


def _port(text: str) -> int | None:
    if not text.isdigit():
        return None
    number = int(text)
    return number if number <= 65535 else None


def _observable(kind: ObservableType, value: str, role: str) -> Observable | None:
    """A validated Observable, with fast paths for the values every row has.

    ``model_construct`` is used only where the value is already in the kernel's canonical
    form: a compressed IP from ``ipaddress``, a decimal ASN in range, and a lower-case ASCII
    host name of valid labels (for ASCII input the kernel's IDNA step is the identity; the
    tests check the two paths agree). Anything else takes the full validating path.
    """
    if kind is ObservableType.HOSTNAME:
        text = value.rstrip(".").lower()
        if len(text) <= 253 and _ASCII_NAME.match(text) and not _DIGITS_AND_DOTS.match(text):
            return Observable.model_construct(type=kind, value=text, role=role)
    elif kind is ObservableType.ASN and value.isdigit() and 0 < int(value) < 2**32:
        return Observable.model_construct(type=kind, value=str(int(value)), role=role)
    try:
        return Observable(type=kind, value=value, role=role)
    except (InvalidInput, ValueError):
        return None


@dataclass(slots=True)
class _Plan:
    """Column indices resolved once per header, so each row is a few index look-ups."""

    report: ReportType
    width: int
    timestamp: int | None
    ips: list[tuple[int, str, str]]
    ports: dict[str, int]
    names: list[tuple[int, str]]
    asns: list[tuple[int, str]]
    others: list[tuple[int, ObservableType]]
    proto: int | None
    required: list[tuple[int, str]]
    missing: list[str]
    extra: list[tuple[int, str]]
    required_ips: list[tuple[int, str]]

    @classmethod
    def build(cls, report: ReportType, header: list[str]) -> _Plan:
        plan = cls(report, len(header), None, [], {}, [], [], [], None, [], [], [], [])
        position = {column: index for index, column in enumerate(header)}
        plan.required = [(position[c], c) for c in report.required if c in position]
        plan.missing = [c for c in report.required if c not in position]
        plan.required_ips = [
            (i, c) for i, c in plan.required if report.role_of(c) in (Role.SRC_IP, Role.DST_IP)
        ]
        for index, column in enumerate(header):
            plan._place(index, column, report.role_of(column))
        return plan

    def _place(self, index: int, column: str, role: Role | None) -> None:
        if role is Role.TIMESTAMP:
            self.timestamp = index
        elif role in _IP_ROLES:
            self.ips.append((index, _IP_ROLES[role], column))
        elif role is Role.SRC_PORT or role is Role.DST_PORT:
            self.ports["src" if role is Role.SRC_PORT else "dst"] = index
        elif role in _NAME_ROLES:
            self.names.append((index, _NAME_ROLES[role]))
        elif role in _ASN_ROLES:
            self.asns.append((index, _ASN_ROLES[role]))
        elif role in _OTHER_ROLES:
            self.others.append((index, _OTHER_ROLES[role]))
        elif role is Role.PROTO:
            self.proto = index
        else:
            self.extra.append((index, column))


class ShadowserverParser:
    """Shadowserver CSV reports (all report types in ``shadowserver_reports``)."""

    name: ClassVar[str] = "shadowserver"
    priority: ClassVar[int] = 30

    def sniff(self, head: bytes) -> bool:
        """A CSV header with ``timestamp`` and a Shadowserver geo column."""
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().lstrip("\ufeff")
        columns = {c.strip().strip('"') for c in first.split(",")}
        return "timestamp" in columns and bool(columns & _GEO_COLUMNS)

    def parse(self, report: RawReport) -> Iterator[Record]:
        """One Alert per row; a short, long or unreadable row is a ParseFailure."""
        where = source_name(report)
        text = io.TextIOWrapper(report.stream, encoding="utf-8", errors="replace", newline="")
        try:
            yield from self._rows(report, where, csv.reader(text))
        finally:
            text.detach()

    def _rows(self, report: RawReport, where: str, reader: Iterator[list[str]]) -> Iterator[Record]:
        header = _next_row(reader)
        if not isinstance(header, list) or not header:
            reason = header.reason if isinstance(header, ParseFailure) else "empty report"
            yield failure(where, 1, "", f"no CSV header: {reason}")
            return
        header = [column.strip().lstrip("\ufeff") for column in header]
        plan = _Plan.build(detect_report_type(report, header), header)
        if plan.missing:
            reason = f"header lacks required column(s) {', '.join(plan.missing)}"
            yield failure(where, 1, ",".join(header), reason)
            return
        try:
            builder = _AlertBuilder(plan, report, where)
        except (ValidationError, InvalidInput) as exc:
            yield failure(where, None, report.source, f"unusable report metadata: {exc}")
            return
        last_line = getattr(reader, "line_num", 1)
        while True:
            row = _next_row(reader)
            line = last_line + 1
            last_line = getattr(reader, "line_num", last_line + 1)
            if row is None:
                return
            if isinstance(row, ParseFailure):
                yield failure(where, line, row.raw, row.reason)
            elif row:
                yield builder.build(row, line)


def _next_row(reader: Iterator[list[str]]) -> list[str] | ParseFailure | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        return ParseFailure(source="", reason=f"unreadable CSV: {exc}")


class _AlertBuilder:
    """Turns one row into an Alert, following a _Plan."""

    def __init__(self, plan: _Plan, report: RawReport, where: str) -> None:
        """Validate everything that is the same for every row once, in a template Alert.

        Raises pydantic's ValidationError when the report itself is unusable (e.g. a source
        name longer than the schema allows).
        """
        self.plan = plan
        self.where = where
        kind = plan.report
        template = Alert(
            source=report.source or "shadowserver",
            entity_id=report.entity_id,
            title=kind.title if kind is not GENERIC else "Shadowserver report row",
            classification=Classification(taxonomy=kind.taxonomy, type=kind.type),
            severity=kind.severity,
            received_at=report.received_at,
            signature=kind.title,
            signature_id=kind.name,
            tags=[f"shadowserver:{kind.name}"],
            exercise_id=report.exercise_id,
        )
        self.constant = template.model_dump(
            include={"source", "entity_id", "title", "severity", "tlp", "received_at"}
            | {"signature", "signature_id", "exercise_id", "description", "raw"}
        )
        self.classification = template.classification
        self.tag = template.tags[0]
        self.default_observed = template.received_at
        self.asn_cache: dict[tuple[str, str], Observable] = {}

    def build(self, row: list[str], line: int) -> Alert | ParseFailure:
        plan = self.plan
        if len(row) != plan.width:
            reason = f"row has {len(row)} columns, the header has {plan.width}"
            return failure(self.where, line, ",".join(row), reason)
        for index, column in plan.required:
            if not row[index]:
                return failure(self.where, line, ",".join(row), f"missing value for {column!r}")
        extra = {column: row[index] for index, column in plan.extra if row[index]}
        try:
            observed = _timestamp(row[plan.timestamp]) if plan.timestamp is not None else None
        except ValueError:
            return failure(self.where, line, ",".join(row), "timestamp is not a date and time")
        observables, flow = self._observables(row, extra)
        for _, column in plan.required_ips:
            if f"invalid_{column}" in extra:
                return failure(self.where, line, ",".join(row), f"{column!r} is not an IP address")
        return self._alert(line, observed, observables, flow, extra)

    def _observables(
        self, row: list[str], extra: dict[str, str]
    ) -> tuple[list[Observable], Flow | None]:
        plan = self.plan
        observables: list[Observable] = []
        addresses: dict[str, str] = {}
        for index, role, column in plan.ips:
            if value := row[index]:
                parsed = _ip(value)
                if parsed is None:
                    extra[f"invalid_{column}"] = value
                    continue
                if parsed[0] is not ObservableType.CIDR:
                    addresses[role] = parsed[1]
                observables.append(
                    Observable.model_construct(type=parsed[0], value=parsed[1], role=role)
                )
        for index, role in plan.names:
            if (value := row[index]) and value not in addresses.values():
                self._add(observables, ObservableType.HOSTNAME, value, role, extra)
        for index, role in plan.asns:
            if (value := row[index]) and value != "0":
                self._add_asn(observables, value, role, extra)
        for index, kind in plan.others:
            if value := row[index]:
                self._add(observables, kind, value, "context", extra)
        return observables, self._flow(row, addresses)

    def _add_asn(
        self, observables: list[Observable], value: str, role: str, extra: dict[str, str]
    ) -> None:
        """ASNs repeat across rows; Observables are frozen, so one instance is shared."""
        cached = self.asn_cache.get((value, role))
        if cached is None:
            if len(self.asn_cache) >= _CACHE_SIZE:
                self.asn_cache.clear()
            cached = _observable(ObservableType.ASN, value, role)
            if cached is None:
                extra[f"invalid_{role}_asn"] = value
                return
            self.asn_cache[(value, role)] = cached
        observables.append(cached)

    def _add(
        self,
        observables: list[Observable],
        kind: ObservableType,
        value: str,
        role: str,
        extra: dict[str, str],
    ) -> None:
        made = _observable(kind, value, role)
        if made is None:
            extra[f"invalid_{role}_{kind.value}"] = value
        elif all(made.value != seen.value or made.type != seen.type for seen in observables):
            observables.append(made)

    def _flow(self, row: list[str], addresses: dict[str, str]) -> Flow | None:
        plan = self.plan
        src_port = _port(row[plan.ports["src"]]) if "src" in plan.ports else None
        dst_port = _port(row[plan.ports["dst"]]) if "dst" in plan.ports else None
        proto = (row[plan.proto] or None) if plan.proto is not None else None
        if not addresses and src_port is None and dst_port is None:
            return None
        return Flow(
            src_ip=addresses.get("src"),
            src_port=src_port,
            dst_ip=addresses.get("dst"),
            dst_port=dst_port,
            proto=proto[:16] if proto else None,
        )

    def _alert(
        self,
        line: int,
        observed: datetime | None,
        observables: list[Observable],
        flow: Flow | None,
        extra: dict[str, str],
    ) -> Alert:
        """A validated Alert; the observables, already canonical, are attached afterwards so
        pydantic does not normalise each of them a second time."""
        alert = Alert(
            source_ref=f"{self.where}:{line}"[-256:],
            classification=self.classification.model_copy(),
            observed_at=observed or self.default_observed,
            flow=flow,
            tags=[self.tag],
            extra=extra,
            **self.constant,
        )
        alert.observables = observables
        return alert
