"""Cross-entity correlation: the same thing seen at N or more entities within a window.

Every alert that has an entity contributes *sightings*: one per observable key (roles other
than ``context``, user agents and file names — shared by unrelated hosts everywhere — and
warninglisted values when an index is given are left out) and one per
non-suppressed indicator hit matched through a wider indicator (``indicator:cidr:…``,
``indicator:domain:…`` when a CIDR or a parent domain matched). Sightings are kept per
(exercise, key, entity) in memory and appended as snapshots to ``intel_sightings`` — so
correlation works across batches and restarts (this process is assumed to be the only
writer; :meth:`CorrelationEnricher.load` merges the snapshots of the last window). A pair's
snapshot is written when it is new, when its key's campaign changed, and otherwise at most
once per ``flush_every`` of alert time (after a restart its count and fingerprints may lag
by that much). The log has no index, so a write is an append; :meth:`purge` drops old rows.

When ``min_entities`` distinct entities saw a key within ``window`` of its latest sighting
(alert ``observed_at`` times), a campaign record is created (``intel_campaigns``) and then
kept up to date (its row is rewritten when entities join, else at most once per
``flush_every``). ``campaigns`` lists the campaigns created or joined by new entities in the
last batch; the case layer turns them into campaign alerts and decides who sees the entity
ids. Real and exercise alerts never mix: the exercise id is part of every key. The alerts
carrying a campaign's key get a ``correlation`` hit naming the campaign and the number of
entities — not which ones.

In the live pipeline the work is split so that correlation commits or rolls back with the
alerts: :meth:`CorrelationEnricher.stage` computes in memory, :meth:`~CorrelationEnricher.persist`
writes through the batch's own connection (never one of its own: on SQLite that would wait
for the batch's write lock), and a rollback of that transaction puts memory back as it was.
:meth:`CorrelationEnricher.enrich` does both in a transaction of its own (standalone use).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from enrichment.intel import tables as t
from enrichment.intel.matcher import IntelIndex, IntelMatcher
from enrichment.intel.sql import append, dialect_insert, executemany, sqlite_time
from enrichment.intel.store import utc
from pukara.core.schema import Alert, Hit, utcnow

MAX_FINGERPRINTS = 20
SIGHTING_COLUMNS = (
    "exercise_id",
    "observable_key",
    "entity_id",
    "first_seen",
    "last_seen",
    "count",
    "fingerprints",
)
MAX_CAMPAIGN_FINGERPRINTS = 1000
UNCORRELATED_TYPES = frozenset({"user-agent", "filename"})
Warned = Callable[[Any, str], list[str]]


@dataclass(slots=True)
class Sighting:
    """One entity's sightings of one key."""

    first_seen: datetime
    last_seen: datetime
    count: int = 0
    fingerprints: list[str] = field(default_factory=list)
    saved_last_seen: datetime | None = None


@dataclass
class Campaign:
    """A national campaign: one key seen at several entities."""

    key: str
    observable: str
    exercise_id: str | None
    entity_ids: list[str]
    first_seen: datetime
    last_seen: datetime
    alert_fingerprints: list[str]
    created: bool = False
    new_entities: list[str] = field(default_factory=list)
    members: set[str] = field(default_factory=set, repr=False, compare=False)
    prints: set[str] = field(default_factory=set, repr=False, compare=False)
    saved_last_seen: datetime | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.members = set(self.entity_ids)
        self.prints = set(self.alert_fingerprints)

    def add_prints(self, fingerprints: Iterable[str]) -> None:
        """Remember new alert fingerprints, keeping about the newest MAX_CAMPAIGN_FINGERPRINTS."""
        for fingerprint in fingerprints:
            if fingerprint not in self.prints:
                self.prints.add(fingerprint)
                self.alert_fingerprints.append(fingerprint)
        if len(self.alert_fingerprints) > MAX_CAMPAIGN_FINGERPRINTS * 5 // 4:  # trim in chunks
            self.alert_fingerprints = self.alert_fingerprints[-MAX_CAMPAIGN_FINGERPRINTS:]
            self.prints = set(self.alert_fingerprints)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "observable": self.observable,
            "exercise_id": self.exercise_id,
            "entity_ids": self.entity_ids,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "alert_fingerprints": self.alert_fingerprints,
        }


def campaign_key(exercise_id: str, observable: str) -> str:
    """Stable id of the campaign on ``observable`` (in exercise ``exercise_id`` or real)."""
    return hashlib.sha256(f"{exercise_id}\x1f{observable}".encode()).hexdigest()[:32]


def alert_keys(alert: Alert, warned: Warned | None = None) -> Iterator[str]:
    """The correlation keys of an alert."""
    seen: set[str] = set()
    for observable in alert.observables:
        if observable.role == "context" or observable.type in UNCORRELATED_TYPES:
            continue
        key = f"{observable.type}:{observable.value}"  # Observable.key, without enum look-ups
        if key in seen:
            continue
        if warned is not None and warned(observable.type, observable.value):
            continue
        seen.add(key)
        yield key
    for hit in alert.hits:
        if hit.kind != "indicator" or hit.suppressed or not hit.indicator_type:
            continue
        key = f"indicator:{hit.indicator_type}:{hit.indicator}"
        if f"{hit.indicator_type}:{hit.indicator}" != hit.observable and key not in seen:
            seen.add(key)
            yield key


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
        self._sightings: dict[tuple[str, str], dict[str, Sighting]] = {}
        self._campaigns: dict[tuple[str, str], Campaign] = {}
        self._pending: _Journal | None = None
        self._open: dict[int, list[_Journal]] = {}
        self.load()

    def load(self) -> None:
        """Read the sightings of the last window (before the newest one) and the campaigns."""
        s = t.sightings.c
        with self.engine.connect() as conn:
            newest = utc(conn.execute(sa.select(sa.func.max(s.last_seen))).scalar())
            rows = (
                []
                if newest is None
                else conn.execute(
                    sa.select(t.sightings).where(s.last_seen >= newest - self.window)
                ).all()
            )
            campaigns = conn.execute(sa.select(t.campaigns)).all()
        self._sightings.clear()
        for row in rows:
            self._merge(row._mapping)
        self._campaigns = {
            (c.exercise_id or "", c.observable_key): _campaign_of(c) for c in campaigns
        }

    def _merge(self, data: Any) -> None:
        """Fold one stored snapshot into memory (several per pair may exist)."""
        entities = self._sightings.setdefault((data["exercise_id"], data["observable_key"]), {})
        first, last = utc(data["first_seen"]) or utcnow(), utc(data["last_seen"]) or utcnow()
        known = entities.get(data["entity_id"])
        if known is None:
            entities[data["entity_id"]] = Sighting(
                first, last, int(data["count"]), list(data["fingerprints"]), last
            )
            return
        known.first_seen, known.last_seen = min(known.first_seen, first), max(known.last_seen, last)
        known.count = max(known.count, int(data["count"]))
        merged = dict.fromkeys([*known.fingerprints, *data["fingerprints"]])
        known.fingerprints = list(merged)[-MAX_FINGERPRINTS:]
        known.saved_last_seen = known.last_seen

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
        """Record the batch's sightings and campaigns in memory and mark the alerts; the rows
        to write wait for :meth:`persist` (or :meth:`discard`, which undoes the batch)."""
        self.discard()
        journal = _Journal()
        seen_by_pair: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}
        touched: dict[tuple[str, str], list[tuple[Alert, str]]] = {}
        warned = self._warned()
        for alert in alerts:
            entity = alert.entity_id
            if entity is None:
                continue
            exercise = alert.exercise_id or ""
            fingerprint = alert.fingerprint()
            when = alert.observed_at
            for key in alert_keys(alert, warned):
                seen_by_pair.setdefault((exercise, key, entity), []).append((when, fingerprint))
                touched.setdefault((exercise, key), []).append((alert, fingerprint))
        dirty = {
            pair for pair, seen in seen_by_pair.items() if self._see(pair, seen, journal)
        }
        news, changed = self._campaigns_of(touched, journal)
        for campaign in news:  # a new or grown campaign's unsaved sightings are written now
            exercise = campaign.exercise_id or ""
            pairs = self._sightings.get((exercise, campaign.observable), {})
            dirty.update(
                (exercise, campaign.observable, e)
                for e in campaign.entity_ids
                if e in pairs and pairs[e].saved_last_seen != pairs[e].last_seen
            )
        journal.dirty, journal.changed = dirty, changed
        self._pending = journal
        self.campaigns = news
        self._mark(touched)

    def persist(self, conn: Connection) -> None:
        """Write the staged batch's sightings and campaigns through ``conn``, in its
        transaction; if that transaction rolls back, memory goes back to before the batch."""
        journal, self._pending = self._pending, None
        if journal is None:
            return
        self._save_sightings(conn, journal.dirty)
        self._save_campaigns(conn, journal.changed)
        self._undo_on_rollback(conn, journal)

    def discard(self) -> None:
        """Undo a staged batch that will not be persisted (its transaction failed first)."""
        journal, self._pending = self._pending, None
        if journal is not None:
            journal.restore(self._sightings, self._campaigns)

    def _undo_on_rollback(self, conn: Connection, journal: _Journal) -> None:
        """Keep ``journal`` until ``conn``'s transaction ends: dropped on commit, replayed
        backwards (newest batch first) on rollback."""
        waiting = self._open.get(id(conn))
        if waiting is not None:
            waiting.append(journal)
            return
        journals = self._open[id(conn)] = [journal]

        def committed(_conn: Connection) -> None:
            if self._open.get(id(conn)) is journals:
                del self._open[id(conn)]

        def rolled_back(_conn: Connection) -> None:
            if self._open.get(id(conn)) is journals:  # not after a commit of this transaction
                del self._open[id(conn)]
                for done in reversed(journals):
                    done.restore(self._sightings, self._campaigns)

        sa.event.listen(conn, "commit", committed, once=True)
        sa.event.listen(conn, "rollback", rolled_back, once=True)

    def _campaigns_of(
        self, touched: dict[tuple[str, str], list[tuple[Alert, str]]], journal: _Journal
    ) -> tuple[list[Campaign], list[Campaign]]:
        """(created or joined by new entities, every campaign whose row must be written)."""
        news: list[Campaign] = []
        changed: list[Campaign] = []
        for key, seen in touched.items():
            campaign = self._campaigns.get(key)
            journal.campaigns.append((key, campaign, _snapshot(campaign)))
            if campaign is None:
                campaign = self._create(key)
                grown = campaign is not None
            else:
                grown = self._update(campaign, seen)
            if campaign is None:
                continue
            saved = campaign.saved_last_seen
            if grown:
                news.append(campaign)
            if grown or saved is None or campaign.last_seen - saved >= self.flush_every:
                changed.append(campaign)
        return news, changed

    def _warned(self) -> Warned | None:
        if self.intel is None:
            return None
        index = self.intel if isinstance(self.intel, IntelIndex) else self.intel.index()
        return index.warninglisted

    def _see(self, pair: tuple[str, str, str], seen: list[tuple[datetime, str]],
             journal: _Journal) -> bool:
        """Record one entity's sightings of one key (in order); True when its row should be
        written now."""
        exercise, key, entity = pair
        entities = self._sightings.get((exercise, key))
        if entities is None:
            entities = self._sightings[(exercise, key)] = {}
        sighting = entities.get(entity)
        journal.sightings.append((exercise, key, entity, _copy_sighting(sighting)))
        if sighting is None:
            when, fingerprint = seen[0]
            sighting = entities[entity] = Sighting(when, when, 1, [fingerprint])
            fresh = True
            seen = seen[1:]
        else:
            fresh = False
        prints = sighting.fingerprints
        for when, fingerprint in seen:
            if when > sighting.last_seen:
                sighting.last_seen = when
            elif when < sighting.first_seen:
                sighting.first_seen = when
            sighting.count += 1
            if fingerprint not in prints:
                prints = [*prints, fingerprint][-MAX_FINGERPRINTS:]
        sighting.fingerprints = prints
        saved = sighting.saved_last_seen
        return fresh or saved is None or sighting.last_seen - saved >= self.flush_every

    def _create(self, key: tuple[str, str]) -> Campaign | None:
        """A new campaign when enough entities saw ``key`` within the window, else None."""
        entities = self._sightings[key]
        if len(entities) < self.min_entities:
            return None
        newest = max(s.last_seen for s in entities.values())
        recent = {e: s for e, s in entities.items() if s.last_seen >= newest - self.window}
        if len(recent) < self.min_entities:
            return None
        campaign = self._campaigns[key] = Campaign(
            key=campaign_key(*key),
            observable=key[1],
            exercise_id=key[0] or None,
            entity_ids=sorted(recent),
            first_seen=min(s.first_seen for s in recent.values()),
            last_seen=newest,
            alert_fingerprints=[],
            created=True,
            new_entities=sorted(recent),
        )
        campaign.add_prints(p for s in recent.values() for p in s.fingerprints)
        return campaign

    @staticmethod
    def _update(campaign: Campaign, seen: list[tuple[Alert, str]]) -> bool:
        """Fold this batch's sightings into a campaign; True when new entities joined."""
        campaign.created = False
        fresh = {a.entity_id for a, _ in seen if a.entity_id} - campaign.members
        campaign.new_entities = sorted(fresh)
        if fresh:
            campaign.members = campaign.members | fresh  # a new set: a journal keeps the old
            campaign.entity_ids = sorted(campaign.members)
        times = [a.observed_at for a, _ in seen]
        campaign.first_seen = min(campaign.first_seen, *times)
        campaign.last_seen = max(campaign.last_seen, *times)
        campaign.add_prints(p for _, p in seen)
        return bool(fresh)

    def _mark(self, touched: dict[tuple[str, str], list[tuple[Alert, str]]]) -> None:
        for key, seen in touched.items():
            campaign = self._campaigns.get(key)
            if campaign is None:
                continue
            observable = key[1]
            entities = len(campaign.entity_ids)
            for alert, _ in seen:
                if not any(h.kind == "correlation" and h.observable == observable
                           for h in alert.hits):
                    alert.hits.append(Hit.model_construct(
                        kind="correlation", observable=observable, source="correlation",
                        meta={"campaign": campaign.key, "entities": entities}))

    def _save_sightings(self, conn: Connection, dirty: set[tuple[str, str, str]]) -> None:
        if not dirty:
            return
        native = conn.dialect.name == "sqlite"
        rows: list[tuple[Any, ...]] = []
        for exercise, key, entity in dirty:
            s = self._sightings[(exercise, key)][entity]
            s.saved_last_seen = s.last_seen
            if native:
                rows.append(
                    (
                        exercise,
                        key,
                        entity,
                        sqlite_time(s.first_seen),
                        sqlite_time(s.last_seen),
                        s.count,
                        orjson.dumps(s.fingerprints).decode(),
                    )
                )
            else:
                rows.append(
                    (exercise, key, entity, s.first_seen, s.last_seen, s.count, s.fingerprints)
                )
        append(conn, t.sightings, SIGHTING_COLUMNS, rows)

    def _save_campaigns(self, conn: Connection, changed: list[Campaign]) -> None:
        if not changed:
            return
        now = utcnow()
        rows = [
            {
                "key": c.key,
                "exercise_id": c.exercise_id or "",
                "observable_key": c.observable,
                "entity_ids": c.entity_ids,
                "first_seen": c.first_seen,
                "last_seen": c.last_seen,
                "alert_fingerprints": c.alert_fingerprints,
                "updated_at": now,
            }
            for c in changed
        ]
        stmt = dialect_insert(self.engine, t.campaigns)
        names = ("entity_ids", "first_seen", "last_seen", "alert_fingerprints", "updated_at")
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={n: stmt.excluded[n] for n in names}
        )
        executemany(conn, stmt, rows)
        for campaign in changed:
            campaign.saved_last_seen = campaign.last_seen

    def stored_campaigns(self) -> list[Campaign]:
        """Every campaign known (created in this run or before)."""
        return sorted(self._campaigns.values(), key=lambda c: c.first_seen)

    def prune(self, now: datetime | None = None) -> int:
        """Forget in-memory sightings older than the window; returns how many keys went."""
        cutoff = (utc(now) or utcnow()) - self.window
        stale = [
            k for k, v in self._sightings.items() if max(s.last_seen for s in v.values()) < cutoff
        ]
        for key in stale:
            del self._sightings[key]
        return len(stale)

    def purge(self, before: datetime) -> int:
        """Delete stored sightings last seen before ``before`` (campaigns stay); how many."""
        with self.engine.begin() as conn:
            gone = conn.execute(t.sightings.delete().where(t.sightings.c.last_seen < before))
        return gone.rowcount or 0


@dataclass
class _Journal:
    """One staged batch: the rows to write and what memory looked like before it."""

    sightings: list[tuple[str, str, str, Sighting | None]] = field(default_factory=list)
    campaigns: list[tuple[tuple[str, str], Campaign | None, tuple[Any, ...]]] = field(
        default_factory=list)
    dirty: set[tuple[str, str, str]] = field(default_factory=set)
    changed: list[Campaign] = field(default_factory=list)

    def restore(
        self,
        sightings: dict[tuple[str, str], dict[str, Sighting]],
        campaigns: dict[tuple[str, str], Campaign],
    ) -> None:
        """Put the sightings and campaigns the batch touched back as they were."""
        for exercise, key, entity, before in reversed(self.sightings):
            entities = sightings.setdefault((exercise, key), {})
            if before is None:
                entities.pop(entity, None)
                if not entities:
                    del sightings[(exercise, key)]
            else:
                entities[entity] = before
        for key, campaign, before in reversed(self.campaigns):
            if campaign is None:
                campaigns.pop(key, None)
            else:
                _restore(campaign, before)
                campaigns[key] = campaign


def _copy_sighting(sighting: Sighting | None) -> Sighting | None:
    if sighting is None:
        return None
    return Sighting(sighting.first_seen, sighting.last_seen, sighting.count,
                    sighting.fingerprints, sighting.saved_last_seen)


def _snapshot(campaign: Campaign | None) -> tuple[Any, ...]:
    """What a batch may change in a campaign, cheaply: the fields it reassigns, and the
    fingerprint list (appended in place, or replaced when trimmed) with its length."""
    if campaign is None:
        return ()
    return (campaign.entity_ids, campaign.members, campaign.first_seen, campaign.last_seen,
            campaign.created, campaign.new_entities, campaign.saved_last_seen,
            campaign.alert_fingerprints, len(campaign.alert_fingerprints))


def _restore(campaign: Campaign, before: tuple[Any, ...]) -> None:
    (campaign.entity_ids, campaign.members, campaign.first_seen, campaign.last_seen,
     campaign.created, campaign.new_entities, campaign.saved_last_seen, prints, length) = before
    del prints[length:]
    campaign.alert_fingerprints = prints
    campaign.prints = set(prints)


def _campaign_of(row: Any) -> Campaign:
    campaign = Campaign(
        key=row.key,
        observable=row.observable_key,
        exercise_id=row.exercise_id or None,
        entity_ids=list(row.entity_ids),
        first_seen=utc(row.first_seen) or utcnow(),
        last_seen=utc(row.last_seen) or utcnow(),
        alert_fingerprints=list(row.alert_fingerprints),
    )
    campaign.saved_last_seen = campaign.last_seen
    return campaign
