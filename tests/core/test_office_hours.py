"""Office hours: when a routine reminder may go out (issue 14 item 4)."""

from __future__ import annotations

from datetime import time

import pytest

from core.clock import parse_local
from core.office_hours import OfficeHours
from core.workdays import WorkdayCalendar

HOURS = OfficeHours(WorkdayCalendar(), time(9, 0), time(17, 30))


@pytest.mark.parametrize(("at", "delivered"), [
    ("2026-11-23T10:00", "2026-11-23T10:00"),   # Monday, open: at once
    ("2026-11-23T09:00", "2026-11-23T09:00"),   # the opening minute is open
    ("2026-11-23T07:10", "2026-11-23T09:00"),   # before opening: the same morning
    ("2026-11-23T17:30", "2026-11-24T09:00"),   # closing time is closed: the next morning
    ("2026-11-23T23:59", "2026-11-24T09:00"),
    ("2026-11-27T18:00", "2026-11-30T09:00"),   # Friday evening: Monday
    ("2026-10-03T00:00", "2026-10-08T09:00"),   # National Day (10-01..10-07): the first working day after
    ("2026-10-03T15:00", "2026-10-08T09:00"),
    ("2026-10-09T20:00", "2026-10-10T09:00"),   # Saturday 10-10 is a make-up working day (调休)
    ("2026-09-19T12:00", "2026-09-20T09:00"),   # and so is Sunday 09-20
])
def test_next_open(at: str, delivered: str) -> None:
    assert HOURS.next_open(parse_local(at)) == parse_local(delivered)


def test_is_open_and_how_it_reads() -> None:
    assert HOURS.is_open(parse_local("2026-10-10T10:00"))
    assert not HOURS.is_open(parse_local("2026-10-03T10:00"))
    assert HOURS.zh() == "工作日 09:00–17:30"
    with pytest.raises(ValueError):
        OfficeHours(WorkdayCalendar(), time(18, 0), time(9, 0))
