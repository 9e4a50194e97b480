"""Replies to the public through chat: deadlines per category, reminders, escalation,
extensions and the 3-month ceiling — with the clock moved, never slept."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.profiles import load_profile
from people.models import Role
from replies.models import ReplyItem
from tests.factories import make_person


def build(engine: Engine, start: str, env: dict[str, str] | None = None) -> tuple[MemoryChat, FakeClock]:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        make_person(session, "赵敏", roles=(Role.principal,), now=clock.now(), unit="区政府办")
        make_person(session, "张伟", roles=(Role.admin, Role.officer), now=clock.now(), unit="区政府办")
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env=env or {})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter), clock


def item(engine: Engine, number: str) -> ReplyItem:
    with Session(engine) as session:
        return session.exec(select(ReplyItem).where(ReplyItem.number == number)).one()


def alerts(chat: MemoryChat, name: str) -> list[str]:
    """Messages to ``name`` other than the daily/weekly briefing leaders get anyway."""
    return [m for m in chat.messages(name) if not m.startswith(("【早报】", "【周报】"))]


def number_in(reply: str) -> str:
    return reply.split("已登记 ")[1].split("（")[0]


@pytest.mark.parametrize(("start", "kind", "due_text", "due_local"), [
    # 找错 on the last working day before National Day: the make-up Saturday 10-10 counts.
    ("2026-09-30T16:00", "找错", "2026年10月10日（星期六）24:00", "2026-10-11T00:00"),
    # 咨询 on the Friday before Spring Festival: 02-14 and 02-28 are make-up Saturdays.
    ("2026-02-13T10:00", "咨询", "2026年3月2日（星期一）24:00", "2026-03-03T00:00"),
    # 需查证办理 received on a holiday: counting starts after 10-03, on 10-08.
    ("2026-10-03T11:00", "查证", "2026年10月27日（星期二）24:00", "2026-10-28T00:00"),
    ("2026-11-23T09:00", "异议", "2026年12月2日（星期三）24:00", "2026-12-03T00:00"),
])
async def test_due_dates_per_category(engine: Engine, start: str, kind: str, due_text: str,
                                      due_local: str) -> None:
    chat, _ = build(engine, start)
    reply = await chat.send(f"/reply new {kind} 网站某栏目信息有误", as_="王芳")
    assert f"截止：{due_text}" in reply
    assert "依据：" in reply and "第" in reply
    assert item(engine, number_in(reply)).due_at == parse_local(due_local).astimezone(UTC)


async def test_provisional_deadline_says_so(engine: Engine) -> None:
    chat, _ = build(engine, "2026-12-30T10:00")
    reply = await chat.send("/reply new 找错 首页链接失效", as_="王芳")
    assert "2027年1月5日" in reply and "暂定" in reply
    assert "暂定" in await chat.send("/reply list", as_="王芳")


async def test_reminders_and_breach_escalation_at_the_right_times(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/reply new 找错 首页图片无法显示", as_="王芳"))
    # Due Thursday 11-26 24:00: before-reminder 11-25 09:00, due-today 11-26 09:00; the
    # breach at midnight waits for the office to open (11-27 09:00), leader +4h, principal +24h.
    await chat.app.advance_to(parse_local("2026-11-25T08:59"))
    assert not any("答复提醒" in m for m in chat.messages("王芳"))
    await chat.app.advance_to(parse_local("2026-11-25T09:00"))
    assert "即将到期" in chat.last("王芳") and "依据：参照《古丈县政府网站管理办法》第十三条，3个工作日内答复" in chat.last("王芳")
    await chat.app.advance_to(parse_local("2026-11-26T09:00"))
    assert "今天到期" in chat.last("王芳")
    await chat.app.advance_to(parse_local("2026-11-27T08:59"))
    assert "已超期" not in chat.last("王芳")
    await chat.app.advance_to(parse_local("2026-11-27T09:00"))
    assert "已超期" in chat.last("王芳")
    await chat.app.advance_to(parse_local("2026-11-27T12:59"))
    assert alerts(chat, "李强") == []
    await chat.app.advance_to(parse_local("2026-11-27T13:00"))
    assert "超期升级·带班领导" in chat.last("李强") and "负责人：王芳" in chat.last("李强")
    assert alerts(chat, "赵敏") == []
    # Answering stops the ladder: the principal is never pinged.
    assert "超期办结" in await chat.send(f"/reply done {number} 已更换图片并回复网民", as_="王芳")
    assert "已办结" in chat.last("李强")
    await chat.app.advance_to(parse_local("2026-11-30T09:00"))
    assert alerts(chat, "赵敏") == []
    assert len([m for m in chat.messages("王芳") if "【" in m]) == 3


async def test_answered_in_time_gets_no_reminders(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/reply new 建议@新媒体 希望增加办事指南", as_="王芳"))
    assert "按期办结" in await chat.send(f"/reply done {number} 已采纳并答复", as_="王芳")
    await chat.app.advance_to(parse_local("2026-12-31T09:00"))
    assert not any("【" in m for m in chat.messages("王芳"))
    assert "已答复" in await chat.send(f"/reply show {number}", as_="王芳")


async def test_extension_needs_the_principal_and_never_passes_30_working_days(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/reply new 异议 对公示名单有异议", as_="王芳"))
    refused = await chat.send(f"/reply extend {number} 24 情况复杂", as_="王芳")
    assert "合计将超过30个工作日" in refused and "最多还可延长 23 个工作日" in refused
    assert "等待主要负责人审批：赵敏" in await chat.send(f"/reply extend {number} 23 需多部门核实", as_="王芳")
    card = next(d for d in reversed(chat.adapter.delivered) if d.chat_id == "u-赵敏")
    assert "延期申请" in card.text
    assert ("批准", f"/reply approve {number}") in card.buttons
    assert "需要以下角色之一：主要负责人" in await chat.send(f"/reply approve {number}", as_="李强")
    approved = await chat.send(f"/reply approve {number}", as_="赵敏", button=True)
    # 30 working days from 2026-11-23 (the start day not counted) end on 2027-01-05
    # (provisional: no 2027 holiday data yet).
    assert "新的截止：1月5日 24:00（暂定）" in approved
    assert "已批准" in card.text and card.buttons == ()  # the request card now shows the decision
    assert card.edits and "延期申请" in card.edits[0]
    assert "已批准" in chat.last("王芳")
    assert "最多还可延长 0 个工作日" in await chat.send(f"/reply extend {number} 1 还要再等", as_="王芳")


async def test_only_objections_may_be_extended_and_rejection_keeps_the_deadline(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/reply new 查证 反映道路破损", as_="王芳"))
    assert "只有“异议”类留言可以延期" in await chat.send(f"/reply extend {number} 3 太忙", as_="王芳")
    objection = number_in(await chat.send("/reply new 异议 对处罚信息有异议", as_="王芳"))
    await chat.send(f"/reply extend {objection} 5 需调取档案", as_="王芳")
    assert "已驳回" in await chat.send(f"/reply reject {objection} 请按期办理", as_="赵敏")
    assert "意见：请按期办理" in chat.last("王芳")
    assert item(engine, objection).due_at == parse_local("2026-12-03T00:00").astimezone(UTC)


async def test_three_month_ceiling_holds_whatever_happens(engine: Engine) -> None:
    # A deployment that set a very long objection period still never passes REPLY-4.
    chat, _ = build(engine, "2026-11-23T09:00")
    chat.app.dispatcher.profile = load_profile(
        "default", overrides={"REPLY-5.decide": "80 workdays", "REPLY-5.max_total": "120 workdays"})
    number = number_in(await chat.send("/reply new 异议 对统计数据有异议", as_="王芳"))
    first = item(engine, number)
    assert first.due_at == parse_local("2027-02-24T00:00").astimezone(UTC)   # 2027-02-23 + 24:00
    assert "最迟3个月" in first.citation
    await chat.send(f"/reply assign {number} 张伟", as_="李强")
    assert "指派给您" not in chat.last("张伟") and "交由您答复" in chat.last("张伟")
    await chat.send(f"/reply extend {number} 30 需省级部门核实", as_="张伟")
    await chat.send(f"/reply approve {number}", as_="赵敏")
    after = item(engine, number)
    assert after.due_at == first.due_at == after.ceiling_at


async def test_list_views_and_bad_input(engine: Engine) -> None:
    chat, _ = build(engine, "2026-11-23T09:00")
    number = number_in(await chat.send("/reply new 找错 错别字", as_="王芳"))
    await chat.send(f"/reply assign {number} 王芳", as_="李强")
    assert number in await chat.send("/reply list mine", as_="王芳")
    assert "无" in await chat.send("/reply list overdue", as_="王芳")
    assert "无法识别的类别“投诉”" in await chat.send("/reply new 投诉 不满意", as_="王芳")
    assert "用法：/reply" in await chat.send("/reply new 找错", as_="王芳")
    assert "找不到留言 MSG-20990101-001" in await chat.send("/reply show MSG-20990101-001", as_="王芳")
    assert "需要以下角色之一" in await chat.send(f"/reply assign {number} 张伟", as_="王芳")
    assert "未知操作“close”" in await chat.send(f"/reply close {number}", as_="王芳")
    assert "已经办结" not in await chat.send(f"/reply done {number} 已改正", as_="王芳")
    assert "已经办结" in await chat.send(f"/reply done {number} 再答一次", as_="王芳")

