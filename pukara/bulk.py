"""Parsing and stateless enrichment of line-delimited reports, across processes.

A report whose parser reads one independent record per line (``line_records = True``, e.g.
Suricata EVE) is cut into chunks of whole lines. Each chunk is parsed and enriched
(constituency, intel against one fixed index, YARA) in a forked worker process, which
returns *compact* results: each alert's store row (:func:`cases.services.alerts.sqlite_row`)
and its correlation input, not pydantic objects. Results come back in file order, with at most
a few chunks in flight, so memory stays flat whatever the file size. Everything with state —
correlation, the dedup fold, the store — stays in the calling process (see
:meth:`pukara.pipeline.Pipeline.ingest`).

A report that fits in one chunk, or ``workers == 1``, is handled in the calling process by
the same code, so small and large reports give identical rows. Workers are forked after the
intel index is built (and frozen out of the cyclic GC), so they share it copy-on-write and
never touch the database, and run at a lower priority than the calling process (the serial
stage). A repeat of an alert the same worker already sent comes back as a three-field repeat
row (fingerprint, last seen, count), with no intel work. Line numbers of parse failures are
those of the whole file. A worker that dies (killed, out of memory) stops the ingest with an
error naming the report; the batches committed before it stay, and ingesting the report
again folds them as repeats. Workers are forked only from a single-threaded process.
"""

from __future__ import annotations

import gc
import io
import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Protocol, runtime_checkable

import orjson
from sqlalchemy import Connection

from cases.services.alerts import COLUMNS, REPEAT_WIDTH, sqlite_row, sqlite_time
from collectors.parsers.base import MAX_LINE_BYTES, KeyedAlert, KeyedParser, Parser, Repeat
from collectors.registry import parser
from pukara.core.errors import PukaraError
from pukara.core.schema import FINGERPRINT_BUCKET, Alert, Hit, ParseFailure, RawReport, Record

log = logging.getLogger(__name__)

CHUNK_BYTES = 512 * 1024
#: chunks queued per worker: enough that the workers keep parsing while this process
#: correlates, writes and waits for a batch's commit (a batch is about 7 chunks of EVE)
IN_FLIGHT_PER_WORKER = 8
#: workers yield the CPU to the ingesting process (the serial stage, which keeps them fed) and
#: to interactive work; with 2 cores and 3 busy processes this gave +5% alerts/s
WORKER_NICE = 5

#: (entity_id, exercise_id or "", observed_at, fingerprint, correlation keys)
Seen = tuple[str, str, datetime, str, tuple[str, ...]]


class LocalStage(Protocol):
    """The stateless enrichment the workers run (see ``LiveEnrichment.local``)."""

    def route(self, alerts: list[Alert]) -> None:
        """What the alerts' fingerprints depend on (their entity), in place."""
        ...

    def annotate(self, alerts: list[Alert]) -> None:
        """Everything else (hits, severity), in place."""
        ...

    def correlation_keys(self, alert: Alert) -> tuple[str, ...]:
        """The alert's correlation keys."""
        ...


class Correlator(Protocol):
    """The stateful enricher the bulk path runs in this process."""

    def stage_seen(self, seen: Sequence[Seen]) -> list[tuple[int, str, str, int]]:
        """Record sightings; the (position, observable, campaign, entities) marks."""
        ...

    def persist(self, conn: Connection, *, defer_undo: bool = False) -> None:
        """Write what the staged batch keeps, in ``conn``'s transaction."""
        ...

    def undo_failed(self, conn: Connection) -> None:
        """Undo batches persisted with ``defer_undo`` whose commit failed."""
        ...

    def discard(self) -> None:
        """Undo a staged batch."""
        ...


@runtime_checkable
class SplitEnrichment(Protocol):
    """An enrichment the bulk path can split: stateless work for the worker processes
    (``local()``) and a correlator kept here."""

    @property
    def correlation(self) -> Correlator | None:
        """The stateful part."""
        ...

    def local(self) -> LocalStage:
        """The stateless part, bound to the current intel index."""
        ...


@dataclass(slots=True)
class Parsed:
    """One chunk's results, in file order."""

    rows: list[tuple[Any, ...]]
    seen: list[Seen | None]
    others: list[Record]
    skipped: int


@dataclass(frozen=True, slots=True)
class _Job:
    parser_class: type[Parser]
    source: str
    filename: str
    entity_id: str | None
    exercise_id: str | None
    received_at: datetime
    local: LocalStage
    bucket_seconds: int
    correlate: bool
    compact_repeats: bool


#: the job the forked workers inherit (set only while a pool runs)
_FORKED: dict[str, _Job] = {}
#: bound on the fingerprints, and on the events, a process remembers (~1 KB each with their
#: keys): past it they are forgotten, and repeats go as full rows until they are sent again
MAX_EMITTED = 1 << 18

#: what a known event gave: fingerprint, entity, exercise, correlation fingerprint, keys
Known = tuple[str, str | None, str, str, tuple[str, ...]]


@dataclass(slots=True)
class Sent:
    """What one process sent before in this report: the fingerprints sent as full rows
    (with their correlation keys), and the events that gave them, by repeat key and time
    bucket (a known event is not parsed again: see :class:`~collectors.parsers.base.
    KeyedParser`)."""

    prints: dict[str, tuple[str, ...]] = field(default_factory=dict)
    events: dict[tuple[bytes, int, int], Known] = field(default_factory=dict)

    @staticmethod
    def slot(key: bytes, observed: datetime, bucket_seconds: int) -> tuple[bytes, int, int]:
        """The event's place: its key and the time buckets its fingerprints use."""
        seconds = int(observed.timestamp())
        return key, seconds // max(1, bucket_seconds), seconds // FINGERPRINT_BUCKET

    def clear(self) -> None:
        """Forget everything."""
        self.prints.clear()
        self.events.clear()


#: a forked worker's :class:`Sent`
_SENT = Sent()


def parse_chunks(report: RawReport, parser_name: str, local: LocalStage, *, workers: int,
                 bucket_seconds: int, correlate: bool, compact_repeats: bool = False,
                 chunk_bytes: int | None = None) -> Iterator[Parsed]:
    """Parse and enrich ``report`` chunk by chunk, in ``workers`` processes (0 = one per CPU
    core); yields each chunk's :class:`Parsed` in file order.

    With ``compact_repeats``, an alert whose fingerprint the same process already sent as a
    full row in this report (so earlier in file order: its row is written first) comes as a
    :data:`~cases.services.alerts.RepeatRow`, without intel or YARA work (its stored row
    keeps the first one's hits, as an upsert would), its correlation keys those of the first
    one (the same set: a fingerprint covers every observable they come from).
    """
    job = _Job(type(parser(parser_name)), report.source, report.filename, report.entity_id,
               report.exercise_id, report.received_at, local, bucket_seconds, correlate,
               compact_repeats)
    sent = Sent()
    workers = workers or os.cpu_count() or 1
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    first = read_chunk(report.stream, chunk_bytes)
    second = read_chunk(report.stream, chunk_bytes) if first else b""
    if workers == 1 or not second or not _may_fork():
        line = 1
        while first:
            yield work_chunk(job, first, line, sent)
            line += first.count(b"\n")
            first, second = second, (read_chunk(report.stream, chunk_bytes) if second else b"")
        return
    _FORKED["job"] = job
    gc.collect()
    gc.freeze()  # the workers share the index copy-on-write: keep the GC off its pages
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker)
    try:
        yield from _ordered(pool, report.stream, (first, second), workers, chunk_bytes)
    except BrokenProcessPool as exc:  # a worker died (killed, out of memory): never a hang
        raise PukaraError(
            f"{report.filename or report.source}: an ingest worker process died ({exc}); the "
            "batches written before stay, ingest the report again to finish it (repeats fold)"
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _FORKED.clear()


def _may_fork() -> bool:
    """Fork only from a single-threaded process: a lock another thread holds at the fork
    (a stream's, a progress bar's console) would stay held in the worker forever, and a
    worker stuck so would hang the ingest. Otherwise the report is parsed here, slower."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    if threading.active_count() > 1:
        log.info("ingesting in-process: %d threads are running, forking workers is unsafe",
                 threading.active_count())
        return False
    return True


def _start_worker() -> None:
    gc.disable()
    _SENT.clear()
    os.nice(WORKER_NICE)


def _ordered(pool: ProcessPoolExecutor, stream: BinaryIO, head: tuple[bytes, bytes],
             workers: int, chunk_bytes: int) -> Iterator[Parsed]:
    pending: deque[Future[Parsed]] = deque()
    line = 1
    for data in head:
        pending.append(pool.submit(_work_forked, data, line))
        line += data.count(b"\n")
    while pending:
        while len(pending) < workers * IN_FLIGHT_PER_WORKER:
            data = read_chunk(stream, chunk_bytes)
            if not data:
                break
            pending.append(pool.submit(_work_forked, data, line))
            line += data.count(b"\n")
        yield pending.popleft().result()


def read_chunk(stream: BinaryIO, size: int) -> bytes:
    """About ``size`` bytes of whole lines. A line longer than MAX_LINE_BYTES is cut as
    :func:`collectors.parsers.base.iter_lines` cuts it, and its rest skipped."""
    data = stream.read(size)
    if not data or data.endswith(b"\n"):
        return data
    start = data.rfind(b"\n") + 1
    line = data[start:] + stream.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
        while True:
            rest = stream.readline(MAX_LINE_BYTES)
            if not rest or rest.endswith(b"\n"):
                break
        line = line[: MAX_LINE_BYTES + 1] + b"\n"
    return data[:start] + line


def _work_forked(data: bytes, first_line: int) -> Parsed:
    return work_chunk(_FORKED["job"], data, first_line, _SENT)


def work_chunk(job: _Job, data: bytes, first_line: int, sent: Sent) -> Parsed:
    """Parse one chunk (its first line is ``first_line`` of the report), enrich its alerts
    and turn them into store rows and correlation input; ``sent`` is what this process sent
    before in this report (see :func:`parse_chunks`)."""
    chosen = job.parser_class()  # resolved once per report: entry points are read from disk
    report = RawReport(stream=io.BytesIO(data), source=job.source, filename=job.filename,
                       entity_id=job.entity_id, format=chosen.name,
                       exercise_id=job.exercise_id, received_at=job.received_at)
    # both bounded: events that differ only where the fingerprint does not look (a rule's
    # revision, its metadata) add events, not fingerprints
    remember = job.compact_repeats and max(len(sent.prints), len(sent.events)) < MAX_EMITTED
    if not remember:
        sent.clear()
    items, others = _records(job, chosen, report, first_line, sent if remember else None)
    alerts = [item[0] for item in items if not isinstance(item, Repeat)]
    job.local.route(alerts)
    printed = [alert.fingerprint(job.bucket_seconds) for alert in alerts]
    job.local.annotate([a for a, p in zip(alerts, printed, strict=True) if p not in sent.prints])
    prints = iter(printed)
    rows: list[tuple[Any, ...]] = []
    seen: list[Seen | None] = []
    for item in items:
        if isinstance(item, Repeat):  # a known event: what its first alert gave, and its time
            fingerprint, entity, exercise, correlation_print, keys = sent.events[
                sent.slot(item.key, item.observed_at, job.bucket_seconds)]
            rows.append((fingerprint, sqlite_time(item.observed_at), 1))
            seen.append(None if not job.correlate or entity is None else (
                entity, exercise, item.observed_at, correlation_print, keys))
            continue
        alert, event_key = item
        fingerprint = next(prints)
        entity = alert.entity_id
        correlate = job.correlate and entity is not None
        known_keys = sent.prints.get(fingerprint)
        if known_keys is not None:
            keys = known_keys
            rows.append((fingerprint, sqlite_time(alert.observed_at), 1))
        else:
            rows.append(sqlite_row(alert, fingerprint))
            keys = job.local.correlation_keys(alert) if correlate else ()
            if remember:
                sent.prints[fingerprint] = keys
        correlation_print = fingerprint if job.bucket_seconds == FINGERPRINT_BUCKET else (
            alert.fingerprint(FINGERPRINT_BUCKET))
        if remember and event_key is not None:
            sent.events[sent.slot(event_key, alert.observed_at, job.bucket_seconds)] = (
                fingerprint, entity, alert.exercise_id or "", correlation_print, keys)
        seen.append(None if not correlate or entity is None else (
            entity, alert.exercise_id or "", alert.observed_at, correlation_print, keys))
    skipped = getattr(chosen, "skipped", None)
    return Parsed(rows, seen, others, sum(skipped.values()) if skipped else 0)


Item = tuple[Alert, bytes | None] | Repeat


def _records(job: _Job, chosen: Parser, report: RawReport, first_line: int,
             sent: Sent | None) -> tuple[list[Item], list[Record]]:
    """The chunk's alerts (with their repeat keys) and known events in order, and its other
    records (failures with their line in the whole report)."""
    records: Iterator[Any]
    if sent is not None and isinstance(chosen, KeyedParser):
        records = chosen.parse_keyed(report, lambda key, observed: sent.slot(
            key, observed, job.bucket_seconds) in sent.events)
    else:
        records = chosen.parse(report)
    items: list[Item] = []
    others: list[Record] = []
    for record in records:
        if isinstance(record, Repeat):
            items.append(record)
            continue
        if isinstance(record, KeyedAlert):
            alert, key = record.alert, record.key
        elif isinstance(record, Alert):
            alert, key = record, None
        elif isinstance(record, ParseFailure) and record.line is not None:
            others.append(record.model_copy(update={"line": record.line + first_line - 1}))
            continue
        else:
            others.append(record)
            continue
        if job.entity_id is not None:
            alert.entity_id = job.entity_id
        if job.exercise_id is not None:
            alert.exercise_id = job.exercise_id
        items.append((alert, key))
    return items, others


DOC = COLUMNS.index("doc")
HIT_COUNT = COLUMNS.index("hit_count")
COUNT = COLUMNS.index("count")


#: a correlation Hit as the alert document stores it (every field, in declared order)
_CORRELATION_HIT = Hit(kind="correlation", source="correlation").model_dump(mode="json")


def mark_rows(rows: list[tuple[Any, ...]],
              marks: Iterable[tuple[int, str, str, int]]) -> list[tuple[Any, ...]]:
    """Add correlation hits (row position, observable key, campaign key, entities) to the
    rows' documents and hit counts, as ``CorrelationEnricher.stage`` adds them to Alerts."""
    by_row: dict[int, list[dict[str, Any]]] = {}
    for position, observable, campaign, entities in marks:
        by_row.setdefault(position, []).append({
            **_CORRELATION_HIT, "observable": observable,
            "meta": {"campaign": campaign, "entities": entities}})
    if not by_row:
        return rows
    rows = list(rows)
    for position, hits in by_row.items():
        row = rows[position]
        if len(row) == REPEAT_WIDTH:  # its stored row keeps the hits of the first one
            continue
        doc = orjson.loads(row[DOC])
        doc["hits"].extend(hits)
        rows[position] = (*row[:HIT_COUNT], row[HIT_COUNT] + len(hits), *row[HIT_COUNT + 1:DOC],
                          orjson.dumps(doc).decode(), *row[DOC + 1:])
    return rows


def fold_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per fingerprint (the first one, full or a repeat row), its ``count`` the
    number of repeats."""
    first: dict[str, tuple[Any, ...]] = {}
    repeats: dict[str, int] = {}
    for row in rows:
        key = row[0]
        if key in first:
            repeats[key] = repeats.get(key, 1) + 1
        else:
            first[key] = row
    for key, count in repeats.items():
        row = first[key]
        first[key] = (*row[:2], count) if len(row) == REPEAT_WIDTH else (
            *row[:COUNT], count, *row[COUNT + 1:])
    return list(first.values())
