"""The situational picture: reporting deadlines per entity and sector, dashboard aggregates,
and the reminders that are due.

Exercise data (``exercise_id`` set) is left out of everything here (SECURITY M1). Figures
are counts; no title or content of an incident appears, so TLP:RED items show as numbers
only (B6). Deadline states come from :func:`cases.services.deadlines.deadline_status` on the
stored awareness time (N1).

Reminders: :meth:`PictureService.claim_reminders` records each (incident, stage, deadline)
in ``reminders_sent`` with an insert that ignores rows already there, and returns only the
rows it inserted — in the caller's transaction, so the outbox message and the claim commit
together and a restart never sends one twice (N4).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from cases.services.campaigns import SOURCE as CAMPAIGN_SOURCE
from cases.services.case_models import OPEN_CASE_STATUSES, iso
from cases.services.deadlines import CLOCKED_STAGES, deadline_status, reminder_key
from cases.services.incident_models import incident_deadlines, submitted_stages
from cases.store import Store
from cases.store.tables import alerts, entities, incident_updates, incidents
from cases.store.tables_cases import alert_events, case_entities, cases, reminders_sent
from enrichment.intel.tables import campaigns as intel_campaigns
from pukara.core.config import Settings
from pukara.core.schema import utcnow

CLOSED_INCIDENT_STATUSES = ("closed", "rejected")
REMIND_STATES = ("due-soon", "overdue")


@dataclass(frozen=True)
class Reminder:
    """One reminder to send: the entity, its incident, the stage and its deadline."""

    entity_id: str
    incident_id: str
    tracking_number: str
    stage: str
    deadline: datetime
    state: str

    @property
    def key(self) -> str:
        """The idempotency key the outbox sends it under (same as the incident service's)."""
        return reminder_key(self.incident_id, self.stage, self.deadline)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "deadline": iso(self.deadline), "key": self.key}


@dataclass(frozen=True)
class IncidentClock:
    """The deadline states of one (real, not exercise) incident."""

    incident_id: str
    tracking_number: str
    entity_id: str
    sector: str
    status: str
    deadlines: dict[str, datetime | None]
    states: dict[str, str]
    pending: frozenset[str]


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median and p90 (nearest rank) of durations in seconds."""
    if not values:
        return {"count": 0, "median": None, "p90": None}
    ordered = sorted(values)
    rank = max(1, math.ceil(0.9 * len(ordered)))
    return {"count": len(ordered), "median": statistics.median(ordered),
            "p90": ordered[rank - 1]}


class PictureService:
    """Deadline board, dashboard aggregates and reminders over the store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    # -- deadlines --------------------------------------------------------------------

    def clocks(self, conn: Connection, now: datetime, *,
               open_only: bool = False) -> Iterator[IncidentClock]:
        """Deadline states of every real incident (exercises excluded)."""
        query = (select(incidents, entities.c.sector)
                 .join(entities, entities.c.id == incidents.c.entity_id)
                 .where(incidents.c.exercise_id.is_(None)).order_by(incidents.c.created_at))
        if open_only:
            query = query.where(incidents.c.status.not_in(CLOSED_INCIDENT_STATUSES))
        rows = list(conn.execute(query).mappings())
        updates: dict[str, list[Any]] = defaultdict(list)
        ids = [r["id"] for r in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found = select(incident_updates.c.incident_id, incident_updates.c.stage,
                           incident_updates.c.number, incident_updates.c.created_at).where(
                incident_updates.c.incident_id.in_(chunk))
            for update in conn.execute(found).mappings():
                updates[update["incident_id"]].append(update)
        default = self.settings.regime()
        for row in rows:
            stages = submitted_stages(updates[row["id"]])
            deadlines = incident_deadlines(dict(row), stages, default)
            states = deadline_status(deadlines, stages, now, awareness_at=row["awareness_at"])
            yield IncidentClock(
                incident_id=row["id"], tracking_number=row["tracking_number"],
                entity_id=row["entity_id"], sector=row["sector"], status=row["status"],
                deadlines={s.value: deadlines.for_stage(s) for s in CLOCKED_STAGES},
                states=dict(states), pending=_pending(stages))

    def compliance(self, now: datetime | None = None) -> dict[str, Any]:
        """Per entity and per sector: how many stage deadlines are met, due, due soon, overdue."""
        now = now or utcnow()
        by_entity: dict[str, Counter[str]] = defaultdict(Counter)
        by_sector: dict[str, Counter[str]] = defaultdict(Counter)
        with self.store.read() as conn:
            for clock in self.clocks(conn, now):
                for state in clock.states.values():
                    if state != "not-required":
                        by_entity[clock.entity_id][state] += 1
                        by_sector[clock.sector][state] += 1
        return {"by_entity": _with_rate(by_entity), "by_sector": _with_rate(by_sector)}

    def overdue(self, conn: Connection, now: datetime) -> list[dict[str, Any]]:
        """Open real incidents with a stage overdue (identifiers only, no content)."""
        return [{"incident_id": c.incident_id, "tracking_number": c.tracking_number,
                 "entity_id": c.entity_id, "sector": c.sector,
                 "stages": sorted(s for s, v in c.states.items() if v == "overdue")}
                for c in self.clocks(conn, now, open_only=True)
                if "overdue" in c.states.values()]

    # -- reminders --------------------------------------------------------------------

    def _wanted(self, conn: Connection, now: datetime) -> list[Reminder]:
        """Stages not yet submitted whose deadline is near or past."""
        wanted: list[Reminder] = []
        for clock in self.clocks(conn, now, open_only=True):
            for stage, state in clock.states.items():
                deadline = clock.deadlines.get(stage)
                if (state in REMIND_STATES and deadline is not None
                        and stage in clock.pending):
                    wanted.append(Reminder(clock.entity_id, clock.incident_id,
                                           clock.tracking_number, stage, deadline, state))
        return wanted

    def due_reminders(self, now: datetime | None = None) -> list[Reminder]:
        """Reminders due and not yet claimed (read only)."""
        now = now or utcnow()
        with self.store.read() as conn:
            sent = {(r.incident_id, r.stage, r.deadline) for r in conn.execute(
                select(reminders_sent.c.incident_id, reminders_sent.c.stage,
                       reminders_sent.c.deadline))}
            return [r for r in self._wanted(conn, now)
                    if (r.incident_id, r.stage, r.deadline) not in sent]

    def claim_reminders(self, conn: Connection, now: datetime | None = None) -> list[Reminder]:
        """Record and return the reminders due now that were never claimed (idempotent)."""
        now = now or utcnow()
        claimed: list[Reminder] = []
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for reminder in self._wanted(conn, now):
            statement = dialect_insert(reminders_sent).values(
                incident_id=reminder.incident_id, stage=reminder.stage,
                deadline=reminder.deadline, entity_id=reminder.entity_id,
                state=reminder.state, claimed_at=now,
            ).on_conflict_do_nothing().returning(reminders_sent.c.incident_id)
            if conn.execute(statement).first() is not None:
                claimed.append(reminder)
        return claimed

    # -- dashboard --------------------------------------------------------------------

    def dashboard(self, now: datetime | None = None) -> dict[str, Any]:
        """Every aggregate of the dashboard, real data only."""
        now = now or utcnow()
        with self.store.read() as conn:
            overdue = self.overdue(conn, now)
            return {
                "generated_at": iso(now),
                "alerts_per_minute": self.alerts_per_minute(conn, now),
                "open_cases": self.open_cases(conn),
                "time_to_acknowledge": percentiles(self._ack_seconds(conn)),
                "time_to_close": percentiles(self._close_seconds(conn)),
                "overdue_reports": {"count": len(overdue), "incidents": overdue},
                "active_campaigns": self.active_campaigns(conn, now),
                "compliance_by_sector": self.compliance(now)["by_sector"],
            }

    @staticmethod
    def alerts_per_minute(conn: Connection, now: datetime) -> list[dict[str, Any]]:
        """Alert events (folded repeats counted) per minute over the last 60 minutes."""
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
        minutes = [start + timedelta(minutes=i) for i in range(60)]
        counts: Counter[datetime] = Counter()
        query = select(alerts.c.observed_at, alerts.c.count).where(
            alerts.c.exercise_id.is_(None), alerts.c.observed_at >= start,
            alerts.c.observed_at <= now)
        for observed_at, count in conn.execute(query):
            counts[observed_at.replace(second=0, microsecond=0)] += count
        return [{"minute": iso(m), "alerts": counts[m]} for m in minutes]

    @staticmethod
    def open_cases(conn: Connection) -> dict[str, dict[str, int]]:
        """Open (not closed) real cases by severity, by sector and by entity."""
        real_open = (cases.c.exercise_id.is_(None), cases.c.status.in_(
            (*OPEN_CASE_STATUSES, "resolved")))
        by_severity = conn.execute(select(cases.c.severity, func.count()).where(*real_open)
                                   .group_by(cases.c.severity))
        by_entity = conn.execute(
            select(case_entities.c.entity_id, func.count())
            .join(cases, cases.c.id == case_entities.c.case_id).where(*real_open)
            .group_by(case_entities.c.entity_id))
        by_sector = conn.execute(
            select(entities.c.sector, func.count(func.distinct(cases.c.id)))
            .select_from(case_entities)
            .join(cases, cases.c.id == case_entities.c.case_id)
            .join(entities, entities.c.id == case_entities.c.entity_id).where(*real_open)
            .group_by(entities.c.sector))
        return {"by_severity": {k: int(v) for k, v in by_severity},
                "by_sector": {k: int(v) for k, v in by_sector},
                "by_entity": {k: int(v) for k, v in by_entity}}

    @staticmethod
    def _ack_seconds(conn: Connection) -> list[float]:
        """Seconds from observation to the first triage action on each real alert."""
        first = (select(alert_events.c.alert_id, func.min(alert_events.c.at).label("at"))
                 .where(alert_events.c.from_status == "new")
                 .group_by(alert_events.c.alert_id).subquery())
        query = (select(alerts.c.first_seen, first.c.at)
                 .join(first, first.c.alert_id == alerts.c.id)
                 .where(alerts.c.exercise_id.is_(None)))
        return [_seconds(r.first_seen, r.at) for r in conn.execute(query)]

    @staticmethod
    def _close_seconds(conn: Connection) -> list[float]:
        """Seconds from opening to closing of each real case closed (merges left out)."""
        query = select(cases.c.created_at, cases.c.closed_at).where(
            cases.c.exercise_id.is_(None), cases.c.closed_at.is_not(None),
            cases.c.merged_into.is_(None))
        return [_seconds(r.created_at, r.closed_at) for r in conn.execute(query)]

    def active_campaigns(self, conn: Connection, now: datetime) -> dict[str, Any]:
        """Correlation campaigns (real) seen within the correlation window, and open
        ``correlation`` alerts; entity counts only, never which entities."""
        since = now - timedelta(hours=self.settings.correlation_window_hours)
        rows = conn.execute(select(intel_campaigns).where(
            intel_campaigns.c.exercise_id == "", intel_campaigns.c.last_seen >= since)
            .order_by(intel_campaigns.c.last_seen.desc()))
        listed = [{"key": r.key, "observable": r.observable_key,
                   "entities": len(r.entity_ids), "first_seen": iso(r.first_seen),
                   "last_seen": iso(r.last_seen)} for r in rows]
        open_alerts = conn.execute(select(func.count()).select_from(alerts).where(
            alerts.c.source == CAMPAIGN_SOURCE, alerts.c.exercise_id.is_(None),
            alerts.c.status.in_(("new", "acknowledged")))).scalar_one()
        return {"count": len(listed), "campaigns": listed, "open_alerts": int(open_alerts)}


def _pending(submitted: Mapping[str, datetime]) -> frozenset[str]:
    """Clocked stages not yet covered by a submission of themselves or a later stage."""
    names = [s.value for s in CLOCKED_STAGES]
    return frozenset(name for i, name in enumerate(names)
                     if not any(later in submitted for later in names[i:]))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def _with_rate(groups: dict[str, Counter[str]]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for name, counts in sorted(groups.items()):
        decided = counts["met"] + counts["overdue"]
        rate = round(counts["met"] / decided, 4) if decided else None
        result[name] = {**{s: counts[s] for s in ("met", "due", "due-soon", "overdue")},
                        "met_rate": rate}
    return result


def reminders_json(items: Iterable[Reminder]) -> list[dict[str, Any]]:
    """Reminders as JSON-ready dicts."""
    return [r.as_dict() for r in items]
