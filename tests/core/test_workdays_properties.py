"""Property-based tests of the working-day calendar (core/workdays.py, DOMAIN.md §10).

Every calendar here is given its package explicitly (``HolidayPackage(through=2026)``, or
the memoised :class:`CappedPackage` subclass of it) so the properties do not depend on the order in which the autouse fixtures of tests/conftest.py
run: 2020–2026 come from ``chinese-calendar``, 2027 and later have no data (provisional)
unless an override file supplies them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.clock import SHANGHAI
from core.errors import CalendarDataError, InputError
from core.workdays import (
    MAX_PERIOD,
    Deadline,
    HolidayPackage,
    WorkdayCalendar,
    load_override_dir,
    load_override_file,
)

#: Same cap as tests/conftest.py (PACKAGE_KNOWN_THROUGH); 2027 is a year with no data.
KNOWN_THROUGH = 2026


class CappedPackage(HolidayPackage):
    """The package capped at :data:`KNOWN_THROUGH`, each answer looked up once.

    ``chinese-calendar`` takes some 45 µs a lookup; the properties below ask about the same
    few thousand days tens of thousands of times. The answers are the package's own.
    """

    def __init__(self) -> None:
        super().__init__(through=KNOWN_THROUGH)
        self._work: dict[date, bool] = {}
        self._names: dict[date, str | None] = {}

    def is_workday(self, d: date) -> bool:
        if d not in self._work:
            self._work[d] = super().is_workday(d)
        return self._work[d]

    def holiday_name(self, d: date) -> str | None:
        if d not in self._names:
            self._names[d] = super().holiday_name(d)
        return self._names[d]


PACKAGE = CappedPackage()
CAL = WorkdayCalendar(package=PACKAGE)

SETTINGS = settings(max_examples=200, deadline=None)
CHINESE = re.compile(r"[\u4e00-\u9fff]")
HOLIDAY_NAMES = ["元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节", "地方节日"]


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@st.composite
def instants(draw: st.DrawFn, first: date = date(2020, 1, 1),
             last: date = date(2027, 12, 31)) -> datetime:
    """An aware instant whose Beijing date lies in [first, last]; sometimes given in UTC."""
    day = draw(st.dates(min_value=first, max_value=last))
    moment = datetime.combine(day, draw(st.times()), tzinfo=SHANGHAI)
    return moment.astimezone(UTC) if draw(st.booleans()) else moment


def beijing_date(instant: datetime) -> date:
    return instant.astimezone(SHANGHAI).date()


def days_between(first: date, last: date) -> list[date]:
    """Every day in [first, last]."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def workdays_in(cal: WorkdayCalendar, after: date, through: date) -> int:
    """How many working days lie in (after, through]."""
    return sum(cal.is_workday(d) for d in days_between(after + timedelta(days=1), through))


workday_amounts = st.integers(min_value=1, max_value=400)


# --- 1–4: counting working days ---------------------------------------------------------

@SETTINGS
@given(start=instants(), n=workday_amounts)
@example(start=at(2026, 9, 30, 16), n=1)           # before the National Day break
@example(start=at(2026, 2, 15), n=1)               # inside the Spring Festival break
@example(start=at(2026, 12, 30), n=3)              # into the provisional year
@example(start=datetime(2026, 2, 13, 20, tzinfo=UTC), n=1)   # Saturday in Beijing
def test_last_day_is_a_working_day_after_the_start_date(start: datetime, n: int) -> None:
    d = CAL.add_workdays(start, n)
    assert CAL.is_workday(d.last_day)
    assert d.last_day > beijing_date(start)
    assert d.due > d.start
    assert (d.kind, d.amount) == ("workdays", n)


@SETTINGS
@given(start=instants(), n=workday_amounts, m=workday_amounts)
def test_more_working_days_end_strictly_later(start: datetime, n: int, m: int) -> None:
    n, m = sorted((n, m))
    if n == m:
        m += 1
    assert CAL.add_workdays(start, n).last_day < CAL.add_workdays(start, m).last_day


@SETTINGS
@given(start=instants(), n=workday_amounts)
@example(start=at(2026, 9, 29), n=1)               # 09-30 -> 10-08 across the break
@example(start=at(2026, 12, 29), n=2)              # 12-31 -> 2027-01-04 (provisional)
def test_one_more_working_day_is_the_next_working_day(start: datetime, n: int) -> None:
    last_n = CAL.add_workdays(start, n).last_day
    expected, _ = CAL.next_workday(last_n + timedelta(days=1))
    assert CAL.add_workdays(start, n + 1).last_day == expected


@SETTINGS
@given(start=instants(), n=workday_amounts)
def test_exactly_n_working_days_in_the_period(start: datetime, n: int) -> None:
    d = CAL.add_workdays(start, n)
    assert workdays_in(CAL, beijing_date(start), d.last_day) == n


# --- 5: months ----------------------------------------------------------------------------

@SETTINGS
@given(start=instants(), n=st.integers(min_value=1, max_value=MAX_PERIOD["months"]))
@example(start=at(2026, 12, 15), n=1)              # December -> January of the next year
@example(start=at(2025, 12, 31), n=2)              # December 31 -> February 28
@example(start=at(2023, 12, 31), n=2)              # ... -> February 29 of a leap year
@example(start=at(2026, 12, 1), n=12)
@example(start=at(2020, 2, 29), n=12)              # leap day -> 2021-02-28
@example(start=at(2020, 1, 31), n=1)               # -> 2020-02-29
@example(start=at(2023, 1, 29), n=1)               # -> 2023-02-28
@example(start=at(2022, 8, 30), n=6)               # -> 2023-02-28
@example(start=at(2024, 3, 31), n=11)              # -> 2025-02-28
@example(start=at(2025, 5, 31), n=13)              # -> 2026-06-30
@example(start=at(2021, 10, 31), n=24)             # -> 2023-10-31
@example(start=at(2027, 12, 31), n=120)            # the maximum, from the last start day
@example(start=datetime(2025, 12, 31, 16, 30, tzinfo=UTC), n=2)   # 2026-01-01 in Beijing
def test_months_agree_with_relativedelta(start: datetime, n: int) -> None:
    nominal = beijing_date(start) + relativedelta(months=n)
    expected, provisional = CAL.next_workday(nominal)
    d = CAL.add_months(start, n)
    assert d.last_day == expected
    assert d.provisional == provisional
    assert (d.kind, d.amount) == ("months", n)


# --- 6: weeks -----------------------------------------------------------------------------

@SETTINGS
@given(start=instants(), k=st.integers(min_value=1, max_value=MAX_PERIOD["days"] // 7))
def test_a_week_is_seven_calendar_days(start: datetime, k: int) -> None:
    assert CAL.add(start, k, "weeks") == CAL.add_days(start, 7 * k)


# --- 7, 9: override files -----------------------------------------------------------------

@st.composite
def override_years(draw: st.DrawFn) -> tuple[int, dict[date, str], dict[date, str]]:
    """A year without package data, and disjoint holiday / make-up dates with names."""
    year = draw(st.integers(min_value=KNOWN_THROUGH + 1, max_value=2040))
    days = st.dates(min_value=date(year, 1, 1), max_value=date(year, 12, 31))
    names = st.sampled_from(HOLIDAY_NAMES)
    # Holidays come in runs of consecutive days, as in a real notice.
    holidays: dict[date, str] = {}
    for first, length, name in draw(st.lists(st.tuples(days, st.integers(1, 9), names),
                                             max_size=8)):
        for d in days_between(first, first + timedelta(days=length - 1)):
            if d.year == year:
                holidays.setdefault(d, name)
    makeups = {d: name for d, name in draw(st.dictionaries(days, names, max_size=8)).items()
               if d not in holidays}
    return year, holidays, makeups


def _runs(dates: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for d in sorted(dates):
        if runs and runs[-1][1] + timedelta(days=1) == d:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def _section(days: dict[date, str], style: str) -> str:
    """One TOML table; ``style`` is ``dates`` (one item a day), ``ranges`` (runs of days
    as ``a..b``) or ``all-ranges`` (a single day too, as ``a..a``)."""
    by_name: dict[str, list[date]] = {}
    for d, name in days.items():
        by_name.setdefault(name, []).append(d)
    lines = []
    for name, dates in by_name.items():
        if style == "dates":
            items = [d.isoformat() for d in sorted(dates)]
        else:
            items = [a.isoformat() if a == b and style == "ranges"
                     else f"{a.isoformat()}..{b.isoformat()}" for a, b in _runs(dates)]
        value = f'"{items[0]}"' if len(items) == 1 else "[" + ", ".join(f'"{i}"' for i in items) + "]"
        lines.append(f'"{name}" = {value}')
    return "\n".join(lines)


def _override_toml(holidays: dict[date, str], makeups: dict[date, str], style: str) -> str:
    return (f'notice = "测试通知"\n[holidays]\n{_section(holidays, style)}\n'
            f'[workdays]\n{_section(makeups, style)}\n')


@SETTINGS
@given(data=override_years(), style=st.sampled_from(["dates", "ranges", "all-ranges"]))
@example(data=(2031, {date(2031, 1, 1): "元旦", date(2031, 1, 4): "元旦"},
               {date(2031, 1, 5): "元旦"}), style="all-ranges")
@example(data=(2031, {}, {}), style="dates")
def test_a_year_known_only_from_an_override_file(
        data: tuple[int, dict[date, str], dict[date, str]], style: str) -> None:
    year, holidays, makeups = data
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / f"{year}.toml").write_text(_override_toml(holidays, makeups, style),
                                                encoding="utf-8")
        overrides = load_override_dir(directory)
    assert set(overrides) == {year}
    assert overrides[year].holidays == holidays and overrides[year].workdays == makeups
    cal = WorkdayCalendar(overrides=overrides, package=HolidayPackage(through=KNOWN_THROUGH))
    assert cal.coverage(year) == "override"
    for d in days_between(date(year, 1, 1), date(year, 12, 31)):
        info = cal.day(d)
        assert not info.provisional, d
        assert info.source == "override", d
        if d in holidays:
            assert not info.is_workday and info.name == holidays[d], d
        elif d in makeups:
            assert info.is_workday and info.name == makeups[d], d
        elif d.weekday() >= 5:
            assert not info.is_workday, d
        else:
            assert info.is_workday, d
        assert info.is_makeup == (d in makeups and d.weekday() >= 5), d


@SETTINGS
@given(year=st.integers(min_value=2004, max_value=2099),
       pair=st.tuples(st.integers(0, 364), st.integers(0, 364)).filter(lambda p: p[0] != p[1]),
       section=st.sampled_from(["holidays", "workdays"]),
       with_good_item=st.booleans())
@example(year=2031, pair=(4, 0), section="holidays", with_good_item=False)
def test_a_reversed_range_is_refused(year: int, pair: tuple[int, int], section: str,
                                     with_good_item: bool) -> None:
    later, earlier = (date(year, 1, 1) + timedelta(days=i) for i in sorted(pair, reverse=True))
    item = f"{later.isoformat()}..{earlier.isoformat()}"   # e.g. 2031-05-05..2031-05-01
    items = ([f'"{date(year, 12, 31).isoformat()}"'] if with_good_item else []) + [f'"{item}"']
    text = f'[{section}]\n"测试" = [{", ".join(items)}]\n'
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{year}.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CalendarDataError, match="结束早于开始"):
            load_override_file(path)
        with pytest.raises(CalendarDataError, match="结束早于开始"):
            load_override_dir(Path(tmp))


# --- 8: period limits ---------------------------------------------------------------------

ADDERS: dict[str, Callable[[WorkdayCalendar, datetime, int], Deadline]] = {
    "workdays": WorkdayCalendar.add_workdays,
    "days": WorkdayCalendar.add_days,
    "months": WorkdayCalendar.add_months,
}


@st.composite
def out_of_range(draw: st.DrawFn) -> tuple[str, int]:
    kind = draw(st.sampled_from(sorted(MAX_PERIOD)))
    amount = draw(st.one_of(st.integers(max_value=0),
                            st.integers(min_value=MAX_PERIOD[kind] + 1)))
    return kind, amount


@SETTINGS
@given(start=instants(), bad=out_of_range())
@example(start=at(2026, 11, 23), bad=("workdays", 0))
@example(start=at(2026, 11, 23), bad=("days", -1))
@example(start=at(2026, 11, 23), bad=("months", MAX_PERIOD["months"] + 1))
@example(start=at(2026, 11, 23), bad=("workdays", MAX_PERIOD["workdays"] + 1))
@example(start=at(2026, 11, 23), bad=("days", MAX_PERIOD["days"] + 1))
def test_amounts_out_of_range_are_refused_in_chinese(start: datetime, bad: tuple[str, int]) -> None:
    kind, amount = bad
    with pytest.raises(InputError) as direct:
        ADDERS[kind](CAL, start, amount)
    assert CHINESE.search(direct.value.message), direct.value.message
    assert not re.search(r"[A-Za-z]", direct.value.message), direct.value.message
    with pytest.raises(InputError) as dispatched:
        CAL.add(start, amount, kind)
    assert dispatched.value.message == direct.value.message


@SETTINGS
@given(start=instants(), k=st.one_of(st.integers(max_value=0),
                                     st.integers(min_value=MAX_PERIOD["days"] // 7 + 1)))
def test_weeks_out_of_range_are_refused_in_chinese(start: datetime, k: int) -> None:
    with pytest.raises(InputError) as refused:
        CAL.add(start, k, "weeks")
    assert CHINESE.search(refused.value.message)
    if k > 0:   # said in weeks, the unit the user typed
        assert f"最多 {MAX_PERIOD['days'] // 7}周" in refused.value.message


@settings(max_examples=20, deadline=None)
@given(start=instants(), kind=st.sampled_from(sorted(MAX_PERIOD)))
@example(start=at(2020, 1, 1), kind="workdays")
@example(start=at(2027, 12, 31, 23, 59), kind="days")
@example(start=at(2027, 12, 31, 23, 59), kind="months")
def test_the_maximum_amount_is_accepted(start: datetime, kind: str) -> None:
    d = ADDERS[kind](CAL, start, MAX_PERIOD[kind])
    assert d.amount == MAX_PERIOD[kind] and d.kind == kind
    assert d.last_day > beijing_date(start) and CAL.is_workday(d.last_day)
    weeks = CAL.add(start, MAX_PERIOD["days"] // 7, "weeks")
    assert weeks.last_day > beijing_date(start)


# --- 10: provisional ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cal_with_2028(tmp_path_factory: pytest.TempPathFactory) -> WorkdayCalendar:
    """The package through 2026, 2027 unknown, 2028 from an override file, 2029+ unknown."""
    directory = tmp_path_factory.mktemp("holidays")
    (directory / "2028.toml").write_text(
        'notice = "测试通知"\n[holidays]\n"元旦" = ["2028-01-01..2028-01-03"]\n'
        '"春节" = ["2028-01-25..2028-02-01"]\n[workdays]\n"春节" = ["2028-01-23", "2028-02-05"]\n',
        encoding="utf-8")
    return WorkdayCalendar(overrides=load_override_dir(directory), package=PACKAGE)


@SETTINGS
@given(start=instants(), n=st.one_of(workday_amounts,
                                     st.integers(min_value=1, max_value=MAX_PERIOD["workdays"])),
       with_2028=st.booleans())
@example(start=at(2026, 12, 28), n=2, with_2028=False)     # stays in 2026
@example(start=at(2026, 12, 30), n=1, with_2028=False)     # 12-31: the start day is not counted
@example(start=at(2026, 12, 31), n=1, with_2028=False)     # first counted day is in 2027
@example(start=at(2027, 12, 31), n=1, with_2028=True)      # starts in 2027, counts only 2028
@example(start=at(2027, 12, 29), n=1, with_2028=True)
def test_provisional_exactly_when_a_counted_day_has_no_data(
        cal_with_2028: WorkdayCalendar, start: datetime, n: int, with_2028: bool) -> None:
    cal = cal_with_2028 if with_2028 else CAL
    d = cal.add_workdays(start, n)
    first = beijing_date(start) + timedelta(days=1)
    unknown = any(cal.coverage(y) is None for y in range(first.year, d.last_day.year + 1))
    assert d.provisional == unknown
    assert d.provisional == any(cal.is_provisional(x) for x in days_between(first, d.last_day))


def test_the_calendars_here_see_the_capped_package() -> None:
    assert CAL.coverage(KNOWN_THROUGH) == "package"
    assert CAL.coverage(KNOWN_THROUGH + 1) is None
    plain = WorkdayCalendar(package=HolidayPackage(through=KNOWN_THROUGH))
    for d in days_between(date(2026, 1, 1), date(2027, 1, 10)):
        assert CAL.day(d) == plain.day(d), d
