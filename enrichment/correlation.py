"""Cross-entity correlation: the same thing seen at N or more entities within a window.

Every alert that has an entity contributes *sightings*: one per observable key (roles other
than ``context``, user agents and file names — shared by unrelated hosts everywhere — and
warninglisted values when an index is given are left out) and one per
non-suppressed indicator hit matched through a wider indicator (``indicator:cidr:…``,
``indicator:domain:…`` when a CIDR or a parent domain matched); see :func:`alert_keys`.
Sightings are kept per (exercise, key, entity) in memory and appended as snapshots to
``intel_sightings`` — so correlation works across batches and restarts (this process is
assumed to be the only writer; :meth:`CorrelationEnricher.load` merges the snapshots of the
last window). A pair's snapshot is written when it is new, when its key's campaign changed,
and otherwise at most once per ``flush_every`` of alert time (after a restart its count and
fingerprints may lag by that much). The log has no index, so a write is an append;
:meth:`~CorrelationEnricher.purge` drops old rows.

When ``min_entities`` distinct entities saw a key within ``window`` of its latest sighting
(alert ``observed_at`` times), a campaign record is created (``intel_campaigns``) and then
kept up to date (its row is rewritten when entities join, else at most once per
``flush_every``). ``campaigns`` lists the campaigns created or joined by new entities in the
last batch; the case layer turns them into campaign alerts and decides who sees the entity
ids. Real and exercise alerts never mix: the exercise id is part of every key. The alerts
carrying a campaign's key get a ``correlation`` hit naming the campaign and the number of
entities — not which ones.

In the live pipeline the work is split so that correlation commits or rolls back with the
alerts: :meth:`CorrelationEnricher.stage` (Alerts) or
:meth:`~CorrelationEnricher.stage_seen` (compact :data:`Seen` tuples, as the bulk ingest's
worker processes send them; it returns :data:`Mark` tuples instead of adding hits) computes
in memory, :meth:`~CorrelationEnricher.persist` writes through the batch's own connection
(never one of its own: on SQLite that would wait for the batch's write lock), and a rollback
of that transaction puts memory back as it was (:mod:`enrichment.correlation_journal`).
:meth:`CorrelationEnricher.enrich` does both in a transaction of its own (standalone use).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from enrichment.correlation_journal import Campaigns, Journal, OpenJournals, snapshot
from enrichment.correlation_model import (
    BATCH_SHIFT,
    ENTITY,
    FIRST,
    LAST,
    MAX_FINGERPRINTS,
    PRINTS,
    REF,
    SAVED,
    Campaign,
    Mark,
    Seen,
    Sighting,
    Sightings,
    Warned,
    alert_keys,
    campaign_key,
    each,
    find,
    put,
)
from enrichment.correlation_store import read_state, save_campaigns, save_sightings
from enrichment.intel import tables as t
from enrichment.intel.matcher import IntelIndex, IntelMatcher
from enrichment.intel.store import utc
from pukara.core.schema import Alert, Hit, utcnow

__all__ = [
    "Campaign",
    "CorrelationEnricher",
    "Mark",
    "Seen",
    "Warned",
    "alert_keys",
    "campaign_key",
]

_NO_CAMPAIGNS: dict[str, Campaign] = {}  # read only


class CorrelationEnricher:
    """Finds keys seen at ``min_entities`` or more entities within ``window``."""

    name = "correlation"

    def __init__(
        self,
        engine: Engine,
        *,
        min_entities: int = 3,
        window: timedelta = timedelta(hours=24),
        intel: IntelMatcher | IntelIndex | None = None,
        flush_every: timedelta = timedelta(minutes=5),
    ) -> None:
        self.engine = engine
        self.min_entities = max(2, min_entities)
        self.window = window
        self.intel = intel
        self.flush_every = flush_every
        self.campaigns: list[Campaign] = []
        self._sightings: Sightings = {}
        self._campaigns: Campaigns = {}
        self._batch = 0  # the number of the last staged batch
        self._pending: Journal | None = None
        self._open = OpenJournals(self._restore)
        self.load()

    def load(self) -> None:
        """Read the sightings of the last window (before the newest one) and the campaigns."""
        self._sightings, self._campaigns = read_state(self.engine, self.window)

    def enrich(self, alerts: list[Alert]) -> None:
        """Standalone use: :meth:`stage` the batch and :meth:`persist` it in a transaction
        of its own. The live pipeline calls ``stage`` and ``persist(conn)`` itself."""
        self.stage(alerts)
        try:
            with self.engine.begin() as conn:
                self.persist(conn)
        except BaseException:
            self.discard()
            raise

    def stage(self, alerts: list[Alert]) -> None:
        """Record the batch's sightings and campaigns in memory and mark the alerts (a
        ``correlation`` hit per campaign key an alert carries, never twice); the rows to
        write wait for :meth:`persist` (or :meth:`discard`, which undoes the batch).
        Alerts without an entity are left out."""
        warned = self._warned()
        owners: list[Alert] = []
        seen: list[Seen] = []
        for alert in alerts:
            if alert.entity_id is None:
                continue
            owners.append(alert)
            seen.append((alert.entity_id, alert.exercise_id or "", alert.observed_at,
                         alert.fingerprint(), tuple(alert_keys(alert, warned))))
        for position, observable, campaign, entities in self.stage_seen(seen):
            hits = owners[position].hits
            if not any(h.kind == "correlation" and h.observable == observable for h in hits):
                hits.append(Hit(kind="correlation", observable=observable, source="correlation",
                                meta={"campaign": campaign, "entities": entities}))

    def stage_seen(self, seen: Sequence[Seen]) -> list[Mark]:
        """:meth:`stage` on compact alerts (each with an entity, its keys distinct, as
        :func:`alert_keys` yields them): record their sightings and campaigns in memory
        (``campaigns`` = created or joined by new entities in this batch); the rows wait for
        :meth:`persist` or :meth:`discard`. Returns one (position in ``seen``, observable
        key, campaign key, number of entities) per alert and campaign key it carries, in
        alert order: the ``correlation`` hits ``stage`` would add."""
        self.discard()
        self._batch += 1
        journal = self._pending = Journal()
        created: set[str] = set()
        for exercise, key in self._sight(seen, journal):
            if key not in self._campaigns.get(exercise, _NO_CAMPAIGNS):
                self._create(exercise, key, journal, created)
        marks, touched = self._join_and_mark(seen, journal, created)
        self.campaigns = self._settle(touched, journal)
        return marks

    def _sight(self, seen: Sequence[Seen], journal: Journal) -> dict[tuple[str, str], None]:
        """Fold the sightings into memory, journalling each pair once (the hot loop: one
        look-up per key and alert, nothing allocated that a tuple does not do); returns the
        keys that ``min_entities`` entities saw, candidates for a new campaign."""
        base, flush, minimum = self._batch << BATCH_SHIFT, self.flush_every, self.min_entities
        records, latest, sightings = journal.sightings, journal.latest, self._sightings
        note, keep = records.append, latest.append
        candidates: dict[tuple[str, str], None] = {}
        for entity, exercise, when, fingerprint, keys in seen:
            by_key = sightings.get(exercise) or sightings.setdefault(exercise, {})
            single: tuple[str, ...] = (fingerprint,)
            for key in keys:
                value = by_key.get(key)
                if value is None:  # a new key (most of them): due
                    by_key[key] = now = (entity, when, when, 1, single, when, base + len(latest))
                    note((exercise, key, entity, None))
                    keep(now)
                    continue
                entities: dict[str, Sighting] | None = None
                if isinstance(value, dict):
                    entities, before = value, value.get(entity)
                elif value[ENTITY] == entity:  # the only entity that saw it so far
                    before = value
                else:
                    before = None
                    entities = by_key[key] = {value[ENTITY]: value}
                if before is None:
                    now = (entity, when, when, 1, single, when, base + len(latest))  # due
                    note((exercise, key, entity, None))
                    keep(now)
                else:
                    _, first, last, count, prints, saved, ref = before
                    index = ref - base
                    if index >= 0:  # touched earlier in this batch: saved as before it
                        saved = None if (kept := records[index][3]) is None else kept[SAVED]
                    else:
                        index = len(latest)
                        note((exercise, key, entity, before))
                        keep(before)
                    if when > last:
                        last = when
                    elif when < first:
                        first = when
                    if fingerprint not in prints:
                        prints = (*prints, fingerprint)[-MAX_FINGERPRINTS:]
                    if saved is None or last - saved >= flush:
                        saved = last  # due: the batch writes it
                    now = (entity, first, last, count + 1, prints, saved, base + index)
                    latest[index] = now
                if entities is None:
                    by_key[key] = now
                else:
                    entities[entity] = now
                    if len(entities) >= minimum:
                        candidates[exercise, key] = None
        return candidates

    def _join_and_mark(
        self, seen: Sequence[Seen], journal: Journal, created: set[str]
    ) -> tuple[list[Mark], list[Campaign]]:
        """Fold the sightings into the existing campaigns of their keys (journalling each
        once); the marks, and the campaigns the batch touched in the order of their key's
        first alert."""
        carried: list[tuple[int, str, Campaign]] = []
        touched: dict[str, Campaign] = {}
        campaigns = self._campaigns
        for position, (entity, exercise, when, fingerprint, keys) in enumerate(seen):
            by_observable = campaigns.get(exercise)
            if not by_observable:
                continue
            for key in keys:
                campaign = by_observable.get(key)
                if campaign is None:
                    continue
                carried.append((position, key, campaign))
                if campaign.key not in touched:
                    touched[campaign.key] = campaign
                    if campaign.key not in created:
                        journal.campaigns.append((exercise, key, campaign, snapshot(campaign)))
                        campaign.created, campaign.new_entities = False, []
                if not campaign.created:
                    _join(campaign, entity, when, fingerprint)
        for campaign in touched.values():
            if campaign.new_entities and not campaign.created:
                campaign.new_entities.sort()
                campaign.entity_ids = sorted(campaign.members)
            campaign.trim_prints()
        marks = [(p, k, c.key, len(c.entity_ids)) for p, k, c in carried]
        return marks, list(touched.values())

    def _settle(self, touched: list[Campaign], journal: Journal) -> list[Campaign]:
        """Decide which campaign rows to write, and force the unsaved sightings of new or
        grown campaigns (not due for the batch) to be written with them; returns the new
        or grown campaigns."""
        news: list[Campaign] = []
        base, flush = self._batch << BATCH_SHIFT, self.flush_every
        for campaign in touched:
            grown = campaign.created or bool(campaign.new_entities)
            saved = campaign.saved_last_seen
            if grown or saved is None or campaign.last_seen - saved >= flush:
                journal.changed.append(campaign)
            if not grown:
                continue
            news.append(campaign)
            exercise, key = campaign.exercise_id or "", campaign.observable
            by_key = self._sightings.setdefault(exercise, {})
            for entity in campaign.entity_ids:
                sighting = find(by_key.get(key), entity)
                if sighting is None or sighting[SAVED] == sighting[LAST]:
                    continue
                index = sighting[REF] - base
                if index < 0:  # not touched by the batch: journal it
                    index = len(journal.latest)
                    journal.sightings.append((exercise, key, entity, sighting))
                    journal.latest.append(sighting)
                now = (*sighting[:SAVED], sighting[LAST], base + index)
                journal.latest[index] = now
                put(by_key, key, now)
                journal.forced.append(index)
        return news

    def _create(self, exercise: str, key: str, journal: Journal, created: set[str]) -> None:
        """A new campaign when enough entities saw ``key`` within the window."""
        seers = list(each(self._sightings[exercise].get(key)))
        newest = max(s[LAST] for s in seers)
        recent = {s[ENTITY]: s for s in seers if s[LAST] >= newest - self.window}
        if len(recent) < self.min_entities:
            return
        campaign = Campaign(
            key=campaign_key(exercise, key),
            observable=key,
            exercise_id=exercise or None,
            entity_ids=sorted(recent),
            first_seen=min(s[FIRST] for s in recent.values()),
            last_seen=newest,
            alert_fingerprints=[],
            created=True,
            new_entities=sorted(recent),
        )
        campaign.add_prints(p for s in recent.values() for p in s[PRINTS])
        self._campaigns.setdefault(exercise, {})[key] = campaign
        journal.campaigns.append((exercise, key, None, ()))
        created.add(campaign.key)

    def persist(self, conn: Connection, *, defer_undo: bool = False) -> None:
        """Write the staged batch's sightings and campaigns through ``conn``, in its
        transaction; if that transaction rolls back or its commit fails, memory goes back
        to before the batch (with ``defer_undo``, a failed commit waits for
        :meth:`undo_failed`: the caller commits in another thread while it stages the next
        batch, which it discards first)."""
        journal, self._pending = self._pending, None
        if journal is None:
            return
        self._open.keep(conn, journal, defer_undo=defer_undo)  # first: a failed write undoes
        save_sightings(conn, journal, self.flush_every)
        save_campaigns(conn, journal.changed)

    def undo_failed(self, conn: Connection) -> None:
        """Undo the batches persisted with ``defer_undo`` whose commit on ``conn`` failed."""
        self._open.undo_failed(conn)

    def discard(self) -> None:
        """Undo a staged batch that will not be persisted (its transaction failed first)."""
        journal, self._pending = self._pending, None
        if journal is not None:
            self._restore(journal)

    def _restore(self, journal: Journal) -> None:
        journal.restore(self._sightings, self._campaigns)

    def _warned(self) -> Warned | None:
        if self.intel is None:
            return None
        index = self.intel if isinstance(self.intel, IntelIndex) else self.intel.index()
        return index.warninglisted

    def stored_campaigns(self) -> list[Campaign]:
        """Every campaign known (created in this run or before)."""
        known = [c for by_observable in self._campaigns.values() for c in by_observable.values()]
        return sorted(known, key=lambda c: c.first_seen)

    def prune(self, now: datetime | None = None) -> int:
        """Forget in-memory sightings older than the window; returns how many keys went."""
        cutoff = (utc(now) or utcnow()) - self.window
        gone = 0
        for by_key in self._sightings.values():
            stale = [k for k, v in by_key.items() if max(s[LAST] for s in each(v)) < cutoff]
            for key in stale:
                del by_key[key]
            gone += len(stale)
        return gone

    def purge(self, before: datetime) -> int:
        """Delete stored sightings last seen before ``before`` (campaigns stay); how many."""
        with self.engine.begin() as conn:
            gone = conn.execute(t.sightings.delete().where(t.sightings.c.last_seen < before))
        return gone.rowcount or 0


def _join(campaign: Campaign, entity: str, when: datetime, fingerprint: str) -> None:
    """Fold one sighting into an existing campaign the batch already journalled."""
    if entity not in campaign.members:
        if not campaign.new_entities:  # a new set: the journal keeps the old one
            campaign.members = set(campaign.members)
        campaign.members.add(entity)
        campaign.new_entities.append(entity)
    if when < campaign.first_seen:  # first_seen <= last_seen
        campaign.first_seen = when
    elif when > campaign.last_seen:
        campaign.last_seen = when
    if fingerprint not in campaign.prints:
        campaign.prints.add(fingerprint)
        campaign.alert_fingerprints.append(fingerprint)
