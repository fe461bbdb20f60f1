"""Regulatory deadlines (SECURITY N1, M1): configured regimes, calendar months, DST, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.services.deadlines import (
    Deadlines,
    compute_deadlines,
    deadline_status,
)
from pukara.core.config import DeadlineRegime, Settings


@pytest.fixture
def settings(pukara_home: Path) -> Settings:
    return Settings(home=pukara_home)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def nis2(settings: Settings, awareness: datetime, notified: datetime | None = None) -> Deadlines:
    return compute_deadlines(awareness, settings.regime("nis2"), regime_name="nis2",
                             notification_submitted_at=notified)


@pytest.mark.parametrize(("year", "feb_end"), [(2024, 29), (2025, 28)])
def test_nis2_31_january_2330_leap_and_common_year(settings: Settings, year: int,
                                                   feb_end: int) -> None:
    awareness = utc(year, 1, 31, 23, 30)
    pending = nis2(settings, awareness)
    assert pending.early_warning == utc(year, 2, 1, 23, 30)
    assert pending.notification == utc(year, 2, 3, 23, 30)
    # not yet notified: one calendar month after the notification *deadline* (3 Feb)
    assert pending.final_report == utc(year, 3, 3, 23, 30)
    # notified at 23:45 on 31 Jan: one calendar month later clamps to the end of February
    notified = nis2(settings, awareness, notified=utc(year, 1, 31, 23, 45))
    assert notified.final_report == utc(year, 2, feb_end, 23, 45)
    assert notified.early_warning == pending.early_warning
    assert notified.regime == "nis2"


def test_final_report_counts_from_the_actual_notification(settings: Settings) -> None:
    awareness = utc(2026, 3, 10, 8, 0)
    assert nis2(settings, awareness, notified=utc(2026, 3, 11, 9, 15)).final_report == utc(
        2026, 4, 11, 9, 15)
    assert nis2(settings, awareness).final_report == utc(2026, 4, 13, 8, 0)


@pytest.mark.parametrize(
    ("local", "zone"),
    [
        # the night Europe/Madrid springs forward (2025-03-30 01:00 UTC): 23 h local day
        (datetime(2025, 3, 29, 22, 0), "Europe/Madrid"),
        # the night it falls back (2025-10-26 01:00 UTC): 25 h local day
        (datetime(2025, 10, 25, 22, 0), "Europe/Madrid"),
        # Lima has no DST (UTC-5 all year); the same absolute rule applies
        (datetime(2025, 3, 29, 22, 0), "America/Lima"),
    ],
)
def test_dst_never_shifts_deadlines(settings: Settings, local: datetime, zone: str) -> None:
    awareness = local.replace(tzinfo=ZoneInfo(zone))
    deadlines = nis2(settings, awareness)
    assert deadlines.early_warning is not None and deadlines.notification is not None
    assert (deadlines.early_warning - awareness) == timedelta(hours=24)
    assert (deadlines.notification - awareness) == timedelta(hours=72)
    assert deadlines.early_warning.tzinfo is UTC
    assert deadlines == nis2(settings, awareness.astimezone(UTC))


def test_dst_examples_exact_utc(settings: Settings) -> None:
    spring = datetime(2025, 3, 29, 22, 0, tzinfo=ZoneInfo("Europe/Madrid"))  # 21:00 UTC
    assert nis2(settings, spring).early_warning == utc(2025, 3, 30, 21, 0)
    lima = datetime(2025, 3, 29, 22, 0, tzinfo=ZoneInfo("America/Lima"))  # 03:00 UTC next day
    assert nis2(settings, lima).notification == utc(2025, 4, 2, 3, 0)


def test_peru_regime_48_hours_no_early_warning(settings: Settings) -> None:
    awareness = utc(2026, 2, 4, 15, 0)
    deadlines = compute_deadlines(awareness, settings.regime("peru"), regime_name="peru")
    assert deadlines.early_warning is None
    assert deadlines.notification == utc(2026, 2, 6, 15, 0)
    assert deadlines.final_report == utc(2026, 3, 8, 15, 0)  # 30 days after the notification
    status = deadline_status(deadlines, {}, utc(2026, 2, 5, 0, 0), awareness_at=awareness)
    assert status == {"early-warning": "not-required", "notification": "due", "final": "due"}


def test_default_regime_and_days(settings: Settings) -> None:
    awareness = utc(2026, 1, 31, 23, 30)
    deadlines = compute_deadlines(awareness, settings.regime(), regime_name="default")
    assert deadlines.final_report == utc(2026, 3, 5, 23, 30)  # 3 Feb 23:30 + 30 days


def test_exercise_has_no_clock(settings: Settings) -> None:
    deadlines = compute_deadlines(utc(2026, 1, 31, 23, 30), settings.regime("nis2"),
                                  regime_name="nis2", exercise=True)
    assert deadlines == Deadlines(regime="exercise")
    status = deadline_status(deadlines, {}, utc(2027, 1, 1))
    assert status == {"early-warning": "not-required", "notification": "not-required",
                      "final": "not-required"}


def test_naive_awareness_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_deadlines(datetime(2026, 1, 1), settings.regime(), regime_name="default")


AWARE = utc(2026, 5, 4, 10, 0)


@pytest.mark.parametrize(
    ("hours_after", "submitted", "expected"),
    [
        (1, {}, {"early-warning": "due", "notification": "due", "final": "due"}),
        # 5 h left of 24 h: inside the 6 h window; notification has 53 h of 72 h left
        (19, {}, {"early-warning": "due-soon", "notification": "due", "final": "due"}),
        # 17 h left of 72 h: inside 25 % (18 h)
        (55, {"early-warning": 2}, {"early-warning": "met", "notification": "due-soon",
                                    "final": "due"}),
        (25, {}, {"early-warning": "overdue", "notification": "due", "final": "due"}),
        # a notification within 24 h also meets the early warning
        (30, {"notification": 10}, {"early-warning": "met", "notification": "met",
                                    "final": "due"}),
        # a late notification is recorded as overdue, not met
        (90, {"early-warning": 3, "notification": 80},
         {"early-warning": "met", "notification": "overdue", "final": "due"}),
    ],
)
def test_status(settings: Settings, hours_after: int, submitted: dict[str, int],
                expected: dict[str, str]) -> None:
    stages = {stage: AWARE + timedelta(hours=h) for stage, h in submitted.items()}
    notified = stages.get("notification")
    deadlines = nis2(settings, AWARE, notified)
    now = AWARE + timedelta(hours=hours_after)
    assert deadline_status(deadlines, stages, now, awareness_at=AWARE) == expected


def test_final_report_status_window(settings: Settings) -> None:
    notified = AWARE + timedelta(hours=20)  # 2026-05-05 06:00 → final due 2026-06-05 06:00
    stages = {"early-warning": AWARE, "notification": notified}
    deadlines = nis2(settings, AWARE, notified)
    assert deadlines.final_report == utc(2026, 6, 5, 6, 0)
    # 31-day period: due soon in its last 7.75 days, i.e. from 2026-05-28 12:00
    assert deadline_status(deadlines, stages, utc(2026, 5, 28, 12, 0), awareness_at=AWARE)[
        "final"] == "due-soon"
    assert deadline_status(deadlines, stages, utc(2026, 5, 28, 11, 59), awareness_at=AWARE)[
        "final"] == "due"
    assert deadline_status(deadlines, stages, utc(2026, 6, 5, 6, 1), awareness_at=AWARE)[
        "final"] == "overdue"
    done = {**stages, "final": utc(2026, 6, 1)}
    assert deadline_status(deadlines, done, utc(2026, 7, 1), awareness_at=AWARE)[
        "final"] == "met"


def test_without_awareness_the_window_is_six_hours(settings: Settings) -> None:
    deadlines = nis2(settings, AWARE)
    assert deadline_status(deadlines, {}, AWARE + timedelta(hours=55))["notification"] == "due"
    assert deadline_status(deadlines, {}, AWARE + timedelta(hours=67))[
        "notification"] == "due-soon"


@given(
    awareness=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 1),
                           timezones=st.just(UTC)),
    delay=st.integers(min_value=0, max_value=500 * 3600),
)
def test_calendar_month_bounds(awareness: datetime, delay: int) -> None:
    regime = DeadlineRegime(final_report_calendar_month=True)
    notified = awareness + timedelta(seconds=delay)
    deadlines = compute_deadlines(awareness, regime, regime_name="nis2",
                                  notification_submitted_at=notified)
    assert deadlines.early_warning == awareness + timedelta(hours=24)
    assert deadlines.final_report is not None
    span = deadlines.final_report - notified
    assert timedelta(days=28) <= span <= timedelta(days=31)
    assert deadlines.final_report.time() == notified.time()
    day = notified.day
    assert deadlines.final_report.day == day or deadlines.final_report.day < day


def test_progress_report_branch_when_still_open_at_the_final_deadline(
        settings: Settings) -> None:
    from cases.services.deadlines import final_report_plan

    regime = settings.regime("nis2")
    notified = utc(2026, 1, 31, 23, 45)
    deadlines = nis2(settings, utc(2026, 1, 31, 23, 30), notified)
    assert deadlines.final_report == utc(2026, 2, 28, 23, 45)
    stages = {"early-warning": utc(2026, 2, 1, 8), "notification": notified}
    before = final_report_plan(deadlines, regime, stages, utc(2026, 2, 20), handled_at=None)
    assert before.progress is None, "nothing changes before the final deadline"
    ongoing = final_report_plan(deadlines, regime, stages, utc(2026, 3, 2), handled_at=None)
    assert (ongoing.progress_due, ongoing.progress) == (utc(2026, 2, 28, 23, 45), "overdue")
    assert ongoing.final_due is None
    with_progress = final_report_plan(deadlines, regime, {**stages, "progress":
                                      utc(2026, 2, 27)}, utc(2026, 3, 2), handled_at=None)
    assert with_progress.progress == "met"
    handled = final_report_plan(deadlines, regime, {**stages, "progress": utc(2026, 2, 27)},
                                utc(2026, 3, 20), handled_at=utc(2026, 3, 15, 12))
    assert (handled.final_due, handled.final) == (utc(2026, 4, 15, 12), "due")
    early = final_report_plan(deadlines, regime, stages, utc(2026, 3, 2),
                              handled_at=utc(2026, 2, 10))
    assert early.progress is None, "handled before the deadline: the plain final report"


def test_incident_view_shows_the_progress_report_while_still_open(pukara_home: Path) -> None:
    from cases.services.identity import Principal, Role
    from pukara.core.config import load_settings
    from pukara.core.schema import Entity, IncidentReport
    from pukara.wiring import build_services

    built = build_services(load_settings())
    try:
        built.identity.add_entity(Entity(id="minsa", name="MINSA", sector="health"))
        reporter = Principal(Role.REPORTER, 0, entity_id="minsa")
        with built.store.write() as conn:
            view = built.incidents.submit(conn, reporter, IncidentReport(
                title="Intrusión persistente", classification="intrusions/system-compromise",
                detected_at=datetime.now(UTC) - timedelta(days=40)))
        shown = built.incidents.get(reporter, view["id"])
        assert shown["deadline_status"]["progress"] == "overdue"
        assert shown["deadline_status"]["final"] == "postponed"
        assert shown["deadlines"]["progress_report"] == view["deadlines"]["final_report"]
        assert shown["deadlines"]["final_report"] == view["deadlines"]["final_report"]
    finally:
        built.close()
