"""Swaps (/swap) and substitutions (/substitute) through chat: who is asked, who approves,
who is told, what /duty shows afterwards — with the clock moved, never slept."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.audit import history
from core.clock import FakeClock, parse_local
from people.models import Person, Role
from roster.models import DutyRole, Leave, Shift, ShiftAssignment, SwapRequest
from roster.service import assign
from tests.factories import make_person, roster_days

# Monday 2026-11-23. Weekdays: 白班 王芳 + 李强, 夜班 陈晨 + 周明; 11-28 全天 王芳 + 李强.
START = "2026-11-23T10:00"


def build(engine: Engine, env: dict[str, str] | None = None) -> tuple[MemoryChat, FakeClock]:
    clock = FakeClock(parse_local(START))
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("孙丽", (Role.officer,)),
                            ("李强", (Role.leader,)), ("周明", (Role.leader,)), ("赵敏", (Role.principal,)),
                            ("张伟", (Role.admin,)), ("吴刚", (Role.officer, Role.leader))):
            make_person(session, name, roles=roles, now=clock.now())
        roster_days(session, start="2026-11-23", end="2026-11-29", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    # The fixture gives 王芳 every day shift and 陈晨 every night, so most swaps here would
    # break the rest rules: these tests are about the swap flow, tests/roster/test_rest.py
    # about the rules.
    env = {"DUTYBOT_ROSTER_MAX_CONTINUOUS_HOURS": "0", "DUTYBOT_ROSTER_MIN_REST_HOURS": "0", **(env or {})}
    app = App(load_settings(None, env=env), clock=clock, adapter=adapter, engine=engine)
    return MemoryChat(app, adapter), clock


def swaps(chat: MemoryChat, name: str) -> list[str]:
    """Swap and substitution messages ``name`` received (not briefings or reminders)."""
    return [m for m in chat.messages(name) if m.startswith(("【换班", "【替班"))]


def swap_row(engine: Engine, swap_id: int) -> SwapRequest:
    with Session(engine) as session:
        row = session.get(SwapRequest, swap_id)
        assert row is not None
        return row


def sources(engine: Engine, day: str, name: str) -> dict[str, str]:
    """Person name → assignment source on the shift ``name`` of ``day``."""
    with Session(engine) as session:
        rows = session.exec(select(Person.name, ShiftAssignment.source)
                            .join(ShiftAssignment, ShiftAssignment.person_id == Person.id)
                            .join(Shift, Shift.id == ShiftAssignment.shift_id)
                            .where(Shift.day == date.fromisoformat(day), Shift.name == name)).all()
        return dict(rows)


async def test_swap_accepted_and_approved_changes_the_roster_and_tells_everyone(engine: Engine) -> None:
    chat, _ = build(engine)
    asked = await chat.send("/swap 11-25 白班 孙丽 家中有事", as_="王芳")
    assert "已向 孙丽 发出换班申请 #1" in asked and "11月25日（星期三）白班 08:30–17:30" in asked
    card = next(d for d in reversed(chat.adapter.delivered) if d.chat_id == "u-孙丽")
    assert "王芳 请您接替值班员班次" in card.text and "理由：家中有事" in card.text
    assert card.buttons == (("同意", "/swap accept 1"), ("拒绝", "/swap decline 1"))
    assert "待我确认（1）" in await chat.send("/swap list", as_="孙丽")
    assert "我的申请（1）" in await chat.send("换班 list", as_="王芳")
    # Only the person asked may accept; the leader cannot approve before that.
    assert "不是发给您的" in await chat.send("/swap accept 1", as_="陈晨")
    assert "待对方确认" in await chat.send("/swap approve 1", as_="李强")

    accepted = await chat.send("/swap accept 1", as_="孙丽", button=True)
    assert "等待 李强 审批" in accepted
    assert "孙丽 已同意换班 #1" in chat.last("王芳")
    approval = next(d for d in reversed(chat.adapter.delivered) if d.chat_id == "u-李强")
    assert approval.text.startswith("【换班待审批】") and ("批准", "/swap approve 1") in approval.buttons
    assert "待我审批（1）" in await chat.send("/swap list", as_="李强")
    # The night shift's leader is not this shift's leader on duty.
    assert "需由该班次的带班领导审批" in await chat.send("/swap approve 1", as_="周明")
    assert "值班员：王芳" in await chat.send("/duty 11-25", as_="王芳")

    done = await chat.send("/swap approve 1", as_="李强", button=True)
    assert "换班 #1 已生效" in done and "由 孙丽 值班" in done
    day = await chat.send("/duty 11-25", as_="陈晨")
    assert "白班 08:30–17:30｜值班员：孙丽" in day and "王芳" not in day
    assert sources(engine, "2026-11-25", "白班") == {"孙丽": "swap", "李强": "manual"}
    for name in ("王芳", "孙丽"):
        assert swaps(chat, name)[-1].startswith("【换班生效】") and "值班员：王芳 → 孙丽" in swaps(chat, name)[-1]
    assert "李强 批准" in swaps(chat, "孙丽")[-1]
    assert not any("生效" in m for m in swaps(chat, "周明") + swaps(chat, "陈晨"))
    assert "没有待您处理" in await chat.send("/swap list", as_="李强")
    assert "11月25日" in await chat.send("/myduty", as_="孙丽")
    with Session(engine) as session:
        actions = [e.action for e in history(session=session, entity_type="swap", entity_id=1)]
    assert actions == ["requested", "accepted", "approved"]
    assert swap_row(engine, 1).decided_by_id is not None


async def test_swap_declined_leaves_the_roster_alone(engine: Engine) -> None:
    chat, _ = build(engine)
    # Without a shift name: the requester's only shift that day.
    assert "#1" in await chat.send("/swap 11-25 孙丽", as_="王芳")
    assert "已拒绝" in await chat.send("/swap decline 1 那天出差", as_="孙丽")
    told = swaps(chat, "王芳")[-1]
    assert told.startswith("【换班未成】") and "对方说明：那天出差" in told
    assert "值班员：王芳" in await chat.send("/duty 11-25", as_="王芳")
    assert "对方已拒绝" in await chat.send("/swap accept 1", as_="孙丽")
    assert swaps(chat, "李强") == []
    # Declined: a new request for the same shift is allowed.
    assert "#2" in await chat.send("/swap 11-25 白班 孙丽", as_="王芳")


async def test_leader_rejects_with_a_reason(engine: Engine) -> None:
    chat, _ = build(engine)
    await chat.send("/swap 11-25 白班 孙丽", as_="王芳")
    await chat.send("/swap accept 1", as_="孙丽")
    asked = await chat.send("/swap reject 1", as_="李强", button=True)
    assert "请回复驳回" in asked
    assert "已驳回换班申请 #1" in await chat.send("当天有重要保障任务，人员不宜变动", as_="李强")
    for name in ("王芳", "孙丽"):
        assert swaps(chat, name)[-1].startswith("【换班未批准】")
        assert "驳回理由：当天有重要保障任务" in swaps(chat, name)[-1]
    assert "值班员：王芳" in await chat.send("/duty 11-25", as_="王芳")
    assert swap_row(engine, 1).status == "rejected"


async def test_exchange_without_approval(engine: Engine) -> None:
    chat, _ = build(engine, env={"DUTYBOT_ROSTER_SWAP_NEEDS_APPROVAL": "false"})
    asked = await chat.send("/swap 11-25 白班 陈晨 换 11-26 夜班 调休", as_="王芳")
    assert "换回 11月26日（星期四）夜班 17:30–次日08:30" in asked and "审批" not in asked
    assert "作为交换，王芳 接替您的：11月26日（星期四）夜班" in chat.last("陈晨")
    done = await chat.send("/swap accept 1", as_="陈晨")
    assert "已生效" in done
    assert "白班 08:30–17:30｜值班员：陈晨" in await chat.send("/duty 11-25", as_="王芳")
    assert "夜班 17:30–次日08:30｜值班员：王芳" in await chat.send("/duty 11-26", as_="王芳")
    assert sources(engine, "2026-11-26", "夜班")["王芳"] == "swap"
    # Both shifts' leaders hear about it; the requester too.
    assert "11月25日（星期三）白班" in swaps(chat, "李强")[-1]
    assert "11月26日（星期四）夜班 17:30–次日08:30：陈晨 → 王芳" in swaps(chat, "周明")[-1]
    assert swaps(chat, "王芳")[-1].startswith("【换班生效】")


async def test_refusals_in_chinese(engine: Engine) -> None:
    chat, _ = build(engine)
    with Session(engine) as session:
        sun = session.exec(select(Person).where(Person.name == "孙丽")).one()
        session.add(Leave(person_id=sun.id, start_day=date(2026, 11, 26), end_day=date(2026, 11, 27),
                          reason="年假", created_at=parse_local(START)))
        wu = session.exec(select(Person).where(Person.name == "吴刚")).one()
        shift = session.exec(select(Shift).where(Shift.day == date(2026, 11, 27), Shift.name == "白班")).one()
        for role in DutyRole:
            assign(session=session, shift=shift, person=wu, role=role, source="manual",
                   now=parse_local(START), actor="test")
        session.commit()
    assert "已经开始" in await chat.send("/swap 今天 白班 孙丽", as_="王芳")
    assert "您没有担任" in await chat.send("/swap 11-25 白班 陈晨", as_="孙丽")
    assert "同时担任值班员和带班领导" in await chat.send("/swap 11-27 白班 孙丽", as_="吴刚")
    assert "周明 不是值班员" in await chat.send("/swap 11-25 白班 周明", as_="王芳")
    assert "孙丽 2026年11月26日（星期四）请假" in await chat.send("/swap 11-26 孙丽", as_="王芳")
    assert "#1" in await chat.send("/swap 11-25 陈晨", as_="王芳")
    again = await chat.send("/swap 11-25 孙丽", as_="王芳")
    assert "已为11月25日（星期三）白班 08:30–17:30提交过换班申请 #1" in again
    assert "找不到人员" in await chat.send("/swap 11-25 白班 无名氏", as_="王芳")
    assert "无法识别的日期" in await chat.send("/swap 下下周 孙丽", as_="王芳")
    assert "请写明要换给谁" in await chat.send("/swap 11-25 白班", as_="王芳")
    assert "只有申请人可以撤回" in await chat.send("/swap cancel 1", as_="孙丽")
    assert "已撤回" in await chat.send("/swap cancel 1", as_="王芳")
    assert "【换班撤回】" in swaps(chat, "陈晨")[-1]


async def test_request_for_a_shift_that_starts_is_cancelled(engine: Engine) -> None:
    chat, _ = build(engine)
    assert "#1" in await chat.send("/swap 今天 夜班 孙丽", as_="陈晨")
    await chat.send("/swap accept 1", as_="孙丽")       # waits for 周明, who does not answer
    await chat.app.advance_to(parse_local("2026-11-23T17:29"))
    assert swap_row(engine, 1).status == "accepted"
    await chat.app.advance_to(parse_local("2026-11-23T17:30"))
    assert swap_row(engine, 1).status == "cancelled"
    for name in ("陈晨", "孙丽", "周明"):
        assert swaps(chat, name)[-1].startswith("【换班取消】") and "班次已开始" in swaps(chat, name)[-1]
    assert "已取消" in await chat.send("/swap approve 1", as_="周明")
    assert "值班员：陈晨" in (await chat.send("/duty", as_="陈晨")).split("下一班")[0]


async def test_a_request_that_no_longer_holds_is_cancelled(engine: Engine) -> None:
    chat, _ = build(engine)
    await chat.send("/swap 11-25 白班 孙丽", as_="王芳")
    with Session(engine) as session:   # 孙丽 goes on leave after being asked
        sun = session.exec(select(Person).where(Person.name == "孙丽")).one()
        session.add(Leave(person_id=sun.id, start_day=date(2026, 11, 25), end_day=date(2026, 11, 25),
                          created_at=parse_local(START)))
        session.commit()
    accepted = await chat.send("/swap accept 1", as_="孙丽")
    assert "已无法办理，已自动取消" in accepted and "请假" in accepted
    assert "【换班取消】" in swaps(chat, "王芳")[-1]
    assert swap_row(engine, 1).status == "cancelled"
    # An admin moves the requester off the shift: the open request is cancelled at once.
    await chat.send("/swap 11-25 白班 陈晨", as_="王芳")
    sub = await chat.send("/substitute 11-25 白班 王芳 吴刚 王芳身体不适", as_="张伟")
    assert "已替班" in sub and "已取消相关换班申请 1 个" in sub
    assert "管理员已安排 吴刚 替班" in swaps(chat, "陈晨")[-1]
    assert swap_row(engine, 2).status == "cancelled"
    assert "已取消" in await chat.send("/swap accept 2", as_="陈晨")


async def test_only_admins_substitute_and_everyone_is_told(engine: Engine) -> None:
    chat, _ = build(engine)
    refused = await chat.send("/substitute 11-25 白班 王芳 孙丽", as_="王芳")
    assert "需要以下角色之一：管理员" in refused
    refused = await chat.send("/substitute 11-25 白班 王芳 孙丽", as_="李强")
    assert "需要以下角色之一：管理员" in refused
    assert "周明 不是值班员" in await chat.send("/substitute 11-25 白班 王芳 周明", as_="张伟")
    done = await chat.send("替班 11-25 白班 王芳 孙丽 王芳临时出差", as_="张伟")
    assert "已替班：11月25日（星期三）白班 08:30–17:30 值班员 王芳 → 孙丽" in done
    assert "白班 08:30–17:30｜值班员：孙丽" in await chat.send("/duty 11-25", as_="张伟")
    assert sources(engine, "2026-11-25", "白班")["孙丽"] == "substitute"
    for name in ("王芳", "孙丽", "李强"):
        got = swaps(chat, name)[-1]
        assert got.startswith("【替班】") and "理由：王芳临时出差" in got and "安排人：张伟" in got
    assert swaps(chat, "周明") == []
    # A running shift may be substituted (someone falls ill mid-shift); an ended one not.
    assert "已替班" in await chat.send("/substitute 今天 白班 王芳 孙丽", as_="张伟")
    await chat.app.advance_to(parse_local("2026-11-24T09:00"))
    assert "已经结束" in await chat.send("/substitute 11-23 夜班 陈晨 孙丽", as_="张伟")
    with Session(engine) as session:
        shift = session.exec(select(Shift).where(Shift.day == date(2026, 11, 25), Shift.name == "白班")).one()
        actions = [e.action for e in history(session=session, entity_type="shift", entity_id=shift.id or 0)]
    assert actions[-3:] == ["unassigned", "assigned", "substituted"]


async def test_a_leaders_own_swap_is_approved_by_the_principal(engine: Engine) -> None:
    chat, _ = build(engine)
    assert "#1" in await chat.send("/swap 11-25 白班 周明 外出开会", as_="李强")
    assert "等待 赵敏 审批" in await chat.send("/swap accept 1", as_="周明")
    assert swaps(chat, "赵敏")[-1].startswith("【换班待审批】")
    assert "需由该班次的带班领导审批" in await chat.send("/swap approve 1", as_="李强")
    assert "已生效" in await chat.send("/swap approve 1", as_="赵敏")
    assert "白班 08:30–17:30｜值班员：王芳 13800000000｜带班领导：周明" in await chat.send("/duty 11-25", as_="王芳")
    assert "带班领导：李强 → 周明" in swaps(chat, "王芳")[-1]
