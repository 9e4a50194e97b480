"""The CLI reads dates as the chat does (core.words_zh): 明天, 下周一, 12月3日, 2026-12-03."""

from __future__ import annotations

import json
from datetime import date

import pytest
from freezegun import freeze_time

from bot.cli import main
from bot.cli.common import parse_day
from core.errors import InputError


@freeze_time("2026-11-25 02:00:00")     # Wednesday 10:00 in Beijing
def test_due_from_tomorrow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["due", "明天", "--workdays", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["start"] == "2026-11-26T00:00:00+08:00"
    assert data["last_day"] == "2026-12-01"            # 11-27, 11-30, 12-01
    assert main(["due", "下周一", "--days", "7"]) == 0
    assert "2026年12月7日" in capsys.readouterr().out
    assert main(["due", "12月3日", "--months", "1"]) == 0
    assert "2027年1月4日" in capsys.readouterr().out   # 01-03 is a Sunday


@freeze_time("2026-11-25 02:00:00")
def test_a_bad_start_is_one_chinese_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["due", "下周八", "--workdays", "3"]) == 2
    err = capsys.readouterr().err
    assert "无效的开始时间 '下周八'" in err and "下周一" in err and "Traceback" not in err


@pytest.mark.parametrize(("text", "day"), [
    ("2026-12-03", date(2026, 12, 3)), ("12-03", date(2026, 12, 3)), ("12月3日", date(2026, 12, 3)),
    ("明天", date(2026, 11, 26)), ("后天", date(2026, 11, 27)), ("下周一", date(2026, 11, 30)),
    ("本周五", date(2026, 11, 27)),
])
def test_day_arguments(text: str, day: date) -> None:
    assert parse_day(text, "开始日期", today=date(2026, 11, 25)) == day


def test_a_bad_day_argument_names_it() -> None:
    with pytest.raises(InputError, match="无效的结束日期 '13月1日'"):
        parse_day("13月1日", "结束日期", today=date(2026, 11, 25))
