"""Fewer keystrokes (issue 15 item 5): short references, replies to a bot card, command
suggestions, Chinese numerals and date words, and cards whose first three lines say what,
by when and what to press. The clock is moved, never slept."""

from __future__ import annotations

import itertools

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryChat
from core.clock import parse_local
from core.messages import Inbound
from incidents.models import Incident, IncidentStatus, IncidentStep, StepStatus
from replies.models import ReplyItem
from tests.bot.test_telegram import WANG, ZHANG, Harness, eventually, tg  # noqa: F401  (tg: the fixture)
from tests.incidents.test_incident_chat import build, number_in

_quotes = itertools.count(1)


async def report(chat: MemoryChat, url: str, as_: str = "刘洋") -> str:
    """A district notice for 区政府办 (its officer 王芳 gets the card); the new number."""
    return number_in(await chat.send(f"/incident new 无法访问 @区政府办 {url} 首页打不开", as_=as_))


def card_ref(chat: MemoryChat, name: str, contains: str) -> str:
    """The platform id of the newest message to ``name`` containing ``contains``."""
    return next(d.ref for d in reversed(chat.adapter.delivered)
                if d.chat_id == f"u-{name}" and contains in d.text)


async def quote(chat: MemoryChat, text: str, *, as_: str, ref: str | None) -> str:
    """Say ``text`` as ``as_`` in reply to the bot message ``ref``; what came back."""
    before = len(chat.adapter.delivered)
    edits_before = [len(d.edits) for d in chat.adapter.delivered]
    await chat.app.handle(Inbound(platform="memory", chat_id=f"u-{as_}", sender_id=f"u-{as_}",
                                  sender_name=as_, text=text, update_id=f"q{next(_quotes)}",
                                  reply_to_message_id=ref))
    await chat.app.drain()
    edited = [d for d, n in zip(chat.adapter.delivered, edits_before, strict=False)
              if d.chat_id == f"u-{as_}" and len(d.edits) > n]     # cards updated in place
    fresh = [d for d in chat.adapter.delivered[before:] if d.chat_id == f"u-{as_}"]
    return "\n\n".join(d.text for d in edited + fresh)


def incident(engine: Engine, number: str) -> tuple[Incident, list[IncidentStep]]:
    with Session(engine) as session:
        found = session.exec(select(Incident).where(Incident.number == number)).one()
        steps = list(session.exec(select(IncidentStep).where(IncidentStep.incident_id == found.id)
                                  .order_by(IncidentStep.seq)))
        return found, steps


# -- short references --------------------------------------------------------------------


async def test_short_references_mean_todays_number(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    await report(chat, "https://a.example.gov.cn/1")
    assert await report(chat, "https://b.example.gov.cn/2") == "INC-20261123-002"
    for ref in ("2", "002", "#2", "＃2", "inc-20261123-002", "INC-20261123-2", "20261123-2"):
        shown = await chat.send(f"/incident show {ref}", as_="王芳")
        assert shown.startswith("INC-20261123-002｜无法访问"), ref
    missing = await chat.send("/incident show 7", as_="王芳")
    assert "没有找到事件 INC-20261123-007" in missing and "请写完整编号" in missing
    assert "没有找到事件 INC-20261124-001" in await chat.send("/incident show INC-20261124-001", as_="王芳")
    assert "请写明事件编号" in await chat.send("/incident ack", as_="王芳")


async def test_yesterdays_number_is_used_when_it_is_the_only_one_and_the_reply_says_so(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T23:50")
    await report(chat, "https://a.example.gov.cn/1")
    await report(chat, "https://b.example.gov.cn/2")
    await chat.app.advance_to(parse_local("2026-11-24T00:10"))   # the card is read after midnight
    acked = await chat.send("/incident ack 2", as_="王芳")
    assert acked.startswith("（今天没有 2 号事件，已按最近未结的 INC-20261123-002 处理。）")
    assert "已确认 INC-20261123-002" in acked
    assert incident(engine, "INC-20261123-002")[0].acknowledged_at is not None
    # Today's number 1 exists now: ``1`` is today's; yesterday's needs its full id.
    assert await report(chat, "https://c.example.gov.cn/3") == "INC-20261124-001"
    assert (await chat.send("/incident show 1", as_="王芳")).startswith("INC-20261124-001｜")
    await chat.app.advance_to(parse_local("2026-11-25T08:00"))
    both = await chat.send("/incident show 1", as_="王芳")
    assert "INC-20261124-001、INC-20261123-001 都是 1 号，请写完整编号" in both


async def test_short_reply_item_numbers(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    await chat.send("/reply new 咨询 办事指南在哪里下载", as_="王芳")
    shown = await chat.send("/reply show 1", as_="王芳")
    assert shown.startswith("MSG-20261123-001｜咨询")
    assert "找不到留言 MSG-20261123-009" in await chat.send("/reply show msg-20261123-9", as_="王芳")


# -- command suggestions -----------------------------------------------------------------


async def test_a_mistyped_command_gets_a_suggestion_and_gibberish_none(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    reply = await chat.send("/incdent list", as_="王芳")
    assert "未知命令 /incdent。您是否要输入 /incident？" in reply and "/help" in reply
    assert "您是否要输入 /help？" in await chat.send("/hepl", as_="王芳")
    gibberish = await chat.send("/qwxzkjv", as_="王芳")
    assert "未知命令 /qwxzkjv。" in gibberish and "您是否要输入" not in gibberish
    assert "您是否要输入“值班”？" in await chat.send("值斑", as_="王芳")
    assert "您是否要输入" not in await chat.send("今天天气不错", as_="王芳")
    # The admin-only command is not suggested to an officer, who may not use it.
    assert "您是否要输入" not in await chat.send("/peple", as_="王芳")
    assert "您是否要输入 /people？" in await chat.send("/peple", as_="张伟")


# -- replying to a bot card ----------------------------------------------------------------


async def test_a_reply_to_a_card_acts_on_that_cards_incident(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    first = await report(chat, "https://a.example.gov.cn/1")
    second = await report(chat, "https://b.example.gov.cn/2")
    on_first = card_ref(chat, "王芳", f"【新事件】{first}")
    on_second = card_ref(chat, "王芳", f"【新事件】{second}")
    # 确认, typed as a reply to the first card, acknowledges the first — not the newest.
    acked = await quote(chat, "确认", as_="王芳", ref=on_first)
    assert f"已确认 {first}" in acked
    assert incident(engine, first)[0].acknowledged_at is not None
    assert incident(engine, second)[0].acknowledged_at is None
    # /incident done 1 in reply to the second card: step 1 of the second.
    done = await quote(chat, "/incident done 1 已电话通知技术保障", as_="王芳", ref=on_second)
    assert f"{second} 步骤1" in done and "已完成" in done
    assert incident(engine, second)[1][0].status == StepStatus.done
    assert incident(engine, first)[1][0].status == StepStatus.pending
    # An explicit id wins over the card.
    assert f"已确认 {first}" not in await quote(chat, f"/incident ack {first}", as_="王芳", ref=on_second)
    # Chatter quoting a card is not a command.
    assert "没有看懂" in await quote(chat, "好的收到了吗", as_="王芳", ref=on_second)


async def test_a_plain_word_acts_on_the_newest_card_where_there_is_no_quote(engine: Engine) -> None:
    """WeCom and DingTalk callbacks carry no quote: in a private chat 确认 means the newest card."""
    chat = build(engine, "2026-11-23T10:00")
    await report(chat, "https://a.example.gov.cn/1")
    second = await report(chat, "https://b.example.gov.cn/2")
    assert f"已确认 {second}" in await chat.send("确认", as_="王芳")
    assert incident(engine, second)[0].status == IncidentStatus.acknowledged
    assert f"{second} 步骤1" in await chat.send("完成 1", as_="王芳")
    # In the duty group, a plain word is chatter.
    assert await chat.send("确认", as_="王芳", group="g-duty") == ""


async def test_a_reply_to_a_reply_reminder_acts_on_that_item(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    number = (await chat.send("/reply new 找错 首页链接失效", as_="王芳")).split("已登记 ")[1].split("（")[0]
    await chat.app.advance_to(parse_local("2026-11-26T09:00"))   # the morning of the due day
    ref = card_ref(chat, "王芳", "【答复提醒】今天到期")
    answered = await quote(chat, "答复 已修复链接并电话答复", as_="王芳", ref=ref)
    assert f"{number} 已答复" in answered
    with Session(engine) as session:
        item = session.exec(select(ReplyItem).where(ReplyItem.number == number)).one()
        assert item.answer == "已修复链接并电话答复"


# -- cards -------------------------------------------------------------------------------


async def test_card_first_three_lines_say_what_by_when_and_what_to_press(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    number = await report(chat, "https://www.example.gov.cn/a")
    lines = next(m for m in chat.messages("王芳") if m.startswith("【新事件】")).splitlines()
    assert lines[0] == f"【新事件】{number}｜无法访问｜一般｜待确认｜www.example.gov.cn"
    assert lines[1].startswith("时限：步骤1“") and "今天 10:30 前（还剩30分钟）" in lines[1]
    assert lines[2] == "请回复“确认”或发送 /incident ack 1"
    assert lines[3].startswith("对象：")
    await chat.send("确认", as_="王芳")
    await chat.app.advance_to(parse_local("2026-11-23T10:30"))   # step 1 overdue
    late = next(m for m in chat.messages("王芳") if m.startswith("【事件超期】")).splitlines()
    assert late[0] == f"【事件超期】已过期限：{number}｜无法访问｜一般｜已确认｜www.example.gov.cn"
    assert late[1].startswith("时限：步骤1“") and "已超期" in late[1]
    assert late[2] == "完成后回复“完成 1”或发送 /incident done 1 1"


async def test_reply_reminder_first_three_lines(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T10:00")
    number = (await chat.send("/reply new 找错 首页链接失效", as_="王芳")).split("已登记 ")[1].split("（")[0]
    await chat.app.advance_to(parse_local("2026-11-26T09:00"))
    lines = next(m for m in chat.messages("王芳") if m.startswith("【答复提醒】今天到期")).splitlines()
    assert lines[0] == f"【答复提醒】今天到期：{number}｜找错｜首页链接失效"
    assert lines[1] == "截止：今天 24:00 前（还剩15小时）"
    assert lines[2] == f"答复后回复“答复 答复摘要”或发送 /reply done {number} 答复摘要"


# -- Chinese numerals and date words in chat ---------------------------------------------


async def test_durations_and_days_in_chinese(engine: Engine) -> None:
    chat = build(engine, "2026-11-25T10:00")    # a Wednesday
    reply = await chat.send("/due 下周一 三个工作日", as_="王芳")
    assert "2026年11月30日" in reply and "期限：3个工作日" in reply and "2026年12月3日（星期四）24:00" in reply
    assert "期限：15个工作日" in await chat.send("/due 今天 十五个工作日", as_="王芳")
    assert "期限：2个月" in await chat.send("/due 12月3日 两个月", as_="王芳")
    assert "期限：120日" in await chat.send("/due 2026-12-03 一百二十天", as_="王芳")
    assert "无法识别的期限" in await chat.send("/due 今天 几个工作日", as_="王芳")
    objection = (await chat.send("/reply new 异议 对答复不服", as_="王芳")).split("已登记 ")[1].split("（")[0]
    assert "等待主要负责人审批" in await chat.send(f"/reply extend {objection} 五个工作日 需调取档案", as_="王芳")
    with Session(engine) as session:
        assert session.exec(select(ReplyItem).where(ReplyItem.number == objection)).one().extension_requested == 5


# -- Telegram: reply_to_message ------------------------------------------------------------


async def test_telegram_reply_to_a_card_acknowledges_it(tg: Harness) -> None:  # noqa: F811  (the fixture)
    # The admin reports: the unit's officers (王芳, 李强) get the card.
    tg.fake.push_message(ZHANG, ZHANG, "/incident new 无法访问 https://www.example.gov.cn/a 首页打不开",
                         first_name="张伟")
    await eventually(lambda: any("【新事件】" in (r.text or "") for r in tg.fake.sent_to(WANG)))
    card = next(r for r in tg.fake.sent_to(WANG) if "【新事件】" in (r.text or ""))
    tg.fake.push_message(WANG, WANG, "确认", reply_to_message_id=card.message_id)

    def acknowledged() -> bool:
        with Session(tg.engine) as session:
            return session.exec(select(Incident)).one().acknowledged_at is not None

    await eventually(acknowledged)
