"""No English reaches a chat user (issue 14 item 7).

A representative session through the in-memory adapter — help, roster views, an incident
reported, escalated, acknowledged, taken, a step done, another marked a false alarm, a
reply registered and assigned, a spot check, the morning briefing — and every message any
chat received must be Chinese: no ASCII word of 3+ letters except command syntax, a short
list of accepted abbreviations, numbers, addresses and rule ids. Durations read like a
person writes them: never a raw minute count of an hour or more.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core import audit
from core.clock import FakeClock, parse_local
from people.models import Role
from tests.factories import make_person, roster_days

ALLOWED = {"SHA", "URL", "HTML", "ID", "CSV", "XLSX", "JSON"}
# What is not prose, removed before looking for English words.
NOT_PROSE = [
    re.compile(r"https?://\S+"),                                     # addresses
    re.compile(r"\b(?:[\w-]+\.)+(?:cn|com|net|org|gov)\b\S*"),       # domain names
    re.compile(r"\b[A-Z]{2,}-\d{8}-\d+\b"),                          # INC-20261123-001, MSG-…
    re.compile(r"\b[A-Z]+-\d+\b"),                                   # rule ids: SENS-3, GRADE-2
    # a slash command with its sub-command and option words: /incident ack, /duty log [昨天|week]
    re.compile(r"/[a-z]+(?:[ \t]+\[?[a-z]+(?:\|[a-z\u4e00-\u9fff]+)*\]?)*"),
    re.compile(r"[｜|]\s*[a-z]+(?:[ \t]+\[?[a-z]+(?:\|[a-z]+)*\]?)*"),  # usage forms: ｜ show 编号
    re.compile(r"\[[a-z|]+\]"),                                      # [mine|open|overdue]
    re.compile(r"\bdutybot(?:[ \t]+(?:/[ \t]*)?[a-z-]+)*"),          # admin CLI: dutybot roster import
    re.compile(r"[\w./-]+\.(?:toml|xlsx|csv|json|png|html|docx|md|ics)\b"),  # file names
]
WORD = re.compile(r"[A-Za-z][A-Za-z_]{2,}")   # take_down, false_alarm as one word
RAW_MINUTES = re.compile(r"(\d+)\s*分钟")


def english_words(text: str) -> list[str]:
    for pattern in NOT_PROSE:
        text = pattern.sub(" ", text)
    return [w for w in WORD.findall(text) if w not in ALLOWED]


def test_the_filter_itself() -> None:
    assert english_words("请发送 /incident ack INC-20261123-001（SENS-3），见 https://www.example.gov.cn/a.html") == []
    assert english_words("用法：/incident list [mine|open|overdue] ｜ show 编号 ｜ false 编号 理由") == []
    assert english_words("请管理员导入：dutybot roster import / generate；填写 holidays/2027.toml") == []
    assert english_words("SHA-256 校验通过；类型 sensitive，状态 false_alarm") == ["sensitive", "false_alarm"]
    assert english_words("由 system 确认（ack）") == ["system", "ack"]   # not after a slash: prose


def build(engine: Engine) -> MemoryChat:
    clock = FakeClock(parse_local("2026-11-23T09:00"))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        make_person(session, "赵敏", roles=(Role.principal,), now=clock.now(), unit="区政府办")
        make_person(session, "张伟", roles=(Role.admin,), now=clock.now(), unit="区政府办")
        make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(), unit="区教育局")
        make_person(session, "刘洋", roles=(Role.officer,), now=clock.now(), unit="区政府办公室")
        roster_days(session, start="2026-11-23", end="2026-11-25", officers=["王芳"], leaders=["李强"],
                    now=clock.now())
        session.commit()
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋"})
    adapter = MemoryAdapter()
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


async def advance(chat: MemoryChat, delta: timedelta) -> None:
    await chat.app.advance_to(chat.app.clock.now() + delta)


async def session_of_a_duty_day(chat: MemoryChat) -> dict[str, str]:
    """Drive a representative session; return a few replies by name for spot assertions."""
    got: dict[str, str] = {}
    for name in ("王芳", "李强", "张伟", "刘洋"):
        await chat.send("/help", as_=name)
    await chat.send("/help", as_="路人甲")
    await chat.send("/whoami", as_="王芳")
    # roster views and the duty lifecycle
    for text in ("/duty", "/duty 明天", "/duty week", "/myduty", "/checkin", "/read", "/duty log"):
        await chat.send(text, as_="王芳")
    # an incident: reported by the district office, escalated, acknowledged, taken, a step done
    reply = await chat.send("/incident new 敏感信息 @区政府办 https://www.example.gov.cn/tzgg/1.html "
                            "通知公告栏目公示名单含完整身份证号", as_="刘洋")
    number = reply.split("已登记 ")[1].split("（")[0]
    await advance(chat, timedelta(minutes=50))
    got["ack"] = await chat.send(f"/incident ack {number}", as_="李强")
    await chat.send(f"/incident take {number}", as_="王芳")
    await chat.send(f"/incident show {number}", as_="王芳")
    got["done"] = await chat.send(f"/incident done {number} 1 已删除并请发布单位重新审核", as_="王芳")
    await chat.send("/incident list", as_="王芳")
    await chat.send(f"/incident note {number} 已电话联系发布单位", as_="王芳")
    # a second one, marked a false alarm; someone of another unit may not
    reply = await chat.send("/incident new 无法访问 区政府门户网站 首页打不开", as_="王芳")
    other = reply.split("已登记 ")[1].split("（")[0]
    got["false_denied"] = await chat.send(f"/incident false {other} 不是事件", as_="陈晨")
    got["false"] = await chat.send(f"/incident false {other} 监测系统误报，网站访问正常", as_="李强")
    got["false_again"] = await chat.send(f"/incident false {other} 再次标记", as_="王芳")
    await chat.send(f"/incident show {other}", as_="王芳")
    got["usage"] = await chat.send("/incident", as_="王芳") + await chat.send("/incident 乱写", as_="王芳")
    await chat.send(f"/incident done {number}", as_="王芳")
    await chat.send(f"/incident close {number} 已删除，复查无误", as_="李强")
    await chat.send(f"/incident report {number}", as_="李强")
    # a third one nobody answers: the ladder repeats, steps run late, the briefing lists it
    reply = await chat.send("/incident new 内容错误 区政府门户网站 政策解读栏目标题有错别字", as_="王芳")
    late = reply.split("已登记 ")[1].split("（")[0]
    # a reply registered, assigned, shown
    reply = await chat.send("/reply new 找错 首页“政策解读”栏目链接打不开", as_="王芳")
    msg = re.search(r"MSG-\d{8}-\d+", reply)
    assert msg is not None, reply
    await chat.send(f"/reply assign {msg.group(0)} 王芳", as_="李强")
    await chat.send(f"/reply show {msg.group(0)}", as_="王芳")
    await chat.send("/reply list", as_="王芳")
    await chat.send("/due 2026-11-23 3个工作日", as_="王芳")
    # a spot check by the district office, confirmed
    await chat.send("/spotcheck 区政府办", as_="刘洋")
    await advance(chat, timedelta(minutes=3))
    await chat.send("确认在岗", as_="王芳")
    await chat.send("/spotcheck list", as_="刘洋")
    await chat.send("/sites", as_="王芳")
    # the rest of the day and the next morning: reminders, check-in nudges, the briefing
    await advance(chat, timedelta(hours=24))
    await chat.send("/brief", as_="李强")
    got["late_checkin"] = await chat.send("/checkin", as_="王芳")
    await chat.send(f"/incident show {late}", as_="李强")
    await chat.send(f"/incident report {late}", as_="李强")
    await chat.send("/incident list overdue", as_="李强")
    await chat.send("/handover 一切正常", as_="王芳")
    await chat.send("/brief week", as_="李强")
    return got


async def test_no_english_reaches_a_chat_user(engine: Engine) -> None:
    chat = build(engine)
    got = await session_of_a_duty_day(chat)
    texts = [t for d in chat.adapter.delivered for t in (*d.edits, d.text)]
    assert len(texts) > 40
    leaks = {w: t for t in texts for w in english_words(t)}
    assert leaks == {}, "\n\n".join(f"{w!r} in:\n{t}" for w, t in leaks.items())
    # item 2: the false-alarm action reads 标记为误报 everywhere
    assert "已标记为误报" in got["false"]
    assert any(t.startswith("【事件已标记为误报】") and "由 李强 已标记为误报" in t for t in chat.messages("王芳"))
    assert "不能标记为误报" in got["false_denied"]
    assert "已标记为误报，不能再操作" in got["false_again"] and "已已" not in got["false_again"]
    assert "false 编号 理由（标记为误报）" in got["usage"]
    # item 1: no raw minute count of an hour or more, no space between number and unit
    raw = [(m.group(0), t) for t in texts for m in RAW_MINUTES.finditer(t) if int(m.group(1)) >= 60]
    assert raw == []
    assert not [t for t in texts if re.search(r"\d 分钟", t) and "报告后" in t]
    assert any("报告后15分钟仍无人确认" in t for t in texts)
    assert any("报告后4小时45分钟仍无人确认" in t for t in texts)        # once "报告后 285 分钟"
    assert "迟到1小时23分钟" in got["late_checkin"]                       # once "迟到 83 分钟"


async def test_machine_actors_and_unknown_events_read_in_chinese(engine: Engine) -> None:
    """Timelines once showed ``calendar retimed`` and ``cli``: the recorded machine actor and
    an event without a Chinese line went to the chat as they were stored."""
    chat = build(engine)
    reply = await chat.send("/reply new 咨询 办事指南在哪里下载", as_="王芳")
    msg = re.search(r"MSG-\d{8}-\d+", reply)
    assert msg is not None, reply
    reply = await chat.send("/incident new 内容错误 区政府门户网站 政策解读栏目标题有错别字", as_="王芳")
    number = reply.split("已登记 ")[1].split("（")[0]
    now = chat.app.clock.now()
    with Session(engine) as session:
        audit.record(session=session, at=now, entity_type="reply", entity_id=msg.group(0), action="retimed",
                     actor="calendar", before=now.isoformat(), due=now.isoformat(), provisional=False)
        audit.record(session=session, at=now, entity_type="reply", entity_id=msg.group(0), action="renamed",
                     actor="cli")
        audit.record(session=session, at=now, entity_type="incident", entity_id=number, action="step_retimed",
                     actor="calendar", zh="节假日安排更新，步骤2的期限已调整")
        audit.record(session=session, at=now, entity_type="incident", entity_id=number, action="imported",
                     actor="cli")
        session.commit()
    shown = [await chat.send(f"/reply show {msg.group(0)}", as_="王芳"),
             await chat.send(f"/incident show {number}", as_="王芳"),
             await chat.send(f"/incident report {number}", as_="王芳")]
    for text in shown:
        assert english_words(text) == [], text
    assert "系统（节假日安排更新） 按节假日安排重算期限" in shown[0]
    assert "管理员（命令行） 其他操作" in shown[0]
    assert "系统（节假日安排更新） 节假日安排更新，步骤2的期限已调整" in shown[1]
    assert "管理员（命令行） （其他操作）" in shown[1] and "管理员（命令行） （其他操作）" in shown[2]


async def test_a_closed_incident_says_so_once(engine: Engine) -> None:
    """``已{STATUS_ZH}`` once read ``已已结案``."""
    chat = build(engine)
    reply = await chat.send("/incident new 内容错误 区政府门户网站 政策解读栏目标题有错别字", as_="王芳")
    number = reply.split("已登记 ")[1].split("（")[0]
    await chat.send(f"/incident cancel {number} 重复登记", as_="王芳")
    again = await chat.send(f"/incident ack {number}", as_="李强")
    assert f"{number} 已撤销，不能再操作。" in again and "已已" not in again
