"""Conversations through the in-memory adapter: the chat core as a person meets it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.dispatcher import Context, Handler
from bot.handlers import default_handlers
from bot.models import ProcessedUpdate
from core.audit import AuditEvent
from core.clock import FakeClock
from core.messages import Attachment, Inbound, Outbound
from incidents.models import Evidence
from people.models import ChatIdentity, InviteCode, Role
from tests.factories import make_person


class Boom(Handler):
    command = "boom"
    usage = "/boom"
    summary = "测试用：总是出错"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        raise RuntimeError("kaboom")


@pytest.fixture
async def chat(engine: Engine, clock: FakeClock) -> AsyncIterator[MemoryChat]:
    settings = load_settings(None, env={})
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin, Role.officer), now=clock.now())
        make_person(session, "李强", roles=(Role.leader,), now=clock.now())
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        make_person(session, "网信办老刘", roles=(Role.external,), now=clock.now())
        make_person(session, "陈晨", roles=(Role.officer,), now=clock.now(), platform=None)
        session.commit()
    adapter = MemoryAdapter()
    app = App(settings, clock=clock, adapter=adapter, engine=engine,
              handlers=[*default_handlers(), Boom()])
    yield MemoryChat(app, adapter)


async def test_help_lists_only_what_the_person_may_use(chat: MemoryChat) -> None:
    officer = await chat.send("/help", as_="王芳")
    assert "王芳，您好" in officer and "/due" in officer
    assert "/people" not in officer
    admin = await chat.send("/help", as_="张伟")
    assert "/people" in admin


async def test_unknown_user_is_refused_politely_and_nothing_else(chat: MemoryChat, engine: Engine) -> None:
    reply = await chat.send("/due 2026-10-08 3个工作日", as_="路人甲")
    assert "还没有绑定身份" in reply and "/bind" in reply
    assert "截止" not in reply
    assert "还没有绑定身份" in await chat.send("你好", as_="路人甲")


async def test_bind_with_a_one_time_code(chat: MemoryChat, clock: FakeClock, engine: Engine) -> None:
    reply = await chat.send("/people invite 陈晨", as_="张伟")
    with Session(engine) as session:
        code = session.exec(select(InviteCode)).one().code
    assert code in reply
    assert "绑定成功" in await chat.send(f"/bind {code.lower()}", as_="陈晨")
    assert "值班员" in await chat.send("/whoami", as_="陈晨")
    # Single use: nobody else can take the same code.
    assert "已经使用过" in await chat.send(f"/bind {code}", as_="冒名者")
    with Session(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert "invited" in actions and "bound" in actions


async def test_expired_and_wrong_codes(chat: MemoryChat, clock: FakeClock, engine: Engine) -> None:
    await chat.send("/people invite 陈晨", as_="张伟")
    with Session(engine) as session:
        code = session.exec(select(InviteCode)).one().code
    assert "绑定码无效" in await chat.send("/bind ZZZZZZZZ", as_="陈晨")
    clock.advance(timedelta(hours=73))
    assert "已过期" in await chat.send(f"/bind {code}", as_="陈晨")
    assert "用法：/bind" in await chat.send("/bind", as_="陈晨")


async def test_role_refused(chat: MemoryChat) -> None:
    reply = await chat.send("/people list", as_="王芳")
    assert "需要以下角色之一：管理员" in reply


async def test_external_contacts_do_not_use_the_bot(chat: MemoryChat) -> None:
    assert "外部联系人" in await chat.send("/help", as_="网信办老刘")


async def test_malformed_command_gets_the_usage_line(chat: MemoryChat) -> None:
    reply = await chat.send("/due 明天", as_="王芳")
    assert "用法：/due 起算日期 期限" in reply
    reply = await chat.send("/due 2026-13-45 3个工作日", as_="王芳")
    assert "无法识别的日期" in reply and "用法" in reply


async def test_unknown_command_and_free_text(chat: MemoryChat) -> None:
    assert "未知命令 /frobnicate" in await chat.send("/frobnicate", as_="王芳")
    assert "/help" in await chat.send("今天天气不错", as_="王芳")
    # Chatter in the duty group is not for the bot.
    assert await chat.send("大家辛苦了", as_="王芳", group="g-duty") == ""


async def test_chinese_alias_and_due(chat: MemoryChat) -> None:
    reply = await chat.send("期限 2026-09-30 1个工作日", as_="王芳")
    assert "截止：2026年10月8日（星期四）24:00" in reply
    assert "可以使用以下命令" in await chat.send("帮助", as_="王芳")
    provisional = await chat.send("/due 2026-12-30 3 个工作日", as_="王芳")
    assert "暂定" in provisional and "2027年1月5日" in provisional


async def test_redelivered_update_is_handled_once(chat: MemoryChat, engine: Engine) -> None:
    first = await chat.send("/whoami", as_="王芳", update_id="u-42")
    second = await chat.send("/whoami", as_="王芳", update_id="u-42")
    assert "姓名：王芳" in first and second == ""
    with Session(engine) as session:
        assert len(session.exec(select(ProcessedUpdate)).all()) == 1


async def test_unexpected_error_apologizes_with_an_error_id(chat: MemoryChat,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    reply = await chat.send("/boom", as_="王芳")
    assert "抱歉，处理您的消息时出错了（错误编号" in reply
    error_id = reply.split("错误编号 ")[1][:8]
    assert any(error_id in r.getMessage() and "kaboom" in (r.exc_text or str(r.exc_info))
               for r in caplog.records)


async def test_over_long_input_is_refused(chat: MemoryChat) -> None:
    reply = await chat.send("/due " + "很" * 3000, as_="王芳")
    assert "消息过长" in reply


async def test_admin_adds_people_in_chat(chat: MemoryChat, engine: Engine) -> None:
    reply = await chat.send("/people add 孙丽 13900000009 值班员、带班领导 区网信办", as_="张伟")
    assert "已添加 孙丽（值班员、带班领导）" in reply
    assert "孙丽" in await chat.send("/people list", as_="张伟")
    assert "无法识别的角色“队长”" in await chat.send("/people add 周八 13900000010 队长", as_="张伟")
    assert "已有人员：孙丽（" in await chat.send("/people add 孙丽 13900000011 值班员", as_="张伟")


async def test_rebinding_replaces_the_old_account(chat: MemoryChat, engine: Engine) -> None:
    await chat.send("/people invite 王芳", as_="张伟")
    with Session(engine) as session:
        code = session.exec(select(InviteCode)).one().code
    assert "绑定成功" in await chat.send(f"/bind {code}", as_="王芳新手机")
    with Session(engine) as session:
        idents = session.exec(select(ChatIdentity).where(ChatIdentity.external_id.in_(  # type: ignore[attr-defined]
            ["u-王芳", "u-王芳新手机"]))).all()
    assert [i.external_id for i in idents] == ["u-王芳新手机"]


# ---------------------------------------------------------------- held pictures and files

SHOT = Attachment("shot.png", b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "image/png", "photo")


def held_on_disk() -> list[Path]:
    folder = Path("evidence") / "held"   # the tests run in tmp_path (conftest)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def evidence_rows(engine: Engine) -> list[Evidence]:
    with Session(engine) as session:
        return list(session.exec(select(Evidence).order_by(Evidence.id)))  # type: ignore[arg-type]


async def new_incident(chat: MemoryChat) -> str:
    reply = await chat.send("/incident new 敏感信息 https://www.example.gov.cn/a 有不当言论", as_="王芳")
    return reply.split("已登记 ")[1].split("（")[0]


async def test_a_picture_without_a_command_is_held_for_known_people_only(chat: MemoryChat) -> None:
    reply = await chat.send("", as_="王芳", attachments=(SHOT,))
    assert reply == "已收到图片。请在10分钟内回复：/incident evidence 事件编号 说明（将作为证据保存）。"
    assert "共 2 份待保存" in await chat.send("随手写的说明", as_="王芳", attachments=(SHOT,))
    assert sorted(p.suffix for p in held_on_disk()) == [".bin", ".bin", ".json", ".json"]
    assert "还没有绑定身份" in await chat.send("", as_="路人甲", attachments=(SHOT,))
    assert "外部联系人" in await chat.send("", as_="网信办老刘", attachments=(SHOT,))
    assert await chat.send("", as_="王芳", group="duty", attachments=(SHOT,)) == ""   # group chatter
    assert len(held_on_disk()) == 4
    # Other commands leave them held.
    assert "王芳" in await chat.send("/whoami", as_="王芳")
    assert chat.app.dispatcher.held.count("memory:u-王芳") == 2


async def test_a_restart_keeps_what_is_held(chat: MemoryChat, engine: Engine, clock: FakeClock) -> None:
    number = await new_incident(chat)
    await chat.send("", as_="王芳", attachments=(SHOT,))
    # A new App on the same database and evidence directory: the bot was restarted.
    adapter = MemoryAdapter()
    restarted = MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter,
                               engine=engine), adapter)
    kept = await restarted.send(f"/incident evidence {number} 首页截图", as_="王芳",
                                update_id="after-restart")
    assert f"已为 {number} 保全证据 1 份" in kept
    [row] = evidence_rows(engine)
    assert (row.kind, row.filename, row.content_type, row.text) == ("photo", "shot.png", "image/png", "首页截图")
    assert row.sha256 == hashlib.sha256(SHOT.data).hexdigest()
    assert held_on_disk() == []


async def test_a_refused_command_keeps_them_and_the_corrected_one_stores_them(
        chat: MemoryChat, engine: Engine) -> None:
    number = await new_incident(chat)
    await chat.send("", as_="王芳", attachments=(SHOT,))
    refused = await chat.send("/incident evidence INC-20991231-999 首页截图", as_="王芳")
    assert "1 份图片/文件仍为您保留" in refused and evidence_rows(engine) == []
    # A command with its own picture, refused too: both wait now.
    other = Attachment("b.pdf", b"%PDF-1.4 x", "application/pdf", "file")
    assert "2 份图片/文件仍为您保留" in await chat.send(
        "/incident evidence INC-20991231-999 通报", as_="王芳", attachments=(other,))
    kept = await chat.send(f"/incident evidence {number} 首页截图和通报", as_="王芳")
    assert f"已为 {number} 保全证据 2 份" in kept
    assert [r.filename for r in evidence_rows(engine)] == ["shot.png", "b.pdf"]
    assert held_on_disk() == [] and "文字记录" in await chat.send(f"/incident evidence {number} 补充", as_="王芳")


async def test_held_pictures_expire_after_ten_minutes(chat: MemoryChat, engine: Engine,
                                                      clock: FakeClock) -> None:
    number = await new_incident(chat)
    await chat.send("", as_="王芳", attachments=(SHOT,))
    clock.advance(timedelta(minutes=9, seconds=59))
    assert chat.app.dispatcher.held.count("memory:u-王芳") == 1
    clock.advance(timedelta(seconds=1))
    assert "文字记录" in await chat.send(f"/incident evidence {number} 首页截图", as_="王芳")
    assert [r.kind for r in evidence_rows(engine)] == ["text"] and held_on_disk() == []

    # Nobody asks for them: the periodic sweep deletes them from disk.
    await chat.send("", as_="王芳", attachments=(SHOT,))
    assert len(held_on_disk()) == 2
    await chat.app.advance_to(clock.now() + timedelta(minutes=9))
    assert len(held_on_disk()) == 2
    await chat.app.advance_to(clock.now() + timedelta(minutes=16))
    assert held_on_disk() == []
