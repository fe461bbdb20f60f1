"""The live path: a RawReport → parser → enrichers (in batches) → the store.

Used by ``pukara ingest``, the spool and mailbox sources, ``POST /api/v1/alerts`` and the
exercise engine's ``deliver``. Alerts are written in batches, each batch committed before it
counts as accepted; a ParseFailure is reported with where and why and the rest goes on.
Entity reports (e-mail) become incidents; indicators (STIX, MISP) go to the intel store.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from cases.services import alerts as alert_store
from cases.services.campaigns import record_campaigns
from cases.services.identity import Principal, Role
from cases.store import Store
from collectors.parsers.base import Parser, peek
from collectors.registry import detect, parser
from enrichment.correlation import Campaign
from pukara.bulk import (
    DOC,
    Correlator,
    Seen,
    SplitEnrichment,
    fold_rows,
    mark_rows,
    parse_chunks,
)
from pukara.commit_thread import InFlight
from pukara.core.config import Settings
from pukara.core.schema import (
    Alert,
    IncidentReport,
    Indicator,
    IngestError,
    IngestResult,
    ParseFailure,
    RawReport,
    Record,
)

BATCH_SIZE = 5000
#: a bulk batch written and committing: its commit, its rows (for listeners), its counts
Written = tuple[InFlight, list[tuple[Any, ...]], alert_store.WriteOutcome]
MAX_ERRORS = 1000
GC_BATCHES = 2


@dataclass(frozen=True)
class Skipped:
    """What a parser passed over on purpose (e.g. statistics lines), by reason."""

    reasons: dict[str, int]


class Enricher(Protocol):
    """Annotates a batch of alerts in place.

    An enricher that keeps state in the database (correlation) also has ``stage(alerts)``
    (compute in memory), ``persist(conn)`` (write through the batch's connection) and
    ``discard()`` (undo a staged batch); the pipeline then calls those instead of ``enrich``,
    so nothing is written on a connection of the enricher's own.
    """

    name: str

    def enrich(self, alerts: list[Alert]) -> None:
        """Add hits, entities and severity to ``alerts``."""
        ...


class IncidentSink(Protocol):
    """Where entity reports go (the incident service)."""

    def submit(self, conn: Connection, principal: Principal, report: IncidentReport,
               *, request_id: str | None = None) -> dict[str, object]:
        """Store one incident report inside ``conn``'s transaction."""
        ...


class CampaignSource(Protocol):
    """The correlation enricher: campaigns created or joined in the last batch."""

    @property
    def campaigns(self) -> list[Campaign]:
        """Campaigns created or joined by new entities in the last batch."""
        ...


class IndicatorSink(Protocol):
    """Where indicators go (the intel store)."""

    def upsert(self, indicators: Iterable[Indicator], conn: Connection | None = None) -> int:
        """Store indicators (in ``conn``'s transaction when given); how many were written."""
        ...


@dataclass
class Pipeline:
    """Collectors → enrichment → store, wired by the composition root."""

    store: Store
    settings: Settings
    enrichers: Sequence[Enricher] = ()
    incidents: IncidentSink | None = None
    indicators: IndicatorSink | None = None
    on_batch: list[Callable[[list[Alert]], None]] = field(default_factory=list)
    campaigns: CampaignSource | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def records(self, report: RawReport) -> Iterator[Record | Skipped]:
        """Parse ``report`` with its named format, or the format its content shows."""
        chosen = self._parser(report)
        yield from chosen.parse(report)
        skipped = getattr(chosen, "skipped", None)
        if skipped:
            yield Skipped(dict(skipped))

    @staticmethod
    def _parser(report: RawReport) -> Parser:
        if report.format and report.format != "auto":
            chosen = parser(report.format)
        else:
            chosen = detect(peek(report.stream), report.filename)  # type: ignore[arg-type]
        report.format = chosen.name
        return chosen

    def ingest(self, report: RawReport, *, batch_size: int = BATCH_SIZE,
               progress: Callable[[int], None] | None = None) -> IngestResult:
        """Ingest a whole report, one committed transaction per batch.

        A line-delimited report (``line_records`` parsers) on the embedded store goes
        through :mod:`pukara.bulk`: parsed and enriched in worker processes, correlated and
        written here, with the same rows as the path below.

        A bulk run manages the cyclic GC itself: automatic collections (which would walk
        millions of long-lived objects — index, correlation state — over and over) are off
        while it runs; after the first batch and then every GC_BATCHES batches, cyclic
        garbage is collected once and the survivors are frozen, so each object is walked
        about once. The bulk path makes only ~130 objects of cyclic garbage a batch (a
        transaction's listeners), so it never collects: it freezes after each batch (no walk),
        and the garbage waits for the first collection after the run (a walk of the 1M
        bench's objects every 16 batches cost 3.6 s). When the run ends, everything is
        unfrozen and automatic collection is back as it was.
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            split = self._split()
            if split is not None and self.store.engine.dialect.name == "sqlite":
                chosen = self._parser(report)
                if getattr(chosen, "line_records", False):
                    return self._ingest_rows(report, chosen.name, split, batch_size, progress)
            return self._ingest(report, batch_size, progress)
        finally:
            gc.unfreeze()
            if enabled:
                gc.enable()

    def _ingest(self, report: RawReport, batch_size: int,
                progress: Callable[[int], None] | None) -> IngestResult:
        result = IngestResult()
        batch: list[Alert] = []
        indicators: list[Indicator] = []
        flushed = 0
        for record in self.records(report):
            alert = self._route(record, report, result, indicators, conn=None)
            if alert is None:
                continue
            batch.append(alert)
            if len(batch) >= batch_size:
                self._flush(batch, result, conn=None)
                if progress:
                    progress(len(batch))
                batch = []
                flushed += 1
                if flushed == 1 or flushed % GC_BATCHES == 0:  # the first: start-up (index) garbage
                    gc.collect()
                    gc.freeze()
        self._flush(batch, result, conn=None)
        self._flush_indicators(indicators, result, conn=None)
        if progress and batch:
            progress(len(batch))
        return result

    def _split(self) -> SplitEnrichment | None:
        if len(self.enrichers) != 1 or not isinstance(self.enrichers[0], SplitEnrichment):
            return None
        return self.enrichers[0]

    def _ingest_rows(self, report: RawReport, parser_name: str, split: SplitEnrichment,
                     batch_size: int, progress: Callable[[int], None] | None) -> IngestResult:
        result = IngestResult()
        indicators: list[Indicator] = []
        correlation = split.correlation
        rows: list[tuple[Any, ...]] = []
        seen: list[Seen | None] = []
        chunks = parse_chunks(report, parser_name, split.local(),
                              workers=self.settings.ingest_workers,
                              bucket_seconds=self.settings.dedup_bucket_seconds,
                              correlate=correlation is not None,
                              compact_repeats=not self.on_batch)  # listeners read every doc
        inflight: Written | None = None
        try:
            for parsed in chunks:
                result.skipped += parsed.skipped
                for record in parsed.others:
                    self._route(record, report, result, indicators, conn=None)
                rows.extend(parsed.rows)
                seen.extend(parsed.seen)
                while len(rows) >= batch_size:
                    inflight = self._write_rows(rows[:batch_size], seen[:batch_size],
                                                correlation, result, inflight)
                    del rows[:batch_size], seen[:batch_size]
                    if progress:
                        progress(batch_size)
                    gc.freeze()  # no collection here: see ingest()
            if rows:
                inflight = self._write_rows(rows, seen, correlation, result, inflight)
                if progress:
                    progress(len(rows))
            self._settle(inflight, result)
            inflight = None
        except BaseException:
            if correlation is not None:
                correlation.discard()  # a batch staged and not written: newest first
            # the batch committing ends either way, and is undone if its commit failed
            self._settle(inflight, result, staged=correlation)
            raise
        self._flush_indicators(indicators, result, conn=None)
        return result

    def _write_rows(self, rows: list[tuple[Any, ...]], seen: list[Seen | None],
                    correlation: Correlator | None, result: IngestResult,
                    previous: Written | None,
                    ) -> Written:
        """Correlate and fold one batch of prepared rows while the previous batch's commit
        runs, then write it in one transaction whose commit starts in a thread."""
        if correlation is not None:
            where = [(i, s) for i, s in enumerate(seen) if s is not None]
            marks = correlation.stage_seen([s for _, s in where])
            rows = mark_rows(rows, [(where[p][0], key, campaign, entities)
                                    for p, key, campaign, entities in marks])
        folded = fold_rows(rows)
        self._settle(previous, result, staged=correlation)
        self._lock.acquire()
        conn = self.store.engine.connect()
        try:
            conn.execution_options(pukara_write=True)
            transaction = conn.begin()
            try:
                outcome = alert_store.write_sqlite_rows(conn, folded, len(rows))
                if self.campaigns is not None and self.campaigns.campaigns:
                    record_campaigns(conn, self.campaigns.campaigns)
                if correlation is not None:
                    correlation.persist(conn, defer_undo=True)
            except BaseException:
                if correlation is not None:
                    correlation.discard()
                transaction.rollback()
                raise
        except BaseException:
            conn.close()
            self._lock.release()
            raise
        return InFlight(conn, transaction, self._lock.release), rows, outcome

    def _settle(self, inflight: Written | None,
                result: IngestResult, staged: Correlator | None = None) -> None:
        """Wait for a batch's commit: count it and tell the listeners; or, if it failed,
        discard the batch ``staged`` since (newest first), undo this one and raise."""
        if inflight is None or inflight[0].done:
            return
        batch, rows, outcome = inflight
        error = batch.wait()
        if error is not None:
            if staged is not None:  # newest first: the batch staged since, then this one
                staged.discard()
                staged.undo_failed(batch.conn)
            batch.abort()
            raise error
        batch.close()
        result.accepted += outcome.accepted
        result.duplicates += outcome.duplicates
        if self.on_batch:
            alerts = [Alert.model_validate_json(row[DOC]) for row in rows]
            for alert, row in zip(alerts, rows, strict=True):
                alert.raw = row[DOC + 1]
            for listener in self.on_batch:
                listener(alerts)

    def ingest_alerts(self, batch: list[Alert]) -> IngestResult:
        """Enrich and store alerts that were built in-process (replays, exercises)."""
        result = IngestResult()
        self._flush(batch, result, conn=None)
        return result

    def ingest_in(self, report: RawReport, conn: Connection) -> IngestResult:
        """Ingest a bounded report inside the caller's write transaction (the API's)."""
        result = IngestResult()
        batch: list[Alert] = []
        indicators: list[Indicator] = []
        for record in self.records(report):
            alert = self._route(record, report, result, indicators, conn=conn)
            if alert is not None:
                batch.append(alert)
            if len(batch) >= BATCH_SIZE:
                self._flush(batch, result, conn=conn)
                batch = []
        self._flush(batch, result, conn=conn)
        self._flush_indicators(indicators, result, conn=conn)
        return result

    def _flush_indicators(self, indicators: list[Indicator], result: IngestResult,
                          conn: Connection | None) -> None:
        if indicators and self.indicators is not None:
            self.indicators.upsert(indicators, conn)
            result.accepted += len(indicators)
        indicators.clear()

    def _route(self, record: Record | Skipped, report: RawReport, result: IngestResult,
               indicators: list[Indicator], conn: Connection | None) -> Alert | None:
        if isinstance(record, Skipped):
            result.skipped += sum(record.reasons.values())
            return None
        if isinstance(record, ParseFailure):
            result.rejected += 1
            if len(result.errors) < MAX_ERRORS:
                result.errors.append(IngestError(source=record.source, line=record.line,
                                                 record=record.record, error=record.reason))
            return None
        if isinstance(record, Alert):
            return self._claim(record, report)
        if isinstance(record, Indicator):
            if self.indicators is None:
                self._reject(result, report, "indicators are not accepted here")
                return None
            indicators.append(record)
            if len(indicators) >= BATCH_SIZE:
                self._flush_indicators(indicators, result, conn)
            return None
        return self._incident(record, report, result, conn)

    def _claim(self, alert: Alert, report: RawReport) -> Alert:
        if report.entity_id is not None:
            alert.entity_id = report.entity_id
        if report.exercise_id is not None:
            alert.exercise_id = report.exercise_id
        return alert

    def _incident(self, report_record: IncidentReport, report: RawReport,
                  result: IngestResult, conn: Connection | None) -> Alert | None:
        entity_id = report.entity_id or report_record.entity_id
        if report.exercise_id is not None:
            report_record.exercise_id = report.exercise_id
        if self.incidents is None or entity_id is None:
            return incident_as_alert(report_record, report)
        principal = Principal(Role.REPORTER, 0, entity_id=entity_id,
                              user=f"channel:{report.source}")
        if conn is not None:
            self.incidents.submit(conn, principal, report_record)
        else:
            with self.store.write() as own:
                self.incidents.submit(own, principal, report_record)
        result.accepted += 1
        return None

    def _reject(self, result: IngestResult, report: RawReport, why: str) -> None:
        result.rejected += 1
        if len(result.errors) < MAX_ERRORS:
            result.errors.append(IngestError(source=report.filename or report.source, error=why))

    def _flush(self, batch: list[Alert], result: IngestResult, conn: Connection | None) -> None:
        """Enrich and store one batch: alerts, campaigns and what the enrichers keep go into
        the same transaction (the caller's ``conn``, else one of the batch's own)."""
        if not batch:
            return
        if conn is None:
            with self.store.write() as own:
                outcome = self._enrich_and_write(own, batch)
        else:
            outcome = self._enrich_and_write(conn, batch)
        result.accepted += outcome.accepted
        result.duplicates += outcome.duplicates
        for listener in self.on_batch:
            listener(batch)

    def _enrich_and_write(self, conn: Connection, batch: list[Alert]) -> alert_store.WriteOutcome:
        """Under the write transaction (taken first, so every thread takes the database lock
        before the pipeline's): stage the enrichers, write, persist what they keep. If the
        transaction rolls back later, the enrichers undo the batch themselves."""
        with self._lock:
            self._stage(batch)
            try:
                return self._write(conn, batch)
            except BaseException:
                self._discard()
                raise

    def _stage(self, batch: list[Alert]) -> None:
        for enricher in self.enrichers:
            stage = getattr(enricher, "stage", None)
            if stage is not None:
                stage(batch)
            else:
                enricher.enrich(batch)

    def _discard(self) -> None:
        for enricher in self.enrichers:
            discard = getattr(enricher, "discard", None)
            if discard is not None:
                discard()

    def _write(self, conn: Connection, batch: list[Alert]) -> alert_store.WriteOutcome:
        outcome = alert_store.write_batch(conn, batch, self.settings.dedup_bucket_seconds)
        if self.campaigns is not None and self.campaigns.campaigns:
            record_campaigns(conn, self.campaigns.campaigns)
        for enricher in self.enrichers:
            persist = getattr(enricher, "persist", None)
            if persist is not None:
                persist(conn)
        return outcome


def incident_as_alert(report_record: IncidentReport, report: RawReport) -> Alert:
    """An entity report with no known entity is kept as an unassigned alert, never dropped."""
    return Alert(
        source=report_record.source or report.source,
        title=report_record.title,
        description=report_record.description,
        classification=report_record.classification,
        severity=report_record.severity,
        tlp=report_record.tlp,
        observed_at=report_record.detected_at,
        observables=report_record.observables,
        attachments=report_record.attachments,
        extra={"reporter": report_record.reporter, "unassigned_report": True},
        raw=report_record.raw,
        exercise_id=report.exercise_id or report_record.exercise_id,
    )
