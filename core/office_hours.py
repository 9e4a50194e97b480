"""Office hours: when routine reminders may be delivered (issue 14 item 4).

Routine pings — a public reply that is due or overdue, a 一般-grade incident step that is
due or overdue — wait for the office to be open: a working day per the working-day
calendar (weekends and public holidays are closed, make-up working days 调休 are open),
between ``start`` and ``end`` Beijing time. What falls outside is delivered at the start
of the next working period. Serious incidents (重大, 特级) never wait; the domains decide
what is routine, this module only answers *when is the office next open*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from core.clock import SHANGHAI, ensure_utc
from core.workdays import WorkdayCalendar

#: How far ahead to look for a working day (the longest holiday is 8–9 days).
_HORIZON_DAYS = 60


@dataclass(frozen=True)
class OfficeHours:
    """Working days (per ``calendar``) from ``start`` to ``end``, Beijing time."""

    calendar: WorkdayCalendar = field(compare=False)
    start: time = time(9, 0)
    end: time = time(17, 30)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"office hours must start before they end: {self.start}–{self.end}")

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` is inside the office hours of a working day."""
        local = ensure_utc(at).astimezone(SHANGHAI)
        return (self.calendar.is_workday(local.date())
                and self.start <= local.time().replace(tzinfo=None) < self.end)

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when the office is open then, else the start of the next working
        period (the same day's ``start`` before opening time, else the next working day's)."""
        if self.is_open(at):
            return at
        local = ensure_utc(at).astimezone(SHANGHAI)
        day = local.date()
        if not (self.calendar.is_workday(day) and local.time().replace(tzinfo=None) < self.start):
            day += timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            if self.calendar.is_workday(day):
                return ensure_utc(datetime.combine(day, self.start, tzinfo=SHANGHAI))
            day += timedelta(days=1)
        return at   # no working day in sight (broken holiday data): never hold a message forever

    def zh(self) -> str:
        """``工作日 09:00–17:30``."""
        return f"工作日 {self.start:%H:%M}–{self.end:%H:%M}"
