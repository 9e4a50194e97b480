"""Shift patterns: which shifts a duty day has, decided by the working-day calendar.

A duty day starts at the first shift's start time and lasts 24 hours, so a night shift
(17:30–08:30) belongs to the day it starts on. A working day (including a make-up
Saturday, 调休) uses the workday pattern; a weekend day or holiday the rest-day one.
Patterns are validated: where the office's rules require 7×24 reading (梁平办法第二十条,
``round_the_clock``) they must cover the 24 hours without gaps or overlaps; elsewhere (值班
值守、日常巡查) they may leave hours uncovered (e.g. a day shift only) but never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from core.clock import SHANGHAI
from core.errors import ConfigError
from core.workdays import WorkdayCalendar


@dataclass(frozen=True)
class ShiftSpec:
    name: str
    start: time
    end: time
    officers: int = 1

    @property
    def length(self) -> timedelta:
        """24 hours when start == end; otherwise up to the next ``end`` (across midnight)."""
        start = timedelta(hours=self.start.hour, minutes=self.start.minute)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute)
        return (end - start) % timedelta(days=1) or timedelta(days=1)


@dataclass(frozen=True)
class PlannedShift:
    """A shift of a given day, before it is stored."""

    day: date
    name: str
    pattern: str          # "workday" / "restday"
    starts_at: datetime   # aware (Asia/Shanghai)
    ends_at: datetime
    officers: int
    provisional: bool


@dataclass(frozen=True)
class ShiftPatterns:
    workday: tuple[ShiftSpec, ...]
    restday: tuple[ShiftSpec, ...]
    round_the_clock: bool = True     # the shifts must cover the whole day (7×24 reading)

    def __post_init__(self) -> None:
        problems = check_patterns(self)
        if problems:
            raise ConfigError(problems)

    def names(self) -> list[str]:
        """Every shift name, workday ones first."""
        return list(dict.fromkeys([s.name for s in self.workday] + [s.name for s in self.restday]))

    def for_day(self, day: date, calendar: WorkdayCalendar) -> list[PlannedShift]:
        """The shifts of ``day``, in order."""
        workday = calendar.is_workday(day)
        specs = self.workday if workday else self.restday
        provisional = calendar.is_provisional(day)
        out = []
        start = datetime.combine(day, specs[0].start, tzinfo=SHANGHAI)
        for spec in specs:
            begins = datetime.combine(day, spec.start, tzinfo=SHANGHAI)
            if begins < start:
                begins += timedelta(days=1)
            out.append(PlannedShift(day, spec.name, "workday" if workday else "restday",
                                    begins, begins + spec.length, spec.officers, provisional))
        return out


def check_patterns(patterns: ShiftPatterns) -> list[str]:
    """Chinese problems: a pattern that leaves gaps or overlaps, or days that do not chain."""
    problems = []
    for key, specs in (("workday_shifts", patterns.workday), ("restday_shifts", patterns.restday)):
        if not specs:
            problems.append(f"roster.{key}：至少要有一个班次")
            continue
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            problems.append(f"roster.{key}：班次名称重复")
        total = sum((s.length for s in specs), timedelta())
        chained = all(specs[i].end == specs[(i + 1) % len(specs)].start for i in range(len(specs)))
        if patterns.round_the_clock and (total != timedelta(days=1) or not chained):
            problems.append(f"roster.{key}：各班次须首尾相接、合计覆盖24小时（7×24小时值班），"
                            "如 08:30–17:30 与 17:30–08:30")
        elif not patterns.round_the_clock and _overlap(specs):
            problems.append(f"roster.{key}：班次时间重叠，请按先后顺序填写互不重叠的班次，如 08:30–12:00 与 14:00–17:30")
    if (patterns.round_the_clock and patterns.workday and patterns.restday
            and patterns.workday[0].start != patterns.restday[0].start):
        problems.append("roster：工作日与休息日的第一个班次须在同一时刻开始（如均为 08:30），否则交接会出现空档或重叠")
    return problems


def _overlap(specs: tuple[ShiftSpec, ...]) -> bool:
    """Whether shifts listed in order overlap within their duty day (or run past its end)."""
    first = timedelta(hours=specs[0].start.hour, minutes=specs[0].start.minute)
    at = timedelta(0)
    for spec in specs:
        begins = (timedelta(hours=spec.start.hour, minutes=spec.start.minute) - first) % timedelta(days=1)
        if begins < at:
            return True
        at = begins + spec.length
    return at > timedelta(days=1)
