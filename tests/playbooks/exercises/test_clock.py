"""Exercise time from wall time, pauses and speed (pure arithmetic, no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playbooks.exercises.clock import Clock

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_running_clock_scales_wall_time_by_speed() -> None:
    clock = Clock(speed=60, started_at=T0)
    assert clock.exercise_seconds(at(10)) == 600.0
    assert clock.wall_at(600) == at(10)


def test_a_pause_freezes_time_and_shifts_every_later_slot() -> None:
    paused = Clock(speed=60, started_at=T0, paused_at=at(10))
    assert paused.exercise_seconds(at(50)) == 600.0
    resumed = Clock(speed=60, started_at=T0, paused_seconds=40)
    assert resumed.exercise_seconds(at(50)) == 600.0
    assert resumed.wall_at(1200) == at(60)  # 20 s of running + 40 s of pause


def test_past_moments_only_discount_pauses_before_them() -> None:
    clock = Clock(speed=60, started_at=T0, paused_seconds=40)
    pauses = [(at(10), at(50))]
    assert clock.exercise_seconds_of(at(5), pauses) == 300.0
    assert clock.exercise_seconds_of(at(30), pauses) == 600.0  # inside the pause
    assert clock.exercise_seconds_of(at(60), pauses) == 1200.0


def test_time_stops_at_the_end() -> None:
    clock = Clock(speed=600, started_at=T0, ended_at=at(2))
    assert clock.exercise_seconds(at(100)) == 1200.0
