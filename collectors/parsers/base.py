"""The parser seam: ``name``, a cheap ``sniff(head)``, and a streaming ``parse(report)``.

A parser never raises for a bad record: it yields a ParseFailure (source, line or record
number, raw text, reason) and goes on with the rest of the input.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

import orjson

from pukara.core.schema import Alert, ParseFailure, RawReport, Record

SNIFF_BYTES = 8192
MAX_LINE_BYTES = 4 * 1024 * 1024


@runtime_checkable
class Parser(Protocol):
    """What every parser class provides."""

    name: ClassVar[str]
    #: lower numbers are sniffed first (more specific formats before generic ones)
    priority: ClassVar[int]

    def sniff(self, head: bytes) -> bool:
        """True if ``head`` (the first bytes of a report) looks like this format."""
        ...

    def parse(self, report: RawReport) -> Iterator[Record]:
        """Stream records (and ParseFailures) out of ``report.stream``."""
        ...


@dataclass(frozen=True, slots=True)
class Repeat:
    """An event a keyed parse's caller already knows (see :class:`KeyedParser`): its key and
    time only, no Alert built."""

    key: bytes
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class KeyedAlert:
    """An alert and its event's repeat key (None when the event has none)."""

    alert: Alert
    key: bytes | None


Keyed = Record | Repeat | KeyedAlert


@runtime_checkable
class KeyedParser(Protocol):
    """A parser that can skip events its caller has seen (the bulk ingest's workers).

    An event's *repeat key* is shared by two events only if their alerts get the same
    observables, rule and classification — hence, at the same time bucket and entity, the
    same fingerprint and correlation keys. ``known(key, observed_at)`` says whether the
    caller already has an alert for it."""

    def parse_keyed(self, report: RawReport,
                    known: Callable[[bytes, datetime], bool]) -> Iterator[Keyed]:
        """:meth:`Parser.parse`, each alert as a :class:`KeyedAlert`, known events as a
        :class:`Repeat`."""
        ...


def source_name(report: RawReport) -> str:
    """How a failure names its input: the file name, else the source."""
    return report.filename or report.source


def iter_lines(report: RawReport) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` without the newline, skipping blank lines.

    Lines longer than MAX_LINE_BYTES are yielded truncated; the caller's JSON decode will
    then fail and report that line.
    """
    stream = report.stream
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield number, line


def iter_json_objects(
    report: RawReport,
) -> Iterator[tuple[int, dict[str, Any] | ParseFailure]]:
    """NDJSON: yield ``(line, object)`` or ``(line, ParseFailure)`` for each non-blank line."""
    where = source_name(report)
    for number, line in iter_lines(report):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, failure(where, number, line, f"not valid JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield number, failure(where, number, line, "a JSON line must be an object")
            continue
        yield number, value


def failure(
    where: str, line: int | None, raw: bytes | str, reason: str, record: int | None = None
) -> ParseFailure:
    """A ParseFailure with the raw text decoded leniently."""
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    return ParseFailure(source=where, line=line, record=record, raw=text, reason=reason)


def peek(stream: io.BufferedIOBase | io.BytesIO, size: int = SNIFF_BYTES) -> bytes:
    """Read the head of a seekable stream and rewind."""
    position = stream.tell()
    head = stream.read(size)
    stream.seek(position)
    return head
