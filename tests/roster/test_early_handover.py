"""An early /handover (more than ``[roster] handover_early_minutes`` before the shift ends)
asks for confirmation, then proceeds on ``/handover 确认`` with the note given first.
Clock moved, never slept."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from people.models import Role
from roster.models import Handover
from tests.factories import make_person, roster_days


def build(engine: Engine, start: str, env: dict[str, str] | None = None) -> MemoryChat:
    """09-30 白班 王芳/李强, 夜班 (until 10-01 08:30) 陈晨/周明; 10-01 全天 王芳/李强."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, role in (("王芳", Role.officer), ("陈晨", Role.officer), ("李强", Role.leader),
                           ("周明", Role.leader)):
            make_person(session, name, roles=(role,), now=clock.now())
        roster_days(session, start="2026-09-30", end="2026-10-01", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=clock.now())
        session.commit()
    settings = load_settings(None, env=env or {})
    settings.roster.round_windows = []
    adapter = MemoryAdapter()
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


def handovers(engine: Engine) -> list[Handover]:
    with Session(engine) as session:
        return list(session.exec(select(Handover)))


def handover_cards(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith("【交班")]


async def test_early_handover_asks_then_proceeds_on_confirm(engine: Engine) -> None:
    chat = build(engine, "2026-10-01T06:30")
    asked = await chat.send("/handover 首页已恢复，INC 待网信办回复", as_="陈晨")
    assert asked.startswith("距交班还有2小时（9月30日（星期三）夜班 17:30–次日08:30，08:30 结束）。"
                            "确认提前交班请发送 /handover 确认")
    assert "备注已记下" in asked
    ask = chat.adapter.delivered[-1]
    assert ask.buttons == (("确认提前交班", "/handover 确认"),)
    assert handovers(engine) == [] and handover_cards(chat, "王芳") == [] and handover_cards(chat, "周明") == []

    done = await chat.send("/handover 确认", as_="陈晨", button=True)
    assert done.startswith("已交班：9月30日（星期三）夜班 17:30–次日08:30") and "备注：首页已恢复，INC 待网信办回复" in done
    [card] = handover_cards(chat, "王芳")
    assert "备注：首页已恢复，INC 待网信办回复" in card
    [row] = handovers(engine)
    assert row.note == "首页已恢复，INC 待网信办回复"
    # Updating a handover already made does not ask again.
    again = await chat.send("/handover 补充：首页图片已替换", as_="陈晨")
    assert again.startswith("已更新交班记录") and "备注已更新" in again


async def test_a_confirmation_may_bring_its_own_note_and_a_late_handover_is_not_asked(engine: Engine) -> None:
    chat = build(engine, "2026-10-01T05:00")
    assert "距交班还有3小时30分钟" in await chat.send("交班", as_="陈晨")
    done = await chat.send("/handover 确认 一切正常", as_="陈晨")
    assert done.startswith("已交班") and "备注：一切正常" in done


async def test_handover_within_the_last_minutes_is_done_at_once(engine: Engine) -> None:
    chat = build(engine, "2026-10-01T08:05")
    done = await chat.send("/handover 一切正常", as_="陈晨")
    assert done.startswith("已交班") and len(handovers(engine)) == 1


async def test_handover_early_minutes_zero_never_asks(engine: Engine) -> None:
    chat = build(engine, "2026-09-30T09:00", {"DUTYBOT_ROSTER_HANDOVER_EARLY_MINUTES": "0"})
    assert (await chat.send("/handover 一切正常", as_="王芳")).startswith("已交班")
