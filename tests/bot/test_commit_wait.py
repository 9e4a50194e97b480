"""On PostgreSQL a command that changed nothing but its own reply (a question) commits
without waiting for the disk flush; one that changed the office's records (a report, an
acknowledgement) waits, as before; and the pooled connections stay synchronous."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from people.models import Role
from tests.factories import make_person


@pytest.fixture
def chat(engine: Engine) -> MemoryChat:
    if engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's (SQLite in WAL commits without a flush)")
    clock = FakeClock(parse_local("2026-11-23T10:00"))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine), adapter)


class Commits:
    """For each transaction that marked an update processed: how it committed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.command: dict[int, bool] = {}   # connection id -> this transaction is a command's
        self.seen: list[str] = []            # synchronous_commit at each command's commit

    def __enter__(self) -> Commits:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO processed_update"):
            self.command[id(conn)] = True

    def _commit(self, conn: Any) -> None:
        if self.command.pop(id(conn), False):
            self.seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar())


async def test_a_question_commits_at_once_and_a_report_waits_for_the_disk(chat: MemoryChat) -> None:
    engine = chat.app.engine
    with Commits(engine) as questions:
        assert "王芳" in await chat.send("/whoami", as_="王芳")
        assert "工作日" in await chat.send("/due 2026-11-23 3个工作日", as_="王芳")
        await chat.send("/help", as_="王芳")
    assert questions.seen == ["off", "off", "off"]
    with Commits(engine) as reports:
        reply = await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502", as_="王芳")
        assert "已登记 " in reply
        number = reply.split("已登记 ")[1].split("（")[0]
        assert "已确认" in await chat.send(f"/incident ack {number}", as_="李强")
    assert reports.seen == ["on", "on"]
    with ExitStack() as stack:   # every pooled connection goes back synchronous (SET LOCAL)
        conns = [stack.enter_context(engine.connect()) for _ in range(engine.pool.size())]
        assert {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in conns} == {"on"}
