"""Gap warnings: a shift without enough people is reported to the admins and leaders when
it first comes within the horizon and again the day before — never twice for the same
stage — and after downtime in one catch-up run. Clock moved, never slept."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.gaps import gap_lines
from roster.models import DutyRole, Shift
from roster.service import assign, unassign
from tests.factories import make_person, roster_days

SETTINGS = load_settings(None, env={})
CAL = WorkdayCalendar.from_dir(None)


def build(engine: Engine, start: str) -> tuple[MemoryChat, FakeClock]:
    """Weekdays: 白班 王芳 + 李强, 夜班 陈晨 + 周明, rostered 11-23..12-12; 张伟 is the admin."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("李强", (Role.leader,)),
                            ("周明", (Role.leader,)), ("张伟", (Role.admin,))):
            make_person(session, name, roles=roles, now=clock.now())
        roster_days(session, start="2026-11-23", end="2026-12-12", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(SETTINGS, clock=clock, adapter=adapter, engine=engine), adapter), clock


def leave_out(engine: Engine, day: str, shift_name: str, name: str, role: DutyRole, at: str) -> None:
    with Session(engine) as session:
        shift = session.exec(select(Shift).where(Shift.day == date.fromisoformat(day), Shift.name == shift_name)).one()
        person = session.exec(select(Person).where(Person.name == name)).one()
        assert unassign(session=session, shift=shift, person=person, role=role, now=parse_local(at), actor="test")
        session.commit()


def warnings(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith("【值班空缺】")]


async def test_warned_days_ahead_then_the_day_before_never_twice(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-22T10:00")          # Sunday
    leave_out(engine, "2026-11-30", "白班", "李强", DutyRole.leader, "2026-11-22T10:00")
    await chat.app.advance_to(parse_local("2026-11-23T08:59"))
    assert warnings(chat, "张伟") == []
    await chat.app.advance_to(parse_local("2026-11-23T09:00"))
    first = warnings(chat, "张伟")
    assert len(first) == 1
    assert "· 7天后｜11月30日（星期一）白班 08:30起：缺带班领导" in first[0]
    assert "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十条" in first[0] and "/substitute" in first[0]
    assert warnings(chat, "李强") == first and warnings(chat, "周明") == first
    assert warnings(chat, "王芳") == []

    # A new gap on Wednesday: only it is reported, not the known one again.
    leave_out(engine, "2026-12-02", "夜班", "陈晨", DutyRole.officer, "2026-11-24T15:00")
    await chat.app.advance_to(parse_local("2026-11-25T09:00"))
    got = warnings(chat, "张伟")
    assert len(got) == 2 and "11月30日" not in got[1]
    assert "· 7天后｜12月2日（星期三）夜班 17:30起：缺值班员" in got[1]

    await chat.app.advance_to(parse_local("2026-11-28T09:00"))
    assert len(warnings(chat, "张伟")) == 2
    await chat.app.advance_to(parse_local("2026-11-29T09:00"))
    eve = warnings(chat, "张伟")
    assert len(eve) == 3 and "· 明天｜11月30日（星期一）白班 08:30起：缺带班领导" in eve[2]
    assert "12月2日" not in eve[2]
    # The day itself: the shift started at 08:30, and the eve stage was already sent.
    await chat.app.advance_to(parse_local("2026-11-30T09:00"))
    assert len(warnings(chat, "张伟")) == 3
    await chat.app.advance_to(parse_local("2026-12-01T09:00"))
    last = warnings(chat, "张伟")
    assert len(last) == 4 and "明天｜12月2日（星期三）夜班" in last[3]
    await chat.app.advance_to(parse_local("2026-12-02T09:00"))
    assert len(warnings(chat, "张伟")) == 4


async def test_a_gap_fixed_in_time_is_not_warned_the_day_before(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-22T10:00")
    leave_out(engine, "2026-11-30", "白班", "李强", DutyRole.leader, "2026-11-22T10:00")
    await chat.app.advance_to(parse_local("2026-11-23T09:00"))
    assert len(warnings(chat, "张伟")) == 1
    with Session(engine) as session:   # the admin fills it in the meantime
        shift = session.exec(select(Shift).where(Shift.day == date(2026, 11, 30), Shift.name == "白班")).one()
        zhou = session.exec(select(Person).where(Person.name == "周明")).one()
        assign(session=session, shift=shift, person=zhou, role=DutyRole.leader, source="manual",
               now=parse_local("2026-11-24T10:00"), actor="test")
        session.commit()
    await chat.app.advance_to(parse_local("2026-11-30T09:00"))
    assert len(warnings(chat, "张伟")) == 1


async def test_one_catch_up_run_after_downtime(engine: Engine) -> None:
    chat, clock = build(engine, "2026-11-22T10:00")
    leave_out(engine, "2026-11-30", "白班", "李强", DutyRole.leader, "2026-11-22T10:00")
    await chat.app.advance_to(clock.now())              # running: the cron starts counting
    clock.set(parse_local("2026-11-26T10:30"))          # down for four mornings
    chat.app.scheduler.catch_up()
    await chat.app.drain()
    got = warnings(chat, "张伟")
    assert len(got) == 1
    assert got[0].startswith("【值班空缺】以下班次尚未排满，请尽快安排：\n（补发：原定 11月26日 09:00，因系统未运行而延迟）")
    assert "· 4天后｜11月30日（星期一）白班 08:30起：缺带班领导" in got[0]
    await chat.app.advance_to(parse_local("2026-11-26T23:00"))
    assert len(warnings(chat, "张伟")) == 1


async def test_gap_lines_for_the_briefing(engine: Engine) -> None:
    build(engine, "2026-11-22T10:00")
    leave_out(engine, "2026-11-24", "夜班", "陈晨", DutyRole.officer, "2026-11-22T10:00")
    leave_out(engine, "2026-11-24", "夜班", "周明", DutyRole.leader, "2026-11-22T10:00")
    patterns = SETTINGS.roster.patterns()
    with Session(engine) as session:
        assert gap_lines(session, CAL, patterns, date(2026, 11, 23), 7) == [
            "明天｜11月24日（星期二）夜班 17:30起：缺值班员、带班领导"]
        # Beyond the roster (it ends 12-12), every shift is a gap.
        assert gap_lines(session, CAL, patterns, date(2026, 12, 12), 1) == ["明天｜12月13日（星期日）全天 08:30起：整个班次未排班"]
        assert gap_lines(session, CAL, patterns, date(2026, 12, 1), 3) == []


async def test_nothing_before_the_roster_is_in_use_then_unrostered_days(engine: Engine) -> None:
    clock = FakeClock(parse_local("2026-11-22T10:00"))
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    chat = MemoryChat(App(SETTINGS, clock=clock, adapter=adapter, engine=engine), adapter)
    await chat.app.advance_to(parse_local("2026-11-24T09:00"))
    assert warnings(chat, "张伟") == []
    with Session(engine) as session:   # the first week is published; the next one is not
        make_person(session, "王芳", roles=(Role.officer, Role.leader), now=clock.now())
        roster_days(session, start="2026-11-24", end="2026-11-29", officers=["王芳"], leaders=["王芳"],
                    now=clock.now())
        session.commit()
    await chat.app.advance_to(parse_local("2026-11-25T09:00"))
    got = warnings(chat, "张伟")
    assert len(got) == 1 and got[0].count("整个班次未排班") == 6   # 11-30..12-02, two shifts each
    assert "· 5天后｜11月30日（星期一）白班 08:30起：整个班次未排班" in got[0]
    await chat.app.advance_to(parse_local("2026-11-26T09:00"))
    assert warnings(chat, "张伟")[-1].count("整个班次未排班") == 2     # 12-03 enters the horizon
