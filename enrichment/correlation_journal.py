"""The journal of a staged correlation batch: what to write, and how to undo it.

Undo records are cheap: a sighting is an immutable tuple, so the record of a pair is the
tuple the batch replaced (``None`` for a new pair); a campaign's is a tuple of the fields
a batch reassigns and the length of its fingerprint list (appended in place). The journal
also holds each touched pair's sighting as the batch left it, so writing the rows needs no
look-up in the (large, cache-missing) correlation state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from enrichment.correlation_model import Campaign, Sighting, Sightings, drop, put

Campaigns = dict[str, dict[str, Campaign]]


@dataclass(slots=True, weakref_slot=True)
class Journal:
    """One staged batch: the rows to write and what memory looked like before it."""

    #: (exercise, key, entity, sighting before the batch or None), once per pair the batch
    #: touched, in the order it touched them
    sightings: list[tuple[str, str, str, Sighting | None]] = field(default_factory=list)
    #: the sighting of each of those pairs now (same order)
    latest: list[Sighting] = field(default_factory=list)
    #: (exercise, key, campaign or None when the batch created it, its snapshot)
    campaigns: list[tuple[str, str, Campaign | None, tuple[Any, ...]]] = field(
        default_factory=list)
    #: indexes of the pairs written though not due: unsaved sightings of new or grown
    #: campaigns
    forced: list[int] = field(default_factory=list)
    #: campaigns whose row must be written
    changed: list[Campaign] = field(default_factory=list)

    def restore(self, sightings: Sightings, campaigns: Campaigns) -> None:
        """Put the sightings and campaigns the batch touched back as they were."""
        for exercise, key, entity, before in reversed(self.sightings):
            by_key = sightings.setdefault(exercise, {})
            if before is None:
                drop(by_key, key, entity)
            else:
                put(by_key, key, before)
        for exercise, key, campaign, before in reversed(self.campaigns):
            by_observable = campaigns.setdefault(exercise, {})
            if campaign is None:
                by_observable.pop(key, None)
            else:
                restore_campaign(campaign, before)
                by_observable[key] = campaign


def snapshot(campaign: Campaign) -> tuple[Any, ...]:
    """What a batch may change in a campaign, cheaply: the fields it reassigns, and the
    fingerprint list (appended in place, or replaced when trimmed) with its length."""
    return (campaign.entity_ids, campaign.members, campaign.first_seen, campaign.last_seen,
            campaign.created, campaign.new_entities, campaign.saved_last_seen,
            campaign.alert_fingerprints, len(campaign.alert_fingerprints))


def restore_campaign(campaign: Campaign, before: tuple[Any, ...]) -> None:
    """Put ``campaign`` back as :func:`snapshot` saw it."""
    (campaign.entity_ids, campaign.members, campaign.first_seen, campaign.last_seen,
     campaign.created, campaign.new_entities, campaign.saved_last_seen, prints, length) = before
    del prints[length:]
    campaign.alert_fingerprints = prints
    campaign.prints = set(prints)


class OpenJournals:
    """Journals persisted in transactions that have not ended yet, by connection: dropped on
    commit, replayed backwards (newest batch first) on rollback."""

    def __init__(self, restore: Callable[[Journal], None]) -> None:
        self._restore = restore
        self._open: dict[int, list[Journal]] = {}
        self._failed: dict[int, list[Journal]] = {}

    def keep(self, conn: Connection, journal: Journal, *, defer_undo: bool = False) -> None:
        """Hold ``journal`` until ``conn``'s transaction ends. With ``defer_undo``, a failed
        commit leaves the undo to :meth:`undo_failed` (the caller staged more since, in
        another thread than the commit's, and must discard that first)."""
        waiting = self._open.get(id(conn))
        if waiting is not None:
            waiting.append(journal)
            return
        journals = self._open[id(conn)] = [journal]

        def committed(_conn: Connection) -> None:
            # SQLAlchemy calls this *before* the database commits, and a failed commit (a
            # full disk, a deferred constraint) then fires no rollback event: so the commit
            # is made here, and undoes memory when it fails
            if self._open.get(id(conn)) is not journals:
                return
            del self._open[id(conn)]
            dbapi = conn.dialect.loaded_dbapi
            try:
                conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
            except dbapi.Error as exc:
                if defer_undo:
                    self._failed[id(conn)] = list(journals)
                else:
                    for done in reversed(journals):
                        self._restore(done)
                raise sa.exc.DBAPIError.instance(None, None, exc, dbapi.Error) from exc
            finally:
                journals.clear()  # free them now: the listeners and conn form a cycle

        def rolled_back(_conn: Connection) -> None:
            if self._open.get(id(conn)) is journals:  # not after a commit of this transaction
                del self._open[id(conn)]
                for done in reversed(journals):
                    self._restore(done)
                journals.clear()

        sa.event.listen(conn, "commit", committed, once=True)
        sa.event.listen(conn, "rollback", rolled_back, once=True)

    def undo_failed(self, conn: Connection) -> None:
        """Put memory back as before the batches whose commit on ``conn`` failed with
        ``defer_undo`` (newest first)."""
        for done in reversed(self._failed.pop(id(conn), [])):
            self._restore(done)
