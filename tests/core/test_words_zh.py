"""Chinese numerals, durations and date words (core.words_zh): one parser for chat and CLI."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core.clock import SHANGHAI
from core.errors import InputError
from core.words_zh import by_when_zh, parse_day, parse_duration, parse_number, parse_start

# Wednesday 2026-11-25.
TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(("text", "value"), [
    ("三", 3), ("十五", 15), ("二十", 20), ("两", 2), ("一百二十", 120), ("二十一", 21),
    ("十", 10), ("一百零五", 105), ("两百", 200), ("三千零一", 3001), ("15", 15), ("１５", 15),
])
def test_numbers(text: str, value: int) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "十百", "一二", "三点五", "abc", "-3"])
def test_not_numbers(text: str) -> None:
    with pytest.raises(InputError, match="无法识别的数字"):
        parse_number(text)


@pytest.mark.parametrize(("text", "found"), [
    ("三个工作日", (3, "workdays")), ("十五个工作日", (15, "workdays")), ("二十个工作日", (20, "workdays")),
    ("两个月", (2, "months")), ("一百二十天", (120, "days")), ("二十一日", (21, "days")),
    ("3个工作日", (3, "workdays")), ("15工作日", (15, "workdays")), ("3 个月", (3, "months")),
    ("两周", (2, "weeks")), ("七个自然日", (7, "days")),
    ("几天", None), ("三个小时", None), ("明天", None),
])
def test_durations(text: str, found: tuple[int, str] | None) -> None:
    assert parse_duration(text) == found


@pytest.mark.parametrize(("text", "day"), [
    ("今天", date(2026, 11, 25)), ("明天", date(2026, 11, 26)), ("后天", date(2026, 11, 27)),
    ("大后天", date(2026, 11, 28)), ("昨天", date(2026, 11, 24)),
    ("下周一", date(2026, 11, 30)), ("下周日", date(2026, 12, 6)), ("下星期三", date(2026, 12, 2)),
    ("本周五", date(2026, 11, 27)), ("这周一", date(2026, 11, 23)), ("上周五", date(2026, 11, 20)),
    ("周五", date(2026, 11, 27)), ("周三", date(2026, 11, 25)), ("周二", date(2026, 12, 1)),   # the coming one
    ("12-03", date(2026, 12, 3)), ("12月3日", date(2026, 12, 3)), ("12.3", date(2026, 12, 3)),
    ("2026-12-03", date(2026, 12, 3)), ("2026年12月3日", date(2026, 12, 3)),
    ("1月5日", date(2027, 1, 5)),       # late November asking about early January: next year
])
def test_day_words(text: str, day: date) -> None:
    assert parse_day(text, TODAY) == day


def test_month_day_near_new_year_means_last_december() -> None:
    assert parse_day("12-30", date(2027, 1, 3)) == date(2026, 12, 30)


@pytest.mark.parametrize("text", ["2026-13-45", "2月30日", "下周八", "大大后天", "someday"])
def test_bad_days(text: str) -> None:
    with pytest.raises(InputError, match="无法识别的日期"):
        parse_day(text, TODAY)


def test_start_of_a_period() -> None:
    now = datetime(2026, 11, 25, 15, 20, tzinfo=SHANGHAI)
    assert parse_start("现在", now) == now
    assert parse_start("明天", now) == datetime(2026, 11, 26, tzinfo=SHANGHAI)
    assert parse_start("下周一", now) == datetime(2026, 11, 30, tzinfo=SHANGHAI)
    assert parse_start("2026-10-08 09:30", now) == datetime(2026, 10, 8, 9, 30, tzinfo=SHANGHAI)
    assert parse_start("2026-10-08T09:30+00:00", now).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_by_when_for_a_phone() -> None:
    now = datetime(2026, 11, 25, 15, 30, tzinfo=SHANGHAI)
    assert by_when_zh(datetime(2026, 11, 25, 17, 30, tzinfo=SHANGHAI), now) == "今天 17:30 前（还剩2小时）"
    # Midnight is 24:00 of the day before: the last day of the period.
    assert by_when_zh(datetime(2026, 11, 27, 0, 0, tzinfo=SHANGHAI), now) == "明天 24:00 前（还剩1天8小时）"
    assert by_when_zh(datetime(2026, 12, 3, 0, 0, tzinfo=SHANGHAI), now).startswith("12月2日 24:00 前")
    assert by_when_zh(datetime(2026, 11, 25, 15, 0, tzinfo=SHANGHAI), now) == "已超期30分钟（今天 15:00）"
