"""Alerts in the store: batched, deduplicated writes and the triage queries.

A repeat of an alert (same fingerprint: source, entity, signature or type, key observables,
time bucket) raises the stored alert's ``count`` and ``last_seen`` instead of adding a row.
Writes are one multi-row statement per batch, inside the caller's transaction. Status
changes go through :func:`cases.services.triage.transition` (life cycle, events, audit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from cases.services import audit
from cases.services.alert_filter import ALERT_STATUSES, AlertFilter
from cases.services.identity import Principal
from cases.services.triage import DISMISS_REASONS, transition
from cases.store import Store
from cases.store.tables import alerts
from pukara.core.errors import InvalidInput, NotFound, PukaraError
from pukara.core.schema import Alert

SORTS = {
    "-observed_at": alerts.c.observed_at.desc(),
    "observed_at": alerts.c.observed_at.asc(),
    "-last_seen": alerts.c.last_seen.desc(),
    "-id": alerts.c.id.desc(),
    "id": alerts.c.id.asc(),
    "-count": alerts.c.count.desc(),
}
MAX_LIMIT = 1000
_DOC_EXCLUDE = {"raw", "attachments"}


@dataclass
class WriteOutcome:
    """How many alerts of a batch were new and how many folded into existing ones."""

    accepted: int = 0
    duplicates: int = 0


COLUMNS = (
    "fingerprint", "source", "source_ref", "entity_id", "title", "classification", "severity",
    "tlp", "status", "observed_at", "first_seen", "last_seen", "count", "hit_count",
    "exercise_id", "doc", "raw",
)
SQLITE_UPSERT = (
    f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (fingerprint) DO UPDATE SET count = alerts.count + excluded.count, "
    "last_seen = max(alerts.last_seen, excluded.last_seen)"
)


#: a repeat of an alert already written (or earlier in the same batch): only what folding
#: changes, (fingerprint, last_seen as :func:`sqlite_time` text, count)
RepeatRow = tuple[str, str, int]
REPEAT_WIDTH = 3
SQLITE_REPEAT = (
    "UPDATE alerts SET count = count + ?, last_seen = max(last_seen, ?) WHERE fingerprint = ?"
)


def sqlite_time(value: datetime) -> str:
    """UTC as SQLAlchemy's SQLite DateTime stores it (so reads and comparisons agree)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _hit_count(alert: Alert) -> int:
    count = 0
    for hit in alert.hits:
        if not hit.suppressed:
            count += 1
    return count


def sqlite_row(alert: Alert, fingerprint: str, count: int = 1) -> tuple[Any, ...]:
    """The alert as one row of :data:`SQLITE_UPSERT` (column order :data:`COLUMNS`)."""
    seen = sqlite_time(alert.observed_at)
    return (
        fingerprint, alert.source, alert.source_ref, alert.entity_id, alert.title,
        str(alert.classification), alert.severity.value, alert.tlp.value, "new", seen, seen,
        seen, count, _hit_count(alert) if alert.hits else 0, alert.exercise_id,
        alert.model_dump_json(exclude=_DOC_EXCLUDE), alert.raw,
    )


def _row(alert: Alert, fingerprint: str, count: int) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "source": alert.source,
        "source_ref": alert.source_ref,
        "entity_id": alert.entity_id,
        "title": alert.title,
        "classification": str(alert.classification),
        "severity": alert.severity.value,
        "tlp": alert.tlp.value,
        "status": "new",
        "observed_at": alert.observed_at,
        "first_seen": alert.observed_at,
        "last_seen": alert.observed_at,
        "count": count,
        "hit_count": _hit_count(alert),
        "exercise_id": alert.exercise_id,
        "doc": alert.model_dump_json(exclude=_DOC_EXCLUDE),
        "raw": alert.raw,
    }


def _upsert(dialect: str) -> Any:
    module = sqlite if dialect == "sqlite" else postgresql
    statement = module.insert(alerts)
    excluded = statement.excluded
    greatest = func.max if dialect == "sqlite" else func.greatest
    return statement.on_conflict_do_update(
        index_elements=[alerts.c.fingerprint],
        set_={
            "count": alerts.c.count + excluded.count,
            "last_seen": greatest(alerts.c.last_seen, excluded.last_seen),
        },
    )


def write_batch(conn: Connection, batch: Sequence[Alert], bucket_seconds: int) -> WriteOutcome:
    """Insert or fold a batch of alerts; returns accepted (new rows) and duplicates."""
    folded: dict[str, tuple[Alert, int]] = {}
    for alert in batch:
        key = alert.fingerprint(bucket_seconds)
        known = folded.get(key)
        folded[key] = (alert, 1) if known is None else (known[0], known[1] + 1)
    if not folded:
        return WriteOutcome()
    if conn.dialect.name == "sqlite":
        return _write_sqlite(conn, folded, len(batch))
    existing: set[str] = set()
    keys = list(folded)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found = conn.execute(select(alerts.c.fingerprint).where(alerts.c.fingerprint.in_(chunk)))
        existing.update(found.scalars())
    rows = [_row(alert, key, count) for key, (alert, count) in folded.items()]
    conn.execute(_upsert(conn.dialect.name), rows)
    new = len(folded) - len(existing)
    return WriteOutcome(accepted=new, duplicates=len(batch) - new)


def _write_sqlite(conn: Connection, folded: dict[str, tuple[Alert, int]],
                  received: int) -> WriteOutcome:
    rows = [sqlite_row(alert, key, count) for key, (alert, count) in folded.items()]
    return write_sqlite_rows(conn, rows, received)


def write_sqlite_rows(conn: Connection, rows: Sequence[tuple[Any, ...]],
                      received: int) -> WriteOutcome:
    """SQLite fast path for rows already built by :func:`sqlite_row` and folded (one row per
    fingerprint, ``count`` = how many of the ``received`` alerts it stands for): one
    executemany; new rows are those above the previous max id. :data:`RepeatRow` rows
    stand for alerts whose row is stored already: they only add to its count and last_seen.

    Exact because SQLite write transactions are serialised (BEGIN IMMEDIATE).
    """
    if not rows:
        return WriteOutcome(duplicates=received)
    full = [row for row in rows if len(row) != REPEAT_WIDTH]
    repeats = [(row[2], row[1], row[0]) for row in rows if len(row) == REPEAT_WIDTH]
    before = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM alerts").scalar_one()
    if full:
        conn.exec_driver_sql(SQLITE_UPSERT, full)
    if repeats:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(SQLITE_REPEAT, repeats)
        if cursor.rowcount != len(repeats):  # alerts are never deleted: a caller's bug
            raise PukaraError(f"{len(repeats) - cursor.rowcount} repeat row(s) of this batch "
                              "match no stored alert; the batch is rolled back")
    new = conn.exec_driver_sql("SELECT count(*) FROM alerts WHERE id > ?", (before,)).scalar_one()
    return WriteOutcome(accepted=int(new), duplicates=received - int(new))


class AlertService:
    """Reads and triage actions on stored alerts."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list(
        self,
        principal: Principal | None = None,
        *,
        status: str | None = None,
        entity_id: str | None = None,
        since: datetime | None = None,
        selection: AlertFilter | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str = "-observed_at",
    ) -> list[dict[str, Any]]:
        """Alerts visible to ``principal`` (None = local operator) matching ``selection``."""
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1..{MAX_LIMIT}", field="limit")
        selection = selection or AlertFilter()
        if status is not None:
            selection = replace(selection, statuses=(status,))
        if entity_id is not None:
            selection = replace(selection, entity_id=entity_id)
        if since is not None:
            selection = replace(selection, since=since)
        query = selection.apply(select(alerts)).order_by(SORTS[sort]).limit(limit).offset(offset)
        if principal is not None and not principal.is_staff:
            query = query.where(alerts.c.entity_id == principal.entity_id)
        with self.store.read() as conn:
            return [summary(row) for row in conn.execute(query)]

    def get(self, alert_id: int, principal: Principal | None = None) -> dict[str, Any]:
        """One alert with its full document; NotFound if absent or not visible."""
        with self.store.read() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None or (
            principal is not None and not principal.is_staff
            and row.entity_id != principal.entity_id
        ):
            raise NotFound(f"no alert {alert_id}")
        return {**summary(row), "alert": orjson.loads(row.doc), "raw": row.raw}

    def set_status(
        self, ids: Sequence[int], status: str, actor: audit.Actor, *, reason: str | None = None
    ) -> int:
        """Acknowledge, dismiss or reopen alerts (all or nothing); returns how many changed."""
        if status not in ("acknowledged", "dismissed", "new"):
            raise InvalidInput("status must be acknowledged, dismissed or new", field="status")
        with self.store.write() as conn:
            changed = transition(conn, AlertFilter(ids=tuple(ids)), status, actor, reason=reason)
        return len(changed)

    def count(self) -> int:
        """How many alert rows the store holds."""
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())


def summary(row: Any) -> dict[str, Any]:
    """The list view of an alert row."""
    return {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "source": row.source,
        "entity_id": row.entity_id,
        "title": row.title,
        "classification": row.classification,
        "severity": row.severity,
        "tlp": row.tlp,
        "status": row.status,
        "observed_at": row.observed_at.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        "count": row.count,
        "hits": row.hit_count,
        "exercise_id": row.exercise_id,
        "case_id": row.case_id,
    }


__all__ = ["ALERT_STATUSES", "COLUMNS", "DISMISS_REASONS", "REPEAT_WIDTH", "SQLITE_REPEAT",
           "SQLITE_UPSERT", "AlertService", "RepeatRow", "WriteOutcome", "sqlite_row",
           "sqlite_time", "summary", "write_batch", "write_sqlite_rows"]
