"""Escalations run a chunk at once (no savepoint per item, their incidents and people read
ahead, their pings inserted with one statement: issue 21) and leave exactly what they leave
run one savepoint at a time: the same messages to the same people, the same timeline, the
same due items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from core.outbox import OutboxMessage
from core.schedule import DueItem
from people.models import Person, Role
from tests.factories import make_person

START = "2026-11-23T10:00"
SITES = ("www", "jyj", "wsj", "gaj", "zjj")


def build(engine: Engine) -> MemoryChat:
    clock = FakeClock(parse_local(START))
    with Session(engine) as session:
        for name, role in (("王芳", Role.officer), ("陈晨", Role.officer), ("李强", Role.leader),
                           ("孙丽", Role.leader), ("赵敏", Role.principal), ("张伟", Role.admin)):
            make_person(session, name, roles=(role,), now=clock.now(), unit="区政府办", phone="13800000000")
        session.commit()
    settings = load_settings(None, env={})
    adapter = MemoryAdapter()
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


async def drill(chat: MemoryChat) -> None:
    """Five reports, one acknowledged, one with a step done; two hours of escalations."""
    numbers = []
    for n, site in enumerate(SITES):
        reporter = "王芳" if n % 2 else "陈晨"
        reply = await chat.send(f"/incident new 无法访问 @区政府办 https://{site}.example.gov.cn 首页502", as_=reporter)
        assert "已登记 " in reply, reply
        numbers.append(reply.split("已登记 ")[1].split("（")[0])
    await chat.app.advance_to(parse_local("2026-11-23T10:03"))
    assert "已确认" in await chat.send(f"/incident ack {numbers[1]}", as_="李强")
    await chat.app.advance_to(parse_local("2026-11-23T12:30"))


def outcome(engine: Engine) -> dict[str, list[Any]]:
    with Session(engine) as session:
        names = {p.id: p.name for p in session.exec(select(Person))}
        return {
            "outbox": [(m.event_key, names.get(m.person_id), m.chat_id, m.text, m.status)
                       for m in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))],
            "audit": [(a.entity_type, a.entity_id, a.action, a.actor, a.detail)
                      for a in session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))],
            "due": sorted((d.key, d.status, d.due_at, d.processed_at, d.attempts)
                          for d in session.exec(select(DueItem))),
        }


async def run(path: Path, *, at_once: bool) -> tuple[dict[str, list[Any]], int]:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    savepoints = [0]

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        savepoints[0] += statement.startswith("SAVEPOINT")

    try:
        chat = build(engine)
        if not at_once:
            chat.app.scheduler._at_once.clear()   # every kind one savepoint per item, as before
        event.listen(engine, "before_cursor_execute", seen)
        await drill(chat)
        return outcome(engine), savepoints[0]
    finally:
        engine.dispose()


async def test_a_chunk_run_at_once_leaves_what_one_savepoint_per_item_leaves(tmp_path: Path) -> None:
    together, savepoints_together = await run(tmp_path / "together.db", at_once=True)
    one_by_one, savepoints_one_by_one = await run(tmp_path / "one-by-one.db", at_once=False)
    assert savepoints_together < savepoints_one_by_one   # the escalations did run at once
    pings = [row for row in together["outbox"] if row[3].startswith("【事件升级")]
    assert len({row[0] for row in pings}) >= len(SITES)   # several rungs of several incidents
    assert together == one_by_one
