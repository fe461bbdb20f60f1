"""Enrichment as the composition root runs it: built once, refreshed when entities change.

The constituency and the entities' criticality come from the registry; a long-running server
sees an ``entity add`` made by another process at its next batch (one cheap query a batch).
The intel index refreshes itself when the intel store changes. The live pipeline calls
:meth:`LiveEnrichment.stage` then :meth:`LiveEnrichment.persist` with the batch's own
connection, so what enrichers keep commits or rolls back with the alerts.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from cases.services.identity import Identity
from cases.store.tables import entities
from enrichment.constituency import Constituency, ConstituencyEnricher
from enrichment.correlation import Campaign, CorrelationEnricher, Warned, alert_keys
from enrichment.intel.matcher import IntelIndex, IntelMatcher
from enrichment.pipeline import ORDER, Enricher, IntelEnricher, build_enrichers
from enrichment.yara.compiler import default_sources
from enrichment.yara.engines import open_scanner
from enrichment.yara.enricher import YaraEnricher
from pukara.core.config import Settings
from pukara.core.schema import Alert


class LazyYaraEnricher:
    """YARA on alert attachments; the rules are compiled (or loaded from cache) only when the
    first batch with attachments arrives, so commands that never scan never pay for it."""

    name = "yara"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._enricher: YaraEnricher | None = None

    def enrich(self, alerts: list[Alert]) -> None:
        """Scan every attachment of the batch with the configured engine."""
        if not any(alert.attachments for alert in alerts):
            return
        if self._enricher is None:
            sources = default_sources(self.settings.yara_rule_dirs)
            scanner, _errors, _fallbacks = open_scanner(
                sources, self.settings.cache_dir / "yara", engine=self.settings.yara_engine
            )
            self._enricher = YaraEnricher(scanner)
        self._enricher.enrich(alerts)


#: enrichers that decide what an alert's fingerprint depends on; they run first
ROUTING = frozenset({"constituency"})


@dataclass
class LocalEnrichment:
    """The stateless part of the enrichment (constituency, intel on one fixed index, YARA):
    what the bulk ingest's worker processes run. It never touches the database."""

    enrichers: list[Enricher]
    warned: Warned | None

    def enrich(self, alerts: list[Alert]) -> None:
        """Run the stateless enrichers on the batch, in order."""
        self.route(alerts)
        self.annotate(alerts)

    def route(self, alerts: list[Alert]) -> None:
        """The enrichers an alert's fingerprint depends on (constituency: its entity)."""
        for enricher in self.enrichers:
            if enricher.name in ROUTING:
                enricher.enrich(alerts)

    def annotate(self, alerts: list[Alert]) -> None:
        """The others (intel, YARA): hits and severity, which the fingerprint leaves out."""
        for enricher in self.enrichers:
            if enricher.name not in ROUTING:
                enricher.enrich(alerts)

    def correlation_keys(self, alert: Alert) -> tuple[str, ...]:
        """The alert's correlation keys (warninglisted values left out)."""
        return tuple(alert_keys(alert, self.warned))


class LiveEnrichment:
    """Every enricher in the fixed order, with the constituency kept current."""

    name = "enrichment"

    def __init__(self, identity: Identity, settings: Settings,
                 extra: list[Enricher] | None = None) -> None:
        self.identity = identity
        self._version: tuple[Any, ...] | None = None
        self._frozen: IntelIndex | None = None
        built = build_enrichers(identity.store.engine, identity.entities(), settings)
        built.append(LazyYaraEnricher(settings))
        built.extend(extra or [])
        self.enrichers = sorted(built, key=lambda e: ORDER.index(e.name))
        self._version = self._entities_version()

    @property
    def campaigns(self) -> list[Campaign]:
        """Campaigns created or joined in the last batch (for the case store)."""
        correlation = self.correlation
        return correlation.campaigns if correlation is not None else []

    @property
    def correlation(self) -> CorrelationEnricher | None:
        """The correlation enricher (the one with state), if configured."""
        for enricher in self.enrichers:
            if isinstance(enricher, CorrelationEnricher):
                return enricher
        return None

    def local(self) -> LocalEnrichment:
        """Refresh the constituency, build the intel index now and return everything but
        correlation bound to that index, for worker processes forked after this call."""
        self._refresh()
        chosen: list[Enricher] = []
        warned: Warned | None = None
        for enricher in self.enrichers:
            if isinstance(enricher, CorrelationEnricher):
                continue
            if isinstance(enricher, IntelEnricher):
                index = enricher.index()
                warned = index.warninglisted
                chosen.append(IntelEnricher(index, enricher.entities))
            else:
                chosen.append(enricher)
        self._freeze_new_index()
        return LocalEnrichment(chosen, warned)

    def _entities_version(self) -> tuple[Any, ...]:
        with self.identity.store.read() as conn:
            row = conn.execute(select(func.count(), func.max(entities.c.updated_at))).one()
        return tuple(row)

    def _refresh(self) -> None:
        version = self._entities_version()
        if version == self._version:
            return
        constituency = Constituency(self.identity.entities())
        for enricher in self.enrichers:
            if isinstance(enricher, ConstituencyEnricher):
                enricher.constituency = constituency
            elif isinstance(enricher, IntelEnricher):
                enricher.entities = constituency.entities
        self._version = version

    def enrich(self, alerts: list[Alert]) -> None:
        """Run every enricher on the batch, in order, persisting what they keep (correlation's
        sightings and campaigns) in a write transaction of their own."""
        self.stage(alerts)
        try:
            with self.identity.store.write() as conn:
                self.persist(conn)
        except BaseException:
            self.discard()
            raise

    def stage(self, alerts: list[Alert]) -> None:
        """Run every enricher on the batch, in order; what they keep waits for :meth:`persist`
        (they never write on connections of their own here)."""
        self._refresh()
        for enricher in self.enrichers:
            stage = getattr(enricher, "stage", None)
            if stage is not None:
                stage(alerts)
            else:
                enricher.enrich(alerts)
        self._freeze_new_index()

    def _freeze_new_index(self) -> None:
        """After the intel index was (re)built, move it and everything else alive to the
        permanent GC generation: millions of long-lived objects that every full collection
        would otherwise walk again (the objects are still freed by reference counting)."""
        for enricher in self.enrichers:
            if isinstance(enricher, IntelEnricher) and isinstance(enricher.source, IntelMatcher):
                index = enricher.source.current
                if index is not None and index is not self._frozen:
                    self._frozen = index
                    gc.freeze()

    def persist(self, conn: Connection) -> None:
        """Write what the staged batch keeps through ``conn``, in the batch's transaction."""
        for enricher in self.enrichers:
            persist = getattr(enricher, "persist", None)
            if persist is not None:
                persist(conn)

    def discard(self) -> None:
        """Undo a staged batch whose transaction failed before :meth:`persist`."""
        for enricher in self.enrichers:
            discard = getattr(enricher, "discard", None)
            if discard is not None:
                discard()
