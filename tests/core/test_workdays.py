"""Working-day calendar and Civil Code period counting (DOMAIN.md §10)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from core.clock import SHANGHAI
from core.errors import CalendarDataError, InputError
from core.workdays import WorkdayCalendar, load_override_dir


def at(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


@pytest.fixture
def cal() -> WorkdayCalendar:
    return WorkdayCalendar()


@pytest.mark.parametrize("makeup", ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09",
                                    "2026-09-20", "2026-10-10"])
def test_each_2026_makeup_day_is_a_working_day(cal: WorkdayCalendar, makeup: str) -> None:
    info = cal.day(date.fromisoformat(makeup))
    assert info.is_workday and info.is_makeup and not info.provisional


@pytest.mark.parametrize(("start", "n", "last_day"), [
    ("2026-02-13T10:00", 1, "2026-02-14"),   # Friday + 1 = make-up Saturday
    ("2026-10-09T10:00", 1, "2026-10-10"),   # Friday + 1 = make-up Saturday
    ("2026-09-19T10:00", 1, "2026-09-20"),   # Saturday + 1 = make-up Sunday
    ("2026-01-03T10:00", 1, "2026-01-04"),   # holiday Saturday + 1 = make-up Sunday
])
def test_makeup_days_are_counted(cal: WorkdayCalendar, start: str, n: int, last_day: str) -> None:
    assert cal.add_workdays(at(start), n).last_day == date.fromisoformat(last_day)


def test_start_on_a_holiday_counts_from_the_next_working_day(cal: WorkdayCalendar) -> None:
    # 2026-02-15 is in the Spring Festival break (02-15..02-23): the first working day
    # after the start day is 02-24, which is therefore the last day. Not 02-25.
    d = cal.add_workdays(at("2026-02-15T10:00"), 1)
    assert d.last_day == date(2026, 2, 24)
    assert d.due == datetime(2026, 2, 25, 0, 0, tzinfo=SHANGHAI)
    assert d.zh() == "截止：2026年2月24日（星期二）24:00"


def test_start_on_last_working_day_before_national_day(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(at("2026-09-30T16:00"), 1).last_day == date(2026, 10, 8)
    assert cal.add_workdays(at("2026-09-30T16:00"), 3).last_day == date(2026, 10, 10)


def test_weekend_start(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(at("2026-11-21T22:00"), 1).last_day == date(2026, 11, 23)
    assert cal.add_workdays(at("2026-11-28T08:00"), 3).last_day == date(2026, 12, 2)


def test_start_day_is_the_beijing_date_not_the_utc_one(cal: WorkdayCalendar) -> None:
    # 20:00 UTC on Friday 02-13 is 04:00 on Saturday 02-14 in Beijing.
    d = cal.add_workdays(datetime.fromisoformat("2026-02-13T20:00:00+00:00"), 1)
    assert d.last_day == date(2026, 2, 24)


def test_year_end_into_2027_is_provisional(cal: WorkdayCalendar) -> None:
    inside = cal.add_workdays(at("2026-12-28T09:00"), 2)
    assert inside.last_day == date(2026, 12, 30) and not inside.provisional
    crossing = cal.add_workdays(at("2026-12-30T09:00"), 3)
    # 12-31 works; 2027-01-01 is the fixed New Year holiday; then the weekend.
    assert crossing.last_day == date(2027, 1, 5)
    assert crossing.provisional
    assert "暂定" in crossing.zh()
    assert crossing.as_dict()["provisional"] is True


def test_provisional_year_knows_fixed_date_holidays_only(cal: WorkdayCalendar) -> None:
    assert not cal.is_workday(date(2027, 10, 1))
    assert cal.is_workday(date(2027, 5, 3))          # Monday, not a fixed-date holiday
    assert not cal.is_workday(date(2027, 5, 1))
    assert cal.is_provisional(date(2027, 3, 1))
    assert not cal.is_provisional(date(2026, 3, 2))


def test_override_file_covers_a_new_year_and_wins(tmp_path: Path) -> None:
    (tmp_path / "2027.toml").write_text(
        'notice = "测试通知"\n[holidays]\n"元旦" = ["2027-01-01..2027-01-03"]\n'
        '"春节" = ["2027-02-06..2027-02-13"]\n[workdays]\n"春节" = ["2027-02-14"]\n',
        encoding="utf-8")
    (tmp_path / "2026.toml").write_text('[holidays]\n"地方节日" = ["2026-11-24"]\n', encoding="utf-8")
    cal = WorkdayCalendar(overrides=load_override_dir(tmp_path))
    d = cal.add_workdays(at("2026-12-31T09:00"), 1)
    assert d.last_day == date(2027, 1, 4) and not d.provisional
    assert cal.is_workday(date(2027, 2, 14)) and not cal.is_workday(date(2027, 2, 12))
    # The override beats the package for 2026 too.
    assert not cal.is_workday(date(2026, 11, 24))
    assert cal.add_workdays(at("2026-11-23T09:00"), 1).last_day == date(2026, 11, 25)


@pytest.mark.parametrize(("content", "fragment"), [
    ('[holidays]\n"元旦" = ["2027-13-01"]\n', "无法识别的日期"),
    ('[holidays]\n"元旦" = ["2026-01-01"]\n', "不在 2027 年内"),
    ('[holidays]\n"a" = ["2027-01-05"]\n[workdays]\n"a" = ["2027-01-05"]\n', "同时被列为"),
    ('holiday = 1\n', "未知的键"),
    ('[holidays\n', "不是有效的 TOML"),
])
def test_bad_override_file_is_reported(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "2027.toml").write_text(content, encoding="utf-8")
    with pytest.raises(CalendarDataError, match=fragment):
        load_override_dir(tmp_path)


def test_office_cutoff(cal: WorkdayCalendar) -> None:
    d = cal.add_workdays(at("2026-02-15T10:00"), 1, cutoff=time(17, 30))
    assert d.due == datetime(2026, 2, 24, 17, 30, tzinfo=SHANGHAI)
    assert d.zh() == "截止：2026年2月24日（星期二）17:30"
    configured = WorkdayCalendar(cutoff=time(17, 30))
    assert configured.add_workdays(at("2026-02-15T10:00"), 1).due.hour == 9  # 17:30 CST in UTC


def test_month_periods_land_on_the_same_day_or_the_month_end(cal: WorkdayCalendar) -> None:
    assert cal.add_months(at("2026-05-31T10:00"), 3).last_day == date(2026, 8, 31)
    # 2027-02-28 is a Sunday (provisional year): the period ends on Monday 03-01.
    end = cal.add_months(at("2026-11-30T10:00"), 3)
    assert end.last_day == date(2027, 3, 1) and end.provisional
    # 2026-02-28 is a make-up Saturday: a working day, so the period ends there.
    assert cal.add_months(at("2026-01-31T10:00"), 1).last_day == date(2026, 2, 28)
    # Lands on a holiday -> the next working day.
    assert cal.add_months(at("2026-07-01T10:00"), 3).last_day == date(2026, 10, 8)


def test_calendar_day_period_ending_on_a_holiday_moves_to_next_working_day(cal: WorkdayCalendar) -> None:
    assert cal.add_days(at("2026-09-24T10:00"), 7).last_day == date(2026, 10, 8)
    assert cal.add_days(at("2026-11-20T10:00"), 3).last_day == date(2026, 11, 23)
    assert cal.add_days(at("2026-11-20T10:00"), 4).last_day == date(2026, 11, 24)


def test_non_positive_periods_are_refused(cal: WorkdayCalendar) -> None:
    for n in (0, -1):
        with pytest.raises(InputError, match="正整数"):
            cal.add_workdays(at("2026-11-23T09:00"), n)


def test_one_working_day_matches_the_package_for_every_day_of_2026(cal: WorkdayCalendar) -> None:
    start = date(2026, 1, 1)
    for offset in range(365 - 10):   # the last days of December reach into 2027
        day = start + timedelta(days=offset)
        expected = day + timedelta(days=1)
        while not chinese_calendar.is_workday(expected):
            expected += timedelta(days=1)
        got = cal.add_workdays(datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI), 1)
        assert got.last_day == expected, day
        assert not got.provisional
