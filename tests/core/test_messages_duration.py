"""``duration_zh``: spans in chat read like a person writes them (issue 14 item 7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import fmt_duration_zh
from core.messages import duration_zh


@pytest.mark.parametrize(("span", "expected"), [
    (timedelta(0), "不到1分钟"),
    (timedelta(seconds=59), "不到1分钟"),
    (timedelta(seconds=60), "1分钟"),
    (timedelta(minutes=45), "45分钟"),
    (timedelta(minutes=59), "59分钟"),
    (timedelta(minutes=59, seconds=59), "59分钟"),
    (timedelta(minutes=60), "1小时"),
    (timedelta(minutes=90), "1小时30分钟"),
    (timedelta(minutes=120), "2小时"),
    (timedelta(minutes=285), "4小时45分钟"),
    (timedelta(minutes=1439), "23小时59分钟"),
    (timedelta(minutes=1440), "1天"),
    (timedelta(days=1, minutes=59), "1天"),            # minutes dropped once days are shown
    (timedelta(minutes=12045), "8天8小时"),
    (timedelta(days=8, hours=3, minutes=20), "8天3小时"),
    (timedelta(days=8, hours=3), "8天3小时"),
])
def test_reads_like_a_person_writes_it(span: timedelta, expected: str) -> None:
    assert duration_zh(span) == expected


@pytest.mark.parametrize("span", [timedelta(seconds=-1), timedelta(minutes=-285), timedelta(days=-3)])
def test_negative_reads_as_zero(span: timedelta) -> None:
    assert duration_zh(span) == "不到1分钟"


@pytest.mark.parametrize("minutes", [0, 1, 59, 60, 61, 285, 1439, 1440, 1500, 12045, 100_000])
def test_no_space_no_raw_minute_count(minutes: int) -> None:
    text = duration_zh(timedelta(minutes=minutes))
    assert " " not in text
    assert not (minutes >= 60 and text.endswith(f"{minutes}分钟"))


def test_clock_formatter_is_the_same_one() -> None:
    assert fmt_duration_zh is duration_zh
