"""The injected clock, and the one place that knows the display time zone.

Stored instants are aware UTC datetimes; what a person sees is Asia/Shanghai.
Domain code never calls ``datetime.now()``: it receives a :class:`Clock`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from core.errors import InputError
from core.messages import duration_zh

SHANGHAI = ZoneInfo("Asia/Shanghai")
_MICROSECOND = timedelta(microseconds=1)
WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
#: The years a typed or imported date may fall in: far enough for any deadline, near
#: enough that adding a period to it never leaves what ``datetime`` can hold.
MIN_YEAR, MAX_YEAR = 2000, 2100
_Day = TypeVar("_Day", bound=date)


class Clock(Protocol):
    """Gives the current instant."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class SystemClock:
    """The real clock (freezegun moves it in tests)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; used by tests and the console drill mode."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (may not go backwards)."""
        instant = ensure_utc(instant)
        if instant < self._now:
            raise ValueError("the clock cannot go backwards")
        self._now = instant

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        self.set(self._now + delta)


def ensure_utc(instant: datetime) -> datetime:
    """An aware datetime in UTC; naive values are refused (they hide bugs)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime")
    return instant.astimezone(UTC)


def from_db(instant: datetime | None) -> datetime | None:
    """Instants read back from SQLite come naive (it has no time zone); they are UTC."""
    if instant is None:
        return None
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def local(instant: datetime) -> datetime:
    """The instant in Asia/Shanghai."""
    return ensure_utc(instant).astimezone(SHANGHAI)


def local_midnight(day: date) -> datetime:
    """00:00 Asia/Shanghai of ``day``, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def fmt_date_zh(day: date) -> str:
    """``2026年10月8日（星期四）``."""
    return f"{day.year}年{day.month}月{day.day}日（{WEEKDAYS_ZH[day.weekday()]}）"


def fmt_span_zh(start: date, end: date, joiner: str = "—") -> str:
    """``2026年12月1日—12月31日`` (the year repeated only when it changes; one day: that day)."""
    head = f"{start.year}年{start.month}月{start.day}日"
    if start == end:
        return head
    tail = f"{end.month}月{end.day}日" if end.year == start.year else f"{end.year}年{end.month}月{end.day}日"
    return f"{head}{joiner}{tail}"


def median_duration(spans: Iterable[timedelta]) -> timedelta:
    """The median of ``spans`` (at least one), as ``statistics.median`` of the timedeltas
    gives it: taken over whole microseconds, the mean of the middle two rounds half to even.

    Raises:
        statistics.StatisticsError: ``spans`` is empty.
    """
    return timedelta(microseconds=statistics.median(s // _MICROSECOND for s in spans))


# ``12分钟``, ``3小时5分钟``, ``2天4小时``, ``不到1分钟``: the one formatter lives in core.messages.
fmt_duration_zh = duration_zh


def fmt_instant_zh(instant: datetime, *, with_weekday: bool = True) -> str:
    """``2026年10月8日（星期四）17:30`` in Asia/Shanghai."""
    loc = local(instant)
    day = fmt_date_zh(loc.date()) if with_weekday else f"{loc.year}年{loc.month}月{loc.day}日"
    return f"{day}{loc:%H:%M}"


def fmt_short_zh(instant: datetime) -> str:
    """``10月8日 17:30`` in Asia/Shanghai, for chat lines."""
    loc = local(instant)
    return f"{loc.month}月{loc.day}日 {loc:%H:%M}"


class DateOutOfRange(InputError, ValueError):
    """A typed or imported date outside :data:`MIN_YEAR`..:data:`MAX_YEAR` (also a
    ValueError, for callers that catch a malformed date as one)."""


def check_year_range(day: _Day, what: str = "日期") -> _Day:
    """``day`` (a date or a datetime) when its year is within :data:`MIN_YEAR`..
    :data:`MAX_YEAR`: every place that turns a person's text into a date calls this, so
    ``9999-12-31`` gets a Chinese answer instead of an overflow further on.

    Raises:
        DateOutOfRange: ``{what}超出范围``, naming the years that can be handled.
    """
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise DateOutOfRange(f"{what}超出范围：{day.year:04d}年（只能处理 {MIN_YEAR}—{MAX_YEAR} 年的日期）。")
    return day


def parse_local(text: str) -> datetime:
    """Parse an ISO date or date-time; without an offset it is Asia/Shanghai.

    Raises:
        ValueError: not a valid ISO date/time, or (:class:`DateOutOfRange`) a year
            outside :data:`MIN_YEAR`..:data:`MAX_YEAR`.
    """
    text = text.strip()
    value = check_year_range(datetime.fromisoformat(text))
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return value

