"""/account in chat: a request goes to the people who decide its current step as a card
with 同意/不同意 buttons; pressing them works (asking for the 批准文号 or the reason where a
button cannot carry it); the requester is told; replies are Chinese and short. The clock
is moved, never slept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.models import Account, AccountDuty, AccountState, FilingStatus
from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from people.models import Role
from roster.models import Site
from tests.bot.test_no_english import english_words
from tests.factories import make_person

UNIT = "区政府办"


def build(engine: Engine, profile: str, start: str = "2026-11-23T10:00") -> tuple[MemoryChat, FakeClock]:
    """王芳 (officer), 李主任 (principal), 张伟 and 刘洋 (admins), all of 区政府办."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("李主任", (Role.principal,)), ("张伟", (Role.admin,)),
                            ("刘洋", (Role.admin,))):
            make_person(session, name, roles=roles, now=clock.now(), unit=UNIT)
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env={"DUTYBOT_RULES_PROFILE": profile})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter), clock


def add_account(engine: Engine, name: str, now: datetime, *, government: bool = False) -> None:
    with Session(engine) as session:
        site = Site(name=name, kind="wechat", url="", unit=UNIT, created_at=now)
        session.add(site)
        session.flush()
        assert site.id is not None
        session.add(Account(site_id=site.id, owner_unit=UNIT, government=government, state=AccountState.active,
                            state_since=now.date(), created_at=now, updated_at=now))
        session.commit()


def buttons_to(chat: MemoryChat, name: str) -> list[tuple[str, str]]:
    """The buttons on the newest message to ``name``."""
    mine = [d for d in chat.adapter.delivered if d.chat_id == f"u-{name}"]
    return list(mine[-1].buttons) if mine else []


def no_english(chat: MemoryChat) -> None:
    for delivered in chat.adapter.delivered:
        assert english_words(delivered.text) == [], delivered.text


async def test_a_liangping_opening_is_approved_by_button_and_filed(engine: Engine) -> None:
    chat, _ = build(engine, "liangping")
    reply = await chat.send("/account open 梁平发布 微信公众号", as_="王芳")
    assert reply.splitlines()[0] == "已提交开设申请（申请编号 1）：梁平发布（微信公众号）｜区政府办"
    assert "审批：本单位主要负责人（待审批）（依据：梁平办法第九条）" in reply and "已请 李主任 审批。" in reply
    card = chat.last("李主任")
    assert card.startswith("【账号开设审批】申请 1：梁平发布（微信公众号）｜区政府办")
    assert buttons_to(chat, "李主任") == [("同意", "/account approve 1 第1步"), ("不同意", "/account reject 1 第1步")]
    assert chat.messages("张伟") == []

    # The requester cannot press it for themselves.
    assert "不能由您审批" in await chat.send("/account approve 1 第1步", as_="王芳", button=True)

    approved = await chat.send("/account approve 1 第1步", as_="李主任", button=True)
    assert "申请 1 已批准（本单位主要负责人 ✓）" in approved
    assert "账号开通后请发送 /account opened 1 [开通日期]" in approved
    assert chat.last("王芳").startswith("【账号申请已批准】申请 1｜开设｜梁平发布")

    opened = await chat.send("/account opened 1 2026-11-20", as_="王芳")
    assert "已登记开通：梁平发布，2026年11月20日（星期五）起在用。" in opened
    assert "报区政府办公室备案（开设）｜条款未规定时限，请及时办理｜依据：梁平办法第九条" in opened
    with Session(engine) as session:
        duty = session.exec(select(AccountDuty)).one()
    assert f"编号 {duty.id}" in await chat.send("/account duties", as_="王芳")
    assert f"已办结事项 {duty.id}。" in await chat.send(f"/account done {duty.id} 梁备2026-08", as_="王芳")
    shown = await chat.send("/account show 梁平发布", as_="王芳")
    assert "已备案（梁备2026-08）" in shown and "申请 1｜开设｜梁平发布（微信公众号）｜区政府办｜已办结" in shown
    with Session(engine) as session:
        assert session.exec(select(Account)).one().filing_status == FilingStatus.filed
    no_english(chat)


async def test_a_baoji_government_closure_needs_a_reason_and_each_step_in_order(engine: Engine) -> None:
    chat, clock = build(engine, "baoji")
    add_account(engine, "宝鸡市政府发布", clock.now(), government=True)
    refused = await chat.send("/account close 宝鸡市政府发布", as_="王芳")
    assert "原则上不得关停（依据：宝鸡办法第十条）" in refused and "确需关停理由" in refused

    asked = await chat.send("/account close 宝鸡市政府发布 机构撤并，确需关停", as_="王芳")
    assert "逐级审核（待审批） → 省政府办公厅" in asked and "已请 刘洋、张伟 审批。" in asked
    card = chat.last("张伟")
    assert card.startswith("【账号关停审批】申请 1：宝鸡市政府发布")
    assert "注意：市县政府系统政务新媒体原则上不得关停（依据：宝鸡办法第十条）" in card
    assert chat.messages("李主任") == []      # outside offices' steps are recorded by admins

    # 同意 on an outside office's step asks for its 批准文号; the next message carries it.
    assert "请回复“逐级审核”的批准文号或意见" in await chat.send("/account approve 1 第1步", as_="张伟", button=True)
    step = await chat.send("宝政办〔2026〕1号", as_="张伟")
    assert "已同意申请 1（逐级审核）。下一步：省政府办公厅" in step
    second = chat.last("刘洋")
    assert "待 省政府办公厅 审批（第2步，共2步）" in second and "原则上不得关停" in second
    assert buttons_to(chat, "刘洋")[0] == ("同意", "/account approve 1 第2步")
    # 刘洋's older card of step 1 cannot decide step 2.
    stale = await chat.send("/account approve 1 第1步", as_="刘洋", button=True)
    assert "第1步已由 张伟 办理，现待 省政府办公厅 审批" in stale

    # 不同意 asks for the reason.
    assert "请回复不同意申请 1（省政府办公厅）的理由" in await chat.send("/account reject 1 第2步", as_="刘洋", button=True)
    rejected = await chat.send("省政府办公厅未同意关停", as_="刘洋")
    assert "已不同意申请 1，理由：省政府办公厅未同意关停。已告知申请人。" in rejected
    assert chat.last("王芳").startswith("【账号申请未获批准】申请 1｜关停｜宝鸡市政府发布")
    assert "未批准" in await chat.send("/account show 宝鸡市政府发布", as_="王芳")
    no_english(chat)


async def test_a_yunnan_closure_in_chat_cannot_finish_before_its_notice_term(engine: Engine) -> None:
    chat, clock = build(engine, "yunnan", "2026-09-22T10:00")
    add_account(engine, "便民服务", clock.now())
    await chat.send("/account close 便民服务 整合至门户账号", as_="王芳")
    approved = await chat.send("/account approve 1", as_="李主任")
    assert "报同级政府政务新媒体主管单位备案（关停）｜截止：10月9日 24:00 前" in approved
    assert "请向社会发布公告后发送 /account notice 1 [公告日期]（依据：云南办法第十八条）" in approved
    clock.set(parse_local("2026-09-28T15:00"))
    noticed = await chat.send("/account notice 1", as_="王芳")
    assert "公告期满（2026年10月24日（星期六）起）后请发送 /account done" in noticed
    with Session(engine) as session:
        closing = session.exec(select(AccountDuty).where(AccountDuty.kind == "close")).one()
    clock.set(parse_local("2026-10-23T17:00"))
    early = await chat.send(f"/account done {closing.id}", as_="王芳")
    assert "尚不能办结：公告期未满" in early
    clock.set(parse_local("2026-10-24T09:00"))
    done = await chat.send(f"/account done {closing.id}", as_="王芳")
    assert "申请 1 已办结" in done and "账号已关停" in done
    no_english(chat)


async def test_the_daily_sweep_opens_standing_duties_and_tells_the_holders(engine: Engine) -> None:
    chat, clock = build(engine, "yunnan")
    add_account(engine, "昆明市便民服务", clock.now())
    await chat.app.advance_to(parse_local("2026-11-23T10:05"))   # the first tick runs the sweep
    told = chat.messages("张伟")
    assert any(m.startswith("【账号事项】昆明市便民服务：账号名称含地名或机关名称") and "依据：云南办法第十六条" in m
               for m in told)
    await chat.app.advance_to(parse_local("2026-11-24T09:05"))   # the next day's sweep opens nothing new
    assert len(chat.messages("张伟")) == len(told)
    no_english(chat)
