"""/duty and /myduty from the published roster; shift patterns from the calendar."""

from __future__ import annotations

from datetime import date

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
