"""/duty and /myduty from the published roster; shift patterns from the calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.errors import ConfigError
from core.workdays import WorkdayCalendar
from people.models import Role
from roster.patterns import ShiftPatterns, ShiftSpec
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)


def build(engine: Engine, start: str) -> MemoryChat:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("李强", (Role.leader,)),
                            ("周明", (Role.leader,))):
            make_person(session, name, roles=roles, now=clock.now(), phone=f"1380000{len(name)}{ord(name[0]) % 1000:03d}")
        roster_days(session, start="2026-09-30", end="2026-10-11", officers=["王芳", "陈晨"], leaders=["李强", "周明"],
                    now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine), adapter)


def test_patterns_follow_the_calendar() -> None:
    patterns = load_settings(None, env={}).roster.patterns()
    # A make-up Saturday (2026-10-10) uses the workday pattern; National Day the rest-day one.
    assert [s.name for s in patterns.for_day(date(2026, 10, 10), CAL)] == ["白班", "夜班"]
    holiday = patterns.for_day(date(2026, 10, 1), CAL)
    assert [(s.name, s.pattern) for s in holiday] == [("全天", "restday")]
    # The night shift of the last working day crosses midnight into the holiday.
    night = patterns.for_day(date(2026, 9, 30), CAL)[1]
    assert (night.starts_at, night.ends_at) == (parse_local("2026-09-30T17:30"), parse_local("2026-10-01T08:30"))
    assert patterns.for_day(date(2027, 1, 4), CAL)[0].provisional


def test_patterns_must_cover_the_day() -> None:
    with pytest.raises(ConfigError) as err:
        ShiftPatterns((ShiftSpec("白班", parse_local("2026-01-01T08:30").time(), parse_local("2026-01-01T17:00").time()),),
                      (ShiftSpec("全天", parse_local("2026-01-01T08:30").time(), parse_local("2026-01-01T08:30").time()),))
    assert "覆盖24小时" in str(err.value)


DAY_ONLY = """
[rules]
profile = "{profile}"

[roster]
workday_shifts = [{{ name = "白班", start = "08:30", end = "17:30" }}]
restday_shifts = [{{ name = "巡查", start = "09:00", end = "11:00" }}, {{ name = "复查", start = "15:00", end = "16:00" }}]
"""


@pytest.mark.parametrize("profile", ["yunnan", "baoji", "guzhang", "jiangchuan"])
def test_day_only_shifts_where_the_rules_ask_for_daily_patrols(tmp_path: Path, profile: str) -> None:
    """Only 梁平办法第二十条 requires 7×24 reading; the others ask for 值班值守 and daily patrols."""
    path = tmp_path / "dutybot.toml"
    path.write_text(DAY_ONLY.format(profile=profile), encoding="utf-8")
    patterns = load_settings(path, env={}).roster.patterns()
    assert not patterns.round_the_clock
    monday = patterns.for_day(date(2026, 11, 23), CAL)
    assert [(s.name, s.starts_at, s.ends_at) for s in monday] == [
        ("白班", parse_local("2026-11-23T08:30"), parse_local("2026-11-23T17:30"))]
    assert [s.name for s in patterns.for_day(date(2026, 11, 22), CAL)] == ["巡查", "复查"]


def test_seven_by_twenty_four_still_needs_the_whole_day(tmp_path: Path) -> None:
    path = tmp_path / "dutybot.toml"
    for profile in ("liangping", "default"):     # default takes 梁平's 7×24 (参照)
        path.write_text(DAY_ONLY.format(profile=profile), encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_settings(path, env={})
        assert "覆盖24小时" in err.value.message and str(path) in err.value.message


def test_overlapping_shifts_are_refused_under_every_profile(tmp_path: Path) -> None:
    path = tmp_path / "dutybot.toml"
    path.write_text('[rules]\nprofile = "yunnan"\n[roster]\nworkday_shifts = ['
                    '{ name = "早班", start = "08:00", end = "13:00" }, { name = "午班", start = "12:00", end = "18:00" }]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "班次时间重叠" in err.value.message


async def test_duty_now_at_the_minute_the_shift_changes(engine: Engine) -> None:
    chat = build(engine, "2026-09-30T17:29")
    before = await chat.send("/duty", as_="王芳")
    assert "白班 08:30–17:30｜值班员：王芳" in before and "下一班" in before and "夜班 17:30–次日08:30｜值班员：陈晨" in before
    chat.app.clock.set(parse_local("2026-09-30T17:30"))   # type: ignore[attr-defined]
    after = await chat.send("值班", as_="王芳")
    assert "夜班 17:30–次日08:30｜值班员：陈晨" in after.split("下一班")[0]
    assert "带班领导：周明" in after.split("下一班")[0]
    # After midnight, still the night shift of 09-30; the next is the holiday's 全天.
    chat.app.clock.set(parse_local("2026-10-01T03:00"))   # type: ignore[attr-defined]
    night = await chat.send("/duty", as_="王芳")
    assert "夜班" in night.split("下一班")[0] and "全天 08:30–次日08:30" in night.split("下一班")[1]


async def test_duty_for_a_day_a_week_and_mine(engine: Engine) -> None:
    chat = build(engine, "2026-10-09T10:00")
    tomorrow = await chat.send("/duty 明天", as_="王芳")
    assert "2026年10月10日（星期六）（工作日）" in tomorrow and "白班" in tomorrow and "夜班" in tomorrow
    holiday = await chat.send("/duty 10-03", as_="王芳")
    assert "（休息日）" in holiday and "全天" in holiday
    assert "尚未排班" in await chat.send("/duty 2026-12-25", as_="王芳")
    week = await chat.send("/duty week", as_="王芳")
    assert week.count("（工作日）") + week.count("（休息日）") == 7
    mine = await chat.send("/myduty", as_="陈晨")
    assert "值班员" in mine and "10月9日" in mine and "王芳" not in mine.split("\n")[1]
    assert "无法识别的日期" in await chat.send("/duty 下下周", as_="王芳")
