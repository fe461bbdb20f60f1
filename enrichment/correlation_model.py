"""What correlation keeps and exchanges: sightings, campaigns, the compact per-alert input
(:data:`Seen`) and output (:data:`Mark`), and the correlation keys of an alert.

A sighting is a plain tuple (:data:`Sighting`): tuples of strings and datetimes are not
tracked by the garbage collector, an update replaces the tuple, and the tuple a batch
replaced is all its undo record needs. Most keys are only ever seen by one entity, so a
key's value is that entity's sighting itself, and a dict by entity once a second one saw it
(:func:`put`, :func:`drop`, :func:`find`, :func:`each`): no dict per key, one memory access
less per look-up. The correlation state is large and its look-ups miss the CPU caches: the
hot path touches each key once per alert and never again to persist it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pukara.core.schema import Alert

MAX_FINGERPRINTS = 20
MAX_CAMPAIGN_FINGERPRINTS = 1000
UNCORRELATED_TYPES = frozenset({"user-agent", "filename"})
Warned = Callable[[Any, str], list[str]]

#: one alert as correlation needs it: (entity_id, exercise_id or "", observed_at (aware
#: UTC), alert fingerprint, correlation keys as :func:`alert_keys` yields them)
Seen = tuple[str, str, datetime, str, tuple[str, ...]]
#: a campaign key carried by an alert: (position in the ``Seen`` sequence, observable key,
#: campaign key, number of entities)
Mark = tuple[int, str, str, int]

#: one entity's sightings of one key: (entity id, first_seen, last_seen, count, fingerprints
#: (newest last, at most MAX_FINGERPRINTS), last_seen as last written (or to be written by
#: the staged batch) or None, reference: ``batch << 32`` plus the pair's index in the journal
#: of the batch that last changed it)
Sighting = tuple[str, datetime, datetime, int, tuple[str, ...], datetime | None, int]
ENTITY: Final = 0
FIRST: Final = 1
LAST: Final = 2
COUNT: Final = 3
PRINTS: Final = 4
SAVED: Final = 5
REF: Final = 6
BATCH_SHIFT: Final = 32
#: the sightings of one key: the only entity's, or by entity id
KeySightings = Sighting | dict[str, Sighting]
#: exercise id ("" for real alerts) → observable key → its sightings
Sightings = dict[str, dict[str, KeySightings]]


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
        self.trim_prints()

    def trim_prints(self) -> None:
        """Keep the newest MAX_CAMPAIGN_FINGERPRINTS once there are a quarter more (a new
        list: the journal keeps the old one)."""
        if len(self.alert_fingerprints) > MAX_CAMPAIGN_FINGERPRINTS * 5 // 4:
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
    """The correlation keys of an alert (each once)."""
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


def each(value: KeySightings | None) -> Iterable[Sighting]:
    """Every entity's sighting of a key."""
    if value is None:
        return ()
    return value.values() if isinstance(value, dict) else (value,)


def find(value: KeySightings | None, entity: str) -> Sighting | None:
    """``entity``'s sighting of a key, if any."""
    if isinstance(value, dict):
        return value.get(entity)
    return value if value is not None and value[ENTITY] == entity else None


def put(by_key: dict[str, KeySightings], key: str, sighting: Sighting) -> None:
    """Set one entity's sighting of ``key``."""
    value = by_key.get(key)
    if isinstance(value, dict):
        value[sighting[ENTITY]] = sighting
    elif value is None or value[ENTITY] == sighting[ENTITY]:
        by_key[key] = sighting
    else:
        by_key[key] = {value[ENTITY]: value, sighting[ENTITY]: sighting}


def drop(by_key: dict[str, KeySightings], key: str, entity: str) -> None:
    """Forget one entity's sighting of ``key`` (and the key with its last one); a key left
    with one entity holds its sighting again, as before a second entity saw it."""
    value = by_key.get(key)
    if isinstance(value, dict):
        value.pop(entity, None)
        if len(value) == 1:
            (by_key[key],) = value.values()
        elif not value:
            del by_key[key]
    elif value is not None and value[ENTITY] == entity:
        del by_key[key]
