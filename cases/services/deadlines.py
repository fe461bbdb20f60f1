"""Regulatory reporting deadlines, computed from the stored UTC ``awareness_at`` (SECURITY N1).

A regime (:class:`pukara.core.config.DeadlineRegime`) gives the early-warning and
notification periods in hours after awareness, and the final report either a number of days
or one calendar month after the *notification*. While the notification stage has not been
submitted, the final-report deadline counts from the notification deadline; once it has, from
the submission. Calendar months use ``dateutil.relativedelta``, which clamps to the month's
end (31 Jan + 1 month = 28 or 29 Feb). Everything is UTC, so no DST change shifts a deadline.
Exercise incidents (``exercise_id`` set) run no regulatory clock (SECURITY M1).

Status of a stage (:func:`deadline_status`):

``not-required``
    the regime has no such stage (or the incident is an exercise);
``met``
    submitted on or before its deadline;
``overdue``
    not submitted and the deadline has passed, or submitted after the deadline (the status
    records compliance, so a late stage stays ``overdue``);
``due-soon``
    not submitted, and the time left is at most 25 % of the stage's period or at most 6 h,
    whichever window is larger (24 h early warning: last 6 h; 72 h notification: last 18 h;
    one-month final report: roughly the last week);
``due``
    not submitted and not yet due soon.

A later stage covers the earlier ones: a notification sent within 24 h also meets the early
warning, and a final report meets both (NIS2 lets the notification carry the early warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ConfigDict

from pukara.core.config import DeadlineRegime

EXERCISE_REGIME = "exercise"
DUE_SOON_FRACTION = 0.25
DUE_SOON_MINIMUM = timedelta(hours=6)

DeadlineState = Literal["met", "due", "due-soon", "overdue", "not-required", "postponed"]


class Stage(StrEnum):
    """Stages of an incident's reporting, in the order they are due."""

    EARLY_WARNING = "early-warning"
    NOTIFICATION = "notification"
    INTERMEDIATE = "intermediate"
    PROGRESS = "progress"
    FINAL = "final"
    UPDATE = "update"


CLOCKED_STAGES = (Stage.EARLY_WARNING, Stage.NOTIFICATION, Stage.FINAL)


class Deadlines(BaseModel):
    """The deadlines of one incident (UTC); ``None`` where the regime has no such stage."""

    model_config = ConfigDict(frozen=True)

    early_warning: datetime | None = None
    notification: datetime | None = None
    final_report: datetime | None = None
    regime: str

    def for_stage(self, stage: Stage) -> datetime | None:
        """The deadline of a clocked stage."""
        return {
            Stage.EARLY_WARNING: self.early_warning,
            Stage.NOTIFICATION: self.notification,
            Stage.FINAL: self.final_report,
        }.get(stage)


def reminder_key(incident_id: str, stage: str, deadline: datetime) -> str:
    """Idempotency key of a deadline reminder (N4): one per incident, stage and deadline.

    An outbox that refuses a second row with the same key sends each reminder exactly once
    across restarts; a moved deadline (awareness corrected) gets a new key.
    """
    due = _utc(deadline).strftime("%Y%m%dT%H%M%SZ")
    return f"deadline:{incident_id}:{stage}:{due}"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("deadlines need timezone-aware datetimes")
    return value.astimezone(UTC)


def _after_hours(start: datetime, hours: float | None) -> datetime | None:
    return None if hours is None else start + timedelta(hours=hours)


def final_report_due(regime: DeadlineRegime, anchor: datetime) -> datetime | None:
    """The final-report deadline counted from ``anchor`` (the notification)."""
    if regime.final_report_calendar_month:
        due: datetime = anchor + relativedelta(months=1)
        return due
    if regime.final_report_days is None:
        return None
    return anchor + timedelta(days=regime.final_report_days)


def compute_deadlines(
    awareness_at: datetime,
    regime: DeadlineRegime,
    *,
    regime_name: str,
    notification_submitted_at: datetime | None = None,
    exercise: bool = False,
) -> Deadlines:
    """Deadlines of an incident the entity became aware of at ``awareness_at``.

    The final report counts from ``notification_submitted_at`` when given, else from the
    notification deadline (else from awareness, for a regime without a notification stage).
    """
    if exercise:
        return Deadlines(regime=EXERCISE_REGIME)
    awareness = _utc(awareness_at)
    notification = _after_hours(awareness, regime.notification_hours)
    if notification_submitted_at is not None:
        anchor = _utc(notification_submitted_at)
    else:
        anchor = notification or awareness
    return Deadlines(
        early_warning=_after_hours(awareness, regime.early_warning_hours),
        notification=notification,
        final_report=final_report_due(regime, anchor),
        regime=regime_name,
    )


def _period_start(
    stage: Stage,
    deadlines: Deadlines,
    awareness_at: datetime | None,
    submitted: Mapping[str, datetime],
) -> datetime | None:
    """Where a stage's period starts: awareness, or the notification for the final report."""
    if stage is Stage.FINAL:
        sent = submitted.get(Stage.NOTIFICATION.value)
        return _utc(sent) if sent is not None else deadlines.notification or awareness_at
    return awareness_at


def _covering_submission(stage: Stage, submitted: Mapping[str, datetime]) -> datetime | None:
    """The earliest submission of ``stage`` or of any later clocked stage."""
    later = CLOCKED_STAGES[CLOCKED_STAGES.index(stage):]
    times = [_utc(submitted[s.value]) for s in later if s.value in submitted]
    return min(times) if times else None


def _state(
    due: datetime, start: datetime | None, done: datetime | None, now: datetime
) -> DeadlineState:
    if done is not None:
        return "met" if done <= due else "overdue"
    if now > due:
        return "overdue"
    period = due - start if start is not None else timedelta(0)
    window = max(period * DUE_SOON_FRACTION, DUE_SOON_MINIMUM)
    return "due-soon" if due - now <= window else "due"


def deadline_status(
    deadlines: Deadlines,
    submitted_stages: Mapping[str, datetime],
    now: datetime,
    *,
    awareness_at: datetime | None = None,
) -> dict[str, DeadlineState]:
    """The state of each clocked stage (``early-warning``, ``notification``, ``final``).

    ``submitted_stages`` maps a stage name to when it was first submitted. ``awareness_at``
    gives the start of the early-warning and notification periods for the due-soon window;
    without it those stages are due soon only in their last 6 h.
    """
    now = _utc(now)
    awareness = _utc(awareness_at) if awareness_at is not None else None
    result: dict[str, DeadlineState] = {}
    for stage in CLOCKED_STAGES:
        due = deadlines.for_stage(stage)
        if due is None:
            result[stage.value] = "not-required"
            continue
        start = _period_start(stage, deadlines, awareness, submitted_stages)
        result[stage.value] = _state(due, start, _covering_submission(stage, submitted_stages), now)
    return result


class FinalReportPlan(BaseModel):
    """NIS2 Art. 23(4)(e): when the incident is still ongoing at the final-report deadline, a
    progress report is due then instead, and the final report one period after the incident
    was handled."""

    model_config = ConfigDict(frozen=True)

    progress_due: datetime | None = None
    progress: DeadlineState | None = None
    final_due: datetime | None = None
    final: DeadlineState | None = None


def final_report_plan(
    deadlines: Deadlines,
    regime: DeadlineRegime,
    submitted_stages: Mapping[str, datetime],
    now: datetime,
    *,
    handled_at: datetime | None,
) -> FinalReportPlan:
    """The progress-report branch for an incident (``handled_at`` None = still ongoing).

    Nothing changes while the final-report deadline has not passed, when the final report
    was sent, or when the incident was handled before the deadline.
    """
    due = deadlines.final_report
    sent = submitted_stages.get(Stage.FINAL.value)
    now = _utc(now)
    if due is None or sent is not None:
        return FinalReportPlan()
    if handled_at is not None and _utc(handled_at) <= due:
        return FinalReportPlan()
    if handled_at is None and now < due:
        return FinalReportPlan()
    progress_sent = submitted_stages.get(Stage.PROGRESS.value)
    progress = _state(due, None, _utc(progress_sent) if progress_sent else None, now)
    if handled_at is None:
        return FinalReportPlan(progress_due=due, progress=progress, final=None)
    final_due = final_report_due(regime, _utc(handled_at))
    if final_due is None:
        return FinalReportPlan(progress_due=due, progress=progress)
    final = _state(final_due, _utc(handled_at), None, now)
    return FinalReportPlan(progress_due=due, progress=progress, final_due=final_due,
                           final=final)
