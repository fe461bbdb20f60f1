"""A small filter object over alerts, and the field-query syntax that builds one.

``status:new entity:minsa severity:>=high source:suricata class:intrusion-attempts/ids-alert
case:none exercise:exclude`` — space-separated ``field:value`` terms, all of which must hold.
Free text belongs to the search module; here a bare word is refused with its position.
``exercise`` is ``include`` (default: analysts triage exercise alerts too), ``exclude`` (what
statistics use, SECURITY M1), ``only`` or one exercise id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select

from cases.store.tables import alerts
from pukara.core.errors import InvalidInput
from pukara.core.taxonomy import Severity

ID_CHUNK = 1000
ALERT_STATUSES = ("new", "acknowledged", "promoted", "dismissed", "merged")
_FIELDS = ("status", "entity", "severity", "source", "class", "case", "exercise", "id")


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts an action or a listing is about; every set field must match."""

    ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    entity_id: str | None = None
    min_severity: Severity | None = None
    max_severity: Severity | None = None
    source: str | None = None
    classification: str | None = None
    case_id: str | None = None
    unlinked: bool = False
    since: datetime | None = None
    until: datetime | None = None
    exercise: str = "include"

    def with_ids(self, ids: tuple[int, ...]) -> AlertFilter:
        """The same filter restricted to ``ids``."""
        return replace(self, ids=ids)

    def chunks(self, size: int = ID_CHUNK) -> Iterator[AlertFilter]:
        """This filter split so no statement binds more than ``size`` ids (SQLite's
        variable limit); a filter without ids is yielded whole."""
        if len(self.ids) <= size:
            yield self
            return
        for start in range(0, len(self.ids), size):
            yield replace(self, ids=self.ids[start:start + size])

    def apply(self, query: Select[Any]) -> Select[Any]:
        """``query`` narrowed by this filter."""
        c = alerts.c
        if self.ids:
            query = query.where(c.id.in_(self.ids))
        if self.statuses:
            query = query.where(c.status.in_(self.statuses))
        if self.entity_id is not None:
            query = query.where(c.entity_id == self.entity_id)
        if self.min_severity is not None:
            query = query.where(c.severity.in_(_at_least(self.min_severity)))
        if self.max_severity is not None:
            allowed = [s.value for s in Severity if s <= self.max_severity]
            query = query.where(c.severity.in_(allowed))
        if self.source is not None:
            query = query.where(c.source == self.source)
        if self.classification is not None:
            query = query.where(_classification(self.classification))
        if self.case_id is not None:
            query = query.where(c.case_id == self.case_id)
        if self.unlinked:
            query = query.where(c.case_id.is_(None))
        if self.since is not None:
            query = query.where(c.observed_at >= self.since)
        if self.until is not None:
            query = query.where(c.observed_at < self.until)
        if self.exercise == "exclude":
            query = query.where(c.exercise_id.is_(None))
        elif self.exercise == "only":
            query = query.where(c.exercise_id.is_not(None))
        elif self.exercise not in ("include", ""):
            query = query.where(c.exercise_id == self.exercise)
        return query


def _at_least(level: Severity) -> list[str]:
    return [s.value for s in Severity if s >= level]


def _classification(value: str) -> Any:
    if "/" in value:
        return alerts.c.classification == value
    return alerts.c.classification.like(f"{value}/%")


def _severity_term(value: str, position: int) -> dict[str, Severity]:
    for prefix, name in ((">=", "min_severity"), ("<=", "max_severity")):
        if value.startswith(prefix):
            return {name: _severity(value[len(prefix):], position)}
    level = _severity(value.lstrip("="), position)
    return {"min_severity": level, "max_severity": level}


def _severity(value: str, position: int) -> Severity:
    try:
        return Severity.parse(value)
    except (ValueError, InvalidInput) as exc:
        raise InvalidInput(f"query term {position}: unknown severity {value!r}",
                           field="query") from exc


def _term(name: str, value: str, position: int) -> dict[str, Any]:
    if name == "status":
        statuses = tuple(value.split(","))
        bad = [s for s in statuses if s not in ALERT_STATUSES]
        if bad:
            raise InvalidInput(f"query term {position}: unknown status {bad[0]!r} "
                               f"(one of {', '.join(ALERT_STATUSES)})", field="query")
        return {"statuses": statuses}
    if name == "severity":
        return _severity_term(value, position)
    if name == "case":
        return {"unlinked": True} if value == "none" else {"case_id": value}
    if name == "id":
        try:
            return {"ids": tuple(int(v) for v in value.split(","))}
        except ValueError as exc:
            raise InvalidInput(f"query term {position}: ids are numbers", field="query") from exc
    key = {"entity": "entity_id", "class": "classification"}.get(name, name)
    return {key: value}


def parse_query(text: str | None, base: AlertFilter | None = None) -> AlertFilter:
    """An AlertFilter from ``field:value`` terms; InvalidInput names the bad term."""
    values: dict[str, Any] = {}
    for position, term in enumerate((text or "").split(), start=1):
        name, sep, value = term.partition(":")
        if not sep or not value:
            raise InvalidInput(
                f"query term {position} ({term!r}) is not field:value; free-text search is "
                f"`pukara search` (fields: {', '.join(_FIELDS)})", field="query")
        if name not in _FIELDS:
            raise InvalidInput(f"query term {position}: unknown field {name!r} "
                               f"(one of {', '.join(_FIELDS)})", field="query")
        values.update(_term(name, value, position))
    return replace(base or AlertFilter(), **values)
