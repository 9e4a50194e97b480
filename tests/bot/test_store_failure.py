"""Nothing lost (issue 16 item 6): an update whose commit fails (disk full) is apologised
for outside the database, not marked processed, and handled once when it comes again."""

from __future__ import annotations

import io
import sqlite3
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

import bot.dispatcher as dispatcher_module
from bot.adapters.console import ConsoleAdapter, ConsoleSession
from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.models import ProcessedUpdate
from core.clock import FakeClock
from people.models import Role
from tests.factories import make_person


def fail_commits(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> list[int]:
    """Make the dispatcher's next ``times`` commits fail as a full disk does."""
    left = [times]

    class DiskFullSession(Session):
        def commit(self) -> None:
            if left[0] > 0:
                left[0] -= 1
                raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))
            super().commit()

    monkeypatch.setattr(dispatcher_module, "Session", DiskFullSession)
    return left


def processed(engine: Engine, update_id: str) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(ProcessedUpdate)
                            .where(ProcessedUpdate.update_id == update_id)).one()


@pytest.fixture
def chat(engine: Engine, clock: FakeClock) -> MemoryChat:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine),
                      adapter)


async def test_a_failed_commit_apologises_directly_and_the_redelivery_is_handled_once(
        chat: MemoryChat, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_commits(monkeypatch)
    first = await chat.send("/whoami", as_="王芳", update_id="u-1")
    assert "消息未能保存（错误编号 " in first and "请稍后重发" in first
    assert "姓名：王芳" not in first
    assert processed(engine, "u-1") == 0            # not marked processed
    again = await chat.send("/whoami", as_="王芳", update_id="u-1")   # the redelivery
    assert "姓名：王芳" in again and "未能保存" not in again
    assert processed(engine, "u-1") == 1
    third = await chat.send("/whoami", as_="王芳", update_id="u-1")
    assert third == ""                                # handled once
    assert sum("姓名：王芳" in m for m in chat.messages("王芳")) == 1


async def test_a_redelivery_that_fails_again_gets_no_second_apology(
        chat: MemoryChat, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_commits(monkeypatch, times=2)
    await chat.send("/whoami", as_="王芳", update_id="u-2")
    await chat.send("/whoami", as_="王芳", update_id="u-2")
    assert sum("未能保存" in m for m in chat.messages("王芳")) == 1
    assert "姓名：王芳" in await chat.send("/whoami", as_="王芳", update_id="u-2")


async def test_a_failed_apology_commit_is_caught_too(
        chat: MemoryChat, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler error whose apology cannot be stored either: still one direct apology."""
    fail_commits(monkeypatch)

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(chat.app.dispatcher, "_run", boom)
    reply = await chat.send("/whoami", as_="王芳", update_id="u-3")
    assert "未能保存" in reply
    assert processed(engine, "u-3") == 0


async def test_the_console_keeps_running_after_a_full_disk(
        engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), platform=None)
        session.commit()
    out = io.StringIO()
    holder: list[ConsoleSession] = []
    app = App(load_settings(None, env={}), clock=clock, engine=engine,
              adapter=ConsoleAdapter(lambda c, t: holder[0].show(c, t)))
    console = ConsoleSession(app, clock, out=out)
    holder.append(console)
    await console.line(":as 王芳")
    fail_commits(monkeypatch)
    assert await console.line("/whoami") is True
    assert "消息未能保存" in out.getvalue()
    assert await console.line("/whoami") is True    # the console goes on; the resend works
    assert "姓名：王芳" in out.getvalue()
