"""Enrichers and the fixed order they run in: constituency → intel → (yara) → correlation.

An :class:`Enricher` has a ``name`` and ``enrich(alerts)``, which mutates the batch in place
(entity, hits, severity). Matching structures are built once and reused; no enricher makes
a database round trip per alert.

Severity rule of :class:`IntelEnricher` (counting only non-suppressed indicator hits):

- +1 when at least one hit comes from an event of threat level 1 or 2 (MISP high/medium);
- +1 when the alert hits 3 or more distinct indicators;
- +1 when the alert has hits and its entity is of criticality 1;

added to the severity the alert had before intel enrichment and capped at ``critical``.
The bonus applied is kept in ``extra["intel_severity_bonus"]``, so enriching again (a
rematch) raises only by the difference. Suppressed (warninglisted) hits never raise it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Engine

from enrichment.constituency import Constituency, ConstituencyEnricher
from enrichment.correlation import CorrelationEnricher
from enrichment.intel.matcher import IntelIndex, IntelMatcher
from enrichment.intel.store import IntelStore
from pukara.core.config import Settings
from pukara.core.errors import ConfigError
from pukara.core.observables import ObservableType as T
from pukara.core.schema import Alert, Entity, Hit
from pukara.core.taxonomy import Severity

ORDER = ("constituency", "intel", "yara", "correlation")
BONUS_KEY = "intel_severity_bonus"
_SEVERITIES = list(Severity)


@runtime_checkable
class Enricher(Protocol):
    """Works on a batch of alerts, in place."""

    name: str

    def enrich(self, alerts: list[Alert]) -> None:
        """Annotate ``alerts`` (entity, hits, severity)."""
        ...


def _hit_id(hit: Hit) -> tuple[object, ...]:
    return (hit.kind, hit.observable, hit.indicator, hit.indicator_type, hit.source, hit.event_uuid)


def _observed(alert: Alert) -> list[tuple[T, str]]:
    found = [(o.type, o.value) for o in alert.observables]
    flow = alert.flow
    if flow is not None:
        for ip in (flow.src_ip, flow.dst_ip):
            if ip:
                found.append((T.IPV6 if ":" in ip else T.IPV4, ip))
    return found


def _copy(hit: Hit) -> Hit:
    fresh = hit.model_copy()
    fresh.tags = list(hit.tags)
    fresh.meta = dict(hit.meta)
    return fresh


#: the most (type, value) matches a fixed index's enricher remembers across batches
MEMO_ENTRIES = 1 << 18


def new_hits(alerts: list[Alert], index: IntelIndex,
             memo: dict[tuple[T, str], list[Hit]] | None = None) -> list[list[Hit]]:
    """The indicator hits each alert would get that it does not have yet (alerts unchanged).

    ``memo`` keeps matches across calls; it must belong to this one ``index``. This backs
    ``pukara intel rematch``: run it over stored alerts after new intel arrived.
    """
    if memo is None:
        memo = {}
    elif len(memo) > MEMO_ENTRIES:
        memo.clear()
    result: list[list[Hit]] = []
    for alert in alerts:
        fresh: list[Hit] = []
        have: set[tuple[object, ...]] | None = None
        for key in _observed(alert):
            hits = memo.get(key)
            if hits is None:
                hits = memo[key] = index.match(*key)
            for hit in hits:
                if not _applies(hit, alert):
                    continue
                if have is None:
                    have = {_hit_id(h) for h in alert.hits}
                if _hit_id(hit) not in have:
                    have.add(_hit_id(hit))
                    fresh.append(_copy(hit))
        result.append(fresh)
    return result


EXERCISE_SOURCE = "exercise:"


def _applies(hit: Hit, alert: Alert) -> bool:
    """Indicators an exercise published (source ``exercise:<id>``) light up only that
    exercise's alerts; real intel applies to every alert."""
    if not hit.source.startswith(EXERCISE_SOURCE):
        return True
    return hit.source == f"{EXERCISE_SOURCE}{alert.exercise_id}"


def severity_bonus(alert: Alert, criticality: int | None) -> int:
    """The severity steps an alert's indicator hits are worth (see the module docstring)."""
    live = [h for h in alert.hits if h.kind == "indicator" and not h.suppressed]
    if not live:
        return 0
    bonus = 0
    if any(h.threat_level in (1, 2) for h in live):
        bonus += 1
    if len({(h.indicator_type, h.indicator) for h in live}) >= 3:
        bonus += 1
    if criticality == 1:
        bonus += 1
    return bonus


def raise_severity(alert: Alert, bonus: int) -> None:
    """Raise by ``bonus`` minus what was already applied, capped at critical."""
    applied = int(alert.extra.get(BONUS_KEY, 0))
    if bonus <= applied:
        return
    rank = _SEVERITIES.index(alert.severity) + bonus - applied
    alert.severity = _SEVERITIES[min(rank, len(_SEVERITIES) - 1)]
    alert.extra[BONUS_KEY] = bonus


class IntelEnricher:
    """Matches every observable (and flow address) of the batch against the indicator index."""

    name = "intel"

    def __init__(
        self, source: IntelMatcher | IntelIndex, entities: Mapping[str, Entity] | None = None
    ) -> None:
        self.source = source
        self.entities = entities or {}
        #: matches remembered across batches, only when bound to one fixed index (the bulk
        #: ingest's workers: a value seen in one chunk is seen again in the next ones)
        self._memo: dict[tuple[T, str], list[Hit]] | None = (
            {} if isinstance(source, IntelIndex) else None)

    def index(self) -> IntelIndex:
        """The index to match against (a matcher refreshes it when the store changed)."""
        return self.source if isinstance(self.source, IntelIndex) else self.source.index()

    def enrich(self, alerts: list[Alert]) -> None:
        """Append new hits and raise severity by the documented rule."""
        for alert, hits in zip(alerts, new_hits(alerts, self.index(), self._memo), strict=True):
            if not hits:
                continue
            alert.hits.extend(hits)
            entity = self.entities.get(alert.entity_id or "")
            raise_severity(alert, severity_bonus(alert, entity.criticality if entity else None))


class EnrichmentPipeline:
    """Runs enrichers in the fixed ORDER, whatever order they were given in."""

    def __init__(self, enrichers: Iterable[Enricher]) -> None:
        chosen = list(enrichers)
        unknown = [e.name for e in chosen if e.name not in ORDER]
        if unknown:
            raise ConfigError(f"unknown enricher(s) {unknown}; known: {', '.join(ORDER)}")
        self.enrichers = sorted(chosen, key=lambda e: ORDER.index(e.name))

    def run(self, alerts: list[Alert]) -> list[Alert]:
        """Enrich the batch in place and return it."""
        for enricher in self.enrichers:
            enricher.enrich(alerts)
        return alerts


def build_enrichers(
    engine: Engine, entities: Iterable[Entity], settings: Settings
) -> list[Enricher]:
    """Constituency, intel and correlation enrichers on one database, from the settings."""
    from datetime import timedelta

    constituency = Constituency(entities)
    matcher = IntelMatcher(IntelStore(engine))
    correlation = CorrelationEnricher(
        engine,
        min_entities=settings.correlation_min_entities,
        window=timedelta(hours=settings.correlation_window_hours),
        intel=matcher,
    )
    return [
        ConstituencyEnricher(constituency),
        IntelEnricher(matcher, constituency.entities),
        correlation,
    ]
