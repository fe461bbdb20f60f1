"""Exercise time as a function of wall time, pauses and speed (all stored, so a restart
resumes where the exercise was).

``exercise = speed × (wall − started − paused_total − current pause)``. A pause freezes
exercise time; on resume the pause's length is added to ``paused_seconds``, so every later
slot moves by exactly the pause (OpenAEV #1395, #2798: no "inject too old" after a pause).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Clock:
    """The timing state of one run, as stored in its ``exercises`` row."""

    speed: float
    started_at: datetime | None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    ended_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> Clock:
        """The clock of an ``exercises`` row."""
        return cls(speed=float(row["speed"]), started_at=row["started_at"],
                   paused_at=row["paused_at"], paused_seconds=float(row["paused_seconds"] or 0),
                   ended_at=row["ended_at"])

    def exercise_seconds(self, now: datetime) -> float:
        """Exercise time at wall time ``now`` (frozen while paused or after the end)."""
        if self.started_at is None:
            return 0.0
        stop = min(t for t in (now, self.paused_at, self.ended_at) if t is not None)
        wall = (stop - self.started_at).total_seconds() - self.paused_seconds
        return max(0.0, wall * self.speed)

    def wall_at(self, offset_seconds: float) -> datetime:
        """Wall time at which exercise time reaches ``offset_seconds`` (if no further pause)."""
        if self.started_at is None:
            raise ValueError("the exercise has not started")
        return self.started_at + timedelta(seconds=self.paused_seconds
                                           + offset_seconds / self.speed)

    def exercise_seconds_of(self, moment: datetime,
                            pauses: list[tuple[datetime, datetime | None]]) -> float:
        """Exercise time of a past wall ``moment`` (a submission's ``created_at``), given the
        pause records: only the pauses before ``moment`` count; inside a pause, time stands."""
        if self.started_at is None:
            return 0.0
        end = min(moment, self.ended_at) if self.ended_at else moment
        paused = 0.0
        for start, resumed in pauses:
            until = resumed or end
            overlap = (min(until, end) - max(start, self.started_at)).total_seconds()
            paused += max(0.0, overlap)
        wall = (end - self.started_at).total_seconds() - paused
        return max(0.0, wall * self.speed)
