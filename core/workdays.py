"""Chinese working days and legal deadlines: the one module that counts them.

Sources, strongest first:

1. The local override directory: one ``<year>.toml`` per year, filled by an admin from
   the State Council's holiday notice. Dates listed there win.
2. The ``chinese-calendar`` package, for the years it covers.
3. Nothing else. A year neither covers is computed *provisionally* (weekends plus the
   fixed-date statutory holidays) and every result that touched it says so.

Counting follows the Civil Code (民法典 第二百零一条至第二百零三条), DOMAIN.md §10:
the start day is not counted; a period ends at 24:00 of its last day, or at the
office cut-off when one is configured; a calendar-day or month period whose last day
is a rest day ends on the next working day; a month period lands on the same day of
the month, or on the month's last day where that day does not exist.

Override file format (``holidays/2027.toml``)::

    notice = "国务院办公厅关于2027年部分节假日安排的通知"
    [holidays]                     # rest days, by holiday name
    "元旦" = ["2027-01-01"]
    "春节" = ["2027-02-06..2027-02-13"]
    [workdays]                     # make-up working days (调休上班)
    "春节" = ["2027-02-14"]
"""

from __future__ import annotations

import calendar as _cal
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import chinese_calendar

from core.clock import SHANGHAI, ensure_utc, fmt_date_zh, local_midnight
from core.errors import CalendarDataError, CalendarError, InputError

# Fixed-date statutory holidays (全国年节及纪念日放假办法, as amended 2024, in force 2025):
# the only ones that can be known without the State Council's yearly notice.
FIXED_HOLIDAYS = {(1, 1): "元旦", (5, 1): "劳动节", (5, 2): "劳动节",
                  (10, 1): "国庆节", (10, 2): "国庆节", (10, 3): "国庆节"}
MAX_PERIOD = {"workdays": 1000, "days": 3660, "months": 120}
MAX_WEEKS = MAX_PERIOD["days"] // 7
_UNIT_ZH = {"workdays": "个工作日", "days": "天", "weeks": "周", "months": "个月"}
_NAMES_ZH = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节", "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


@dataclass(frozen=True)
class DayInfo:
    """What the calendar knows about one day."""

    day: date
    is_workday: bool
    provisional: bool
    name: str | None      # holiday name, or the holiday a make-up day belongs to
    source: str           # "override", "package" or "provisional"

    @property
    def is_makeup(self) -> bool:
        """A weekend day declared a working day (调休上班)."""
        return self.is_workday and self.day.weekday() >= 5


@dataclass(frozen=True)
class Deadline:
    """The end of a period, with everything a reminder needs to show."""

    start: datetime
    due: datetime          # the instant the period ends (UTC)
    last_day: date
    provisional: bool
    kind: str              # "workdays", "days" or "months"
    amount: int
    cutoff: time | None    # None means 24:00

    def zh(self) -> str:
        """``截止：2026年10月8日（星期四）24:00``, with ``（暂定）`` when provisional."""
        return "截止：" + self.short_zh()

    def short_zh(self) -> str:
        """``2026年10月8日（星期四）24:00`` (and ``（暂定）``)."""
        hhmm = "24:00" if self.cutoff is None else self.cutoff.strftime("%H:%M")
        text = f"{fmt_date_zh(self.last_day)}{hhmm}"
        return text + ("（暂定：该年度节假日安排尚未发布）" if self.provisional else "")

    def as_dict(self) -> dict[str, object]:
        """The ``--json`` shape of ``dutybot due``."""
        return {
            "start": self.start.astimezone(SHANGHAI).isoformat(),
            "due": self.due.astimezone(SHANGHAI).isoformat(),
            "due_utc": self.due.isoformat(),
            "last_day": self.last_day.isoformat(),
            "provisional": self.provisional,
            "kind": self.kind,
            "amount": self.amount,
            "cutoff": "24:00" if self.cutoff is None else self.cutoff.strftime("%H:%M"),
        }


@dataclass(frozen=True)
class YearOverride:
    """One year's holiday notice as an admin typed it."""

    year: int
    notice: str
    holidays: dict[date, str]
    workdays: dict[date, str]
    path: str


def _expand(item: str, year: int, where: str) -> list[date]:
    try:
        if ".." in item:
            a, b = (date.fromisoformat(x.strip()) for x in item.split("..", 1))
        else:
            a = b = date.fromisoformat(item.strip())
    except ValueError:
        raise CalendarDataError(f"{where}：无法识别的日期 {item!r}（应为 YYYY-MM-DD 或 YYYY-MM-DD..YYYY-MM-DD）") from None
    if b < a:
        raise CalendarDataError(f"{where}：日期范围 {item!r} 的结束早于开始")
    days = [a + timedelta(days=i) for i in range((b - a).days + 1)]
    if any(d.year != year for d in days):
        raise CalendarDataError(f"{where}：{item!r} 不在 {year} 年内")
    return days


def load_override_file(path: Path) -> YearOverride:
    """Read and check one ``<year>.toml`` override file.

    Raises:
        CalendarDataError: the name is not a year, or the content is malformed.
    """
    if not path.stem.isdigit() or len(path.stem) != 4:
        raise CalendarDataError(f"{path}：文件名应为年份，如 2027.toml")
    year = int(path.stem)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalendarDataError(f"{path}：不是有效的 TOML：{exc}") from None
    unknown = set(raw) - {"notice", "holidays", "workdays"}
    if unknown:
        raise CalendarDataError(f"{path}：未知的键 {', '.join(sorted(unknown))}（可用：notice、holidays、workdays）")
    out: dict[str, dict[date, str]] = {"holidays": {}, "workdays": {}}
    for section in ("holidays", "workdays"):
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise CalendarDataError(f"{path}：[{section}] 应为“名称 = [日期, …]”的表")
        for name, items in table.items():
            if isinstance(items, str):
                items = [items]
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise CalendarDataError(f"{path}：{section}.{name} 应为日期字符串列表")
            for item in items:
                for d in _expand(item, year, f"{path}：{section}.{name}"):
                    out[section][d] = str(name)
    both = sorted(set(out["holidays"]) & set(out["workdays"]))
    if both:
        raise CalendarDataError(f"{path}：{both[0].isoformat()} 同时被列为放假和调休上班")
    return YearOverride(year, str(raw.get("notice", "")), out["holidays"], out["workdays"], str(path))


def load_override_dir(directory: Path | None) -> dict[int, YearOverride]:
    """Every ``<year>.toml`` in ``directory`` (a missing directory is simply empty)."""
    if directory is None or not directory.is_dir():
        return {}
    result: dict[int, YearOverride] = {}
    for path in sorted(directory.glob("*.toml")):
        ov = load_override_file(path)
        result[ov.year] = ov
    return result


class HolidayPackage:
    """The ``chinese-calendar`` package's data, as the calendar consults it.

    ``through`` caps the years taken from the package: a year after it counts as not
    covered even when the installed release knows it. Tests use the cap so that what they
    assert about an unpublished year stays true when a newer release adds that year.
    A subclass may stand in for the package (a release that gained a year, in a test).
    """

    def __init__(self, *, through: int | None = None) -> None:
        self.through = through
        self._known: dict[int, bool] = {}
        # The package's answers by date: it validates each date against the whole of its
        # table (a min() and a max() over every holiday), ~0.1 ms a question, and a
        # /due of 15 working days asks about twenty days twice (issue 21).
        self._days: dict[date, tuple[bool, str | None]] = {}

    def covers(self, year: int) -> bool:
        """Whether the package has the State Council's arrangement for ``year``."""
        if self.through is not None and year > self.through:
            return False
        if year not in self._known:
            try:
                chinese_calendar.is_workday(date(year, 6, 1))
                self._known[year] = True
            except NotImplementedError:
                self._known[year] = False
        return self._known[year]

    def is_workday(self, d: date) -> bool:
        """Working day per the package (only for a covered year)."""
        return self._day(d)[0]

    def holiday_name(self, d: date) -> str | None:
        """The Chinese name of the holiday ``d`` belongs to, if any."""
        return self._day(d)[1]

    def _day(self, d: date) -> tuple[bool, str | None]:
        found = self._days.get(d)
        if found is None:
            _, name = chinese_calendar.get_holiday_detail(d)
            found = self._days[d] = (bool(chinese_calendar.is_workday(d)),
                                     _NAMES_ZH.get(name, name) if name else None)
        return found


#: The package as every calendar consults it unless given another one.
PACKAGE = HolidayPackage()


class WorkdayCalendar:
    """Answers is-workday and counts periods; see the module docstring for the rules.

    Args:
        overrides: year -> override, usually from :func:`load_override_dir`.
        use_package: consult ``chinese-calendar`` (tests may turn it off).
        cutoff: the default end of a period's last day; ``None`` is 24:00.
        package: the package data to consult; ``None`` means :data:`PACKAGE`, looked up
            at each use (so a test can cap the package for calendars built at import).
    """

    def __init__(
        self,
        *,
        overrides: dict[int, YearOverride] | None = None,
        use_package: bool = True,
        cutoff: time | None = None,
        package: HolidayPackage | None = None,
    ) -> None:
        self._overrides = dict(overrides or {})
        self._use_package = use_package
        self._package = package
        self.cutoff = cutoff

    @property
    def package(self) -> HolidayPackage:
        """The package data this calendar consults."""
        return self._package if self._package is not None else PACKAGE

    @classmethod
    def from_dir(cls, directory: Path | None, *, cutoff: time | None = None) -> WorkdayCalendar:
        """A calendar with the overrides found in ``directory``."""
        return cls(overrides=load_override_dir(directory), cutoff=cutoff)

    # --- coverage -----------------------------------------------------------------
    def _package_covers(self, year: int) -> bool:
        return self._use_package and self.package.covers(year)

    def coverage(self, year: int) -> str | None:
        """Where the year's data comes from (``override``/``package``), or None."""
        if year in self._overrides:
            return "override"
        if self._package_covers(year):
            return "package"
        return None

    def covered_years(self, around: int) -> dict[int, str]:
        """Covered years from 2004 up to ``around + 1`` plus every override year."""
        years = set(range(2004, around + 2)) | set(self._overrides)
        return {y: src for y in sorted(years) if (src := self.coverage(y)) is not None}

    def override(self, year: int) -> YearOverride | None:
        """The override for ``year``, if an admin supplied one."""
        return self._overrides.get(year)

    # --- days -----------------------------------------------------------------------
    def day(self, d: date) -> DayInfo:
        """Everything known about ``d``."""
        ov = self._overrides.get(d.year)
        if ov is not None:
            if d in ov.holidays:
                return DayInfo(d, False, False, ov.holidays[d], "override")
            if d in ov.workdays:
                return DayInfo(d, True, False, ov.workdays[d], "override")
        if self._package_covers(d.year):
            work = self.package.is_workday(d)
            name = self.package.holiday_name(d)
            if work and d.weekday() < 5:
                name = None   # an ordinary working day inside a holiday's season
            return DayInfo(d, work, False, name, "package")
        if ov is not None:
            # The override file defines the year; unlisted days follow the weekend rule.
            return DayInfo(d, d.weekday() < 5, False, None, "override")
        fixed = FIXED_HOLIDAYS.get((d.month, d.day))
        return DayInfo(d, d.weekday() < 5 and fixed is None, True, fixed, "provisional")

    def is_workday(self, d: date) -> bool:
        """True for a working day, including make-up weekend days (调休)."""
        return self.day(d).is_workday

    def is_provisional(self, d: date) -> bool:
        """True when ``d``'s year has no holiday data and the answer is a guess."""
        return self.day(d).provisional

    def next_workday(self, d: date) -> tuple[date, bool]:
        """The first working day on or after ``d``, and whether any step was provisional."""
        provisional = False
        for _ in range(60):
            info = self.day(d)
            provisional = provisional or info.provisional
            if info.is_workday:
                return d, provisional
            d += timedelta(days=1)
        raise CalendarError(f"{d.isoformat()} 之后 60 天内没有工作日，请检查节假日数据")

    # --- periods --------------------------------------------------------------------
    def _start_date(self, start: datetime) -> date:
        return ensure_utc(start).astimezone(SHANGHAI).date()

    def _deadline(self, start: datetime, last_day: date, provisional: bool, kind: str,
                  amount: int, cutoff: time | None) -> Deadline:
        if cutoff is None:
            due = local_midnight(last_day + timedelta(days=1))
        else:
            due = datetime.combine(last_day, cutoff, tzinfo=SHANGHAI)
        return Deadline(ensure_utc(start), ensure_utc(due), last_day, provisional, kind,
                        amount, cutoff)

    def _check(self, kind: str, n: int) -> None:
        if n <= 0:
            raise InputError(f"期限必须是正整数，收到 {n}")
        most = MAX_WEEKS if kind == "weeks" else MAX_PERIOD[kind]
        if n > most:
            raise InputError(f"期限过长：最多 {most}{_UNIT_ZH[kind]}，收到 {n}{_UNIT_ZH[kind]}")

    def add_workdays(self, start: datetime, n: int, *, cutoff: time | Literal["default"] | None = "default") -> Deadline:
        """End of "within ``n`` working days" from ``start``: the ``n``-th working day after
        the start day (the start day is never counted, whether or not it is a working day)."""
        self._check("workdays", n)
        cut = self.cutoff if cutoff == "default" else cutoff
        d = self._start_date(start)
        provisional = False
        count = 0
        while count < n:
            d += timedelta(days=1)
            info = self.day(d)
            provisional = provisional or info.provisional
            if info.is_workday:
                count += 1
        return self._deadline(start, d, provisional, "workdays", n, cut)

    def add_days(self, start: datetime, n: int, *, cutoff: time | Literal["default"] | None = "default") -> Deadline:
        """End of an ``n`` calendar-day period; a rest last day moves to the next working day."""
        self._check("days", n)
        cut = self.cutoff if cutoff == "default" else cutoff
        last, provisional = self.next_workday(self._start_date(start) + timedelta(days=n))
        return self._deadline(start, last, provisional, "days", n, cut)

    def add_months(self, start: datetime, n: int, *, cutoff: time | Literal["default"] | None = "default") -> Deadline:
        """End of an ``n``-month period: same day of month (or the month's last day), then
        moved to the next working day if that is a rest day."""
        self._check("months", n)
        cut = self.cutoff if cutoff == "default" else cutoff
        s = self._start_date(start)
        month_index = s.month - 1 + n
        year, month = s.year + month_index // 12, month_index % 12 + 1
        day = min(s.day, _cal.monthrange(year, month)[1])
        last, provisional = self.next_workday(date(year, month, day))
        return self._deadline(start, last, provisional, "months", n, cut)

    def add(self, start: datetime, amount: int, unit: str, *, cutoff: time | Literal["default"] | None = "default") -> Deadline:
        """Dispatch on a profile unit: ``workdays``, ``days``, ``weeks`` or ``months``."""
        if unit == "workdays":
            return self.add_workdays(start, amount, cutoff=cutoff)
        if unit == "days":
            return self.add_days(start, amount, cutoff=cutoff)
        if unit == "weeks":
            self._check("weeks", amount)
            return self.add_days(start, amount * 7, cutoff=cutoff)
        if unit == "months":
            return self.add_months(start, amount, cutoff=cutoff)
        raise CalendarError(f"无法按单位 {unit!r} 计算期限")
