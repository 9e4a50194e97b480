"""/assign (补位): the gap warning names the command, the command fills the gap and the
warning is gone; the refusals say why in Chinese. Clock moved, never slept."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.gaps import gap_lines
from roster.models import DutyRole, Shift, ShiftAssignment
from roster.service import find_gaps, find_shift, unassign
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)
PATTERNS = load_settings(None, env={}).roster.patterns()


def build(engine: Engine, start: str = "2026-11-23T08:00", env: dict[str, str] | None = None) -> MemoryChat:
    """11-23..11-29 published: weekdays 白班 王芳 + 李强, 夜班 陈晨 + 周明; 11-28 全天 王芳 + 李强,
    11-29 全天 陈晨 + 周明. 11-25 夜班 has lost its officer, 11-26 白班 its leader.
    孙丽 is free; 刘洋 has left; 何静 is a newcomer without training; 吴刚 is both officer and
    leader; 张伟 is the admin."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("孙丽", (Role.officer,)),
                            ("刘洋", (Role.officer,)), ("何静", (Role.officer,)), ("李强", (Role.leader,)),
                            ("周明", (Role.leader,)), ("吴刚", (Role.officer, Role.leader)),
                            ("张伟", (Role.admin,))):
            make_person(session, name, roles=roles, now=clock.now(), trained_on=None if name == "何静" else date(2025, 1, 6))
        roster_days(session, start="2026-11-23", end="2026-11-29", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=clock.now())
        people = {p.name: p for p in session.exec(select(Person))}
        people["刘洋"].active = False
        unassign(session=session, shift=shift_of(session, "2026-11-25", "夜班"), person=people["陈晨"],
                 role=DutyRole.officer, now=clock.now(), actor="test")
        unassign(session=session, shift=shift_of(session, "2026-11-26", "白班"), person=people["李强"],
                 role=DutyRole.leader, now=clock.now(), actor="test")
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env=env or {}), clock=clock, adapter=adapter, engine=engine), adapter)


def shift_of(session: Session, day: str, name: str) -> Shift:
    return find_shift(session=session, day=date.fromisoformat(day), name=name)


def on_shift(engine: Engine, day: str, name: str) -> dict[str, str]:
    with Session(engine) as session:
        return dict(session.exec(select(Person.name, ShiftAssignment.role)
                                 .join(ShiftAssignment, ShiftAssignment.person_id == Person.id)
                                 .where(ShiftAssignment.shift_id == shift_of(session, day, name).id)).all())


async def test_assign_fills_the_gap_the_warning_names(engine: Engine) -> None:
    chat = build(engine)
    await chat.app.advance_to(parse_local("2026-11-23T09:05"))
    warning = next(m for m in chat.messages("张伟") if m.startswith("【值班空缺】"))
    assert "11月25日（星期三）夜班 17:30起：缺值班员｜补位：/assign 11-25 夜班 姓名 值班员" in warning
    assert "11月26日（星期四）白班 08:30起：缺带班领导｜补位：/assign 11-26 白班 姓名 带班领导" in warning

    reply = await chat.send("/assign 11-25 夜班 孙丽", as_="张伟")
    assert reply.startswith("已补位：11月25日（星期三）夜班 17:30–次日08:30 值班员 孙丽。")
    assert "该班次已排满。" in reply and "已通知 孙丽" in reply
    assert chat.last("孙丽").startswith("【值班安排】张伟 安排您担任 11月25日（星期三）夜班 17:30–次日08:30 的值班员")
    assert on_shift(engine, "2026-11-25", "夜班") == {"孙丽": "officer", "周明": "leader"}
    with Session(engine) as session:
        gaps = find_gaps(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 25),
                         end=date(2026, 11, 25))
        assert gaps == []
        lines = gap_lines(session, CAL, PATTERNS, date(2026, 11, 23), 6)
        assert lines == ["3天后｜11月26日（星期四）白班 08:30起：缺带班领导"]
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "assigned",
                                                        AuditEvent.actor == "张伟")).all()
        assert "值班员 孙丽（assign）" in event.details()["zh"]
    # A leader may fill a gap too; 吴刚 holds both roles and the shift lacks only a leader.
    reply = await chat.send("补位 11-26 白班 吴刚", as_="周明")
    assert "带班领导 吴刚" in reply and "该班次已排满" in reply
    with Session(engine) as session:
        assert gap_lines(session, CAL, PATTERNS, date(2026, 11, 23), 6) == []
    # The next day's check (tomorrow's eve warning for 11-25) has nothing to say about them.
    await chat.app.advance_to(parse_local("2026-11-24T09:05"))
    later = [m for m in chat.messages("张伟") if m.startswith("【值班空缺】")][1:]
    assert later and not any("11月25日" in m or "11月26日" in m for m in later)


async def test_assign_refusals_say_why(engine: Engine) -> None:
    chat = build(engine, start="2026-11-23T10:00")

    async def say(text: str, as_: str = "张伟") -> str:
        return await chat.send(text, as_=as_)

    assert "刘洋 已停用，不能排班" in await say("/assign 11-25 夜班 刘洋")
    untrained = await say("/assign 11-25 夜班 何静")
    assert "何静 尚未登记培训" in untrained and "第三十四条" in untrained and "/people trained" in untrained
    assert "值班员已排满（王芳），无需补位" in await say("/assign 11-25 白班 孙丽")
    assert "11月28日（星期六）没有“白班”（当天班次：全天）" in await say("/assign 11-28 白班 孙丽")
    assert "孙丽 不是带班领导" in await say("/assign 11-25 夜班 孙丽 带班领导")
    assert "王芳 已在11月25日（星期三）白班 08:30–17:30担任值班员" in await say("/assign 11-25 白班 王芳")
    assert "找不到人员“无名氏”" in await say("/assign 11-25 夜班 无名氏")
    assert "无法识别的角色" in await say("/assign 11-25 夜班 孙丽 组长")
    assert "需要以下角色之一：带班领导、主要负责人、管理员" in await say("/assign 11-25 夜班 孙丽", as_="王芳")
    # 王芳 holds 11-25 白班 (until 17:30); the night after it makes 24 hours: allowed. But
    # 11-27 夜班 between her 11-27 白班 and 11-28 全天 would be 48 hours.
    with Session(engine) as session:
        people = {p.name: p for p in session.exec(select(Person))}
        unassign(session=session, shift=shift_of(session, "2026-11-27", "夜班"), person=people["陈晨"],
                 role=DutyRole.officer, now=parse_local("2026-11-23T10:00"), actor="test")
        session.commit()
    refused = await say("/assign 11-27 夜班 王芳")
    rule = "王芳将连续值班48小时（11月27日08:30至11月29日08:30），超过本单位规定的24小时"
    assert rule in refused and "/assign 11-27 夜班 王芳 理由：…" in refused
    assert "请联系管理员说明理由后安排" in await say("/assign 11-27 夜班 王芳", as_="周明")
    assert "只能由管理员说明理由后放行" in await say("/assign 11-27 夜班 王芳 理由：人手不足", as_="周明")
    assert "王芳" not in on_shift(engine, "2026-11-27", "夜班")
    done = await say("/assign 11-27 夜班 王芳 理由：人手不足")
    assert "已补位" in done and "已记录放行理由：人手不足" in done
    assert rule in chat.last("王芳")
    with Session(engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "rest_override")).all()
        assert event.details()["reason"] == "人手不足" and event.details()["how"] == "补位"
    await chat.app.advance_to(parse_local("2026-11-24T09:00"))
    assert "11月23日（星期一）白班 08:30–17:30已经结束，不能再补位" in await say("/assign 11-23 白班 孙丽")


async def test_assign_creates_an_unrostered_shift_and_fills_a_draft(engine: Engine) -> None:
    chat = build(engine)
    reply = await chat.send("/assign 11-30 夜班 孙丽", as_="张伟")
    assert "（该日此班次原未排班，已补排）" in reply and "该班次仍缺：带班领导" in reply
    with Session(engine) as session:
        night = shift_of(session, "2026-11-30", "夜班")
        assert night.published and night.starts_at == parse_local("2026-11-30T17:30")
        night.published = False      # a draft: filled, nobody told until it is published
        session.add(night)
        session.commit()
    told = len(chat.messages("周明"))
    reply = await chat.send("/assign 11-30 夜班 周明", as_="张伟")
    assert "该班次为草稿，发布后统一通知" in reply and len(chat.messages("周明")) == told
    # Without a shift name: the day's only shift.
    with Session(engine) as session:
        people = {p.name: p for p in session.exec(select(Person))}
        unassign(session=session, shift=shift_of(session, "2026-11-28", "全天"), person=people["王芳"],
                 role=DutyRole.officer, now=parse_local("2026-11-23T08:00"), actor="test")
        session.commit()
    assert "全天 08:30–次日08:30 值班员 孙丽" in await chat.send("/assign 11-28 孙丽", as_="张伟")
    assert "请写明班次" in await chat.send("/assign 11-26 孙丽", as_="张伟")
