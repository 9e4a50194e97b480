"""The Telegram adapter end to end: the real python-telegram-bot networking against a fake
Bot API server on 127.0.0.1, the whole app behind it (dispatcher, outbox, database)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.base import RateWindow
from bot.adapters.telegram import TelegramAdapter, api_urls, keyboard
from bot.app import App
from bot.config import Settings, load_settings
from bot.models import ChatAlias
from bot.outbox import OutboxSender
from bot.ratelimit import RateLimiter
from core.clock import FakeClock
from core.db import session_scope
from core.messages import Button, Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from people.models import ChatIdentity, Role
from tests.factories import make_person
from tests.fakes.fake_telegram import FakeBotApi
from tests.fakes.serve import serve_asgi
from tests.io_wait import eventually

TOKEN = "123:TEST"
WANG, LI, ZHANG = 1001, 1002, 1003      # Telegram user ids = their private chat ids
GROUP = -200



#: What the bot's answer to each barrier command starts with or contains.
BARRIER_ANSWERS = {"/help": "您可以使用以下命令", "/whoami": "姓名："}


async def after_barrier(fake: FakeBotApi, chat: int, sender: int, command: str = "/help") -> list[str]:
    """Send ``command`` in ``chat`` (the next update id) and wait for its answer; return
    the text of every bot message in ``chat`` so far, the barrier's answer last.

    One chat's updates are handled in order, and its replies leave the outbox in order:
    once the barrier is answered, any reply to an earlier update would be there too. This
    is how a test shows that something was *not* answered, without sleeping.
    """
    said = command + ("@" + fake.username if chat < 0 else "")
    fake.push_message(chat, sender, said)
    marker = BARRIER_ANSWERS[command]
    await eventually(lambda: any(marker in (r.text or "") for r in fake.sent_to(chat)))
    replies = [r.text or "" for r in fake.sent_to(chat)]
    assert marker in replies[-1], replies
    return replies


def texts(fake: FakeBotApi, chat: int) -> list[str]:
    """The current text of every bot message in ``chat`` (edits applied), oldest first."""
    return [m.get("text", "") for (c, _), m in sorted(fake.messages.items(), key=lambda kv: kv[0][1])
            if c == chat]


@dataclass
class Harness:
    fake: FakeBotApi
    app: App
    adapter: TelegramAdapter
    url: str
    engine: Engine


def _settings(url: str, **env: str) -> Settings:
    return load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN, "DUTYBOT_TELEGRAM_BASE_URL": url,
                                    "DUTYBOT_TELEGRAM_POLL_TIMEOUT": "1", **env})


def _people(engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), platform="telegram",
                    external_id=str(WANG))
        make_person(session, "李强", roles=(Role.leader, Role.officer), now=clock.now(),
                    platform="telegram", external_id=str(LI))
        make_person(session, "张伟", roles=(Role.admin,), now=clock.now(), platform="telegram",
                    external_id=str(ZHANG))
        session.commit()


@pytest.fixture
async def tg(engine: Engine, clock: FakeClock) -> AsyncIterator[Harness]:
    """The bot running for real (``App.run``) in polling mode against the fake server."""
    _people(engine, clock)
    fake = FakeBotApi(TOKEN)
    async with serve_asgi(fake.app) as url:
        adapter = TelegramAdapter(_settings(url).telegram, retry_base_seconds=0.05)
        app = App(_settings(url), clock=clock, adapter=adapter, engine=engine)
        app.sender.limiter = RateLimiter(())  # limits have their own tests below
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        await eventually(lambda: app.running)
        try:
            yield Harness(fake, app, adapter, url, engine)
        finally:
            stop.set()
            fake.close()
            await asyncio.wait_for(task, timeout=10)


async def test_help_answered_and_command_menu_published(tg: Harness) -> None:
    tg.fake.push_message(WANG, WANG, "/help")
    tg.fake.push_message(4242, 4242, "/help", first_name="陌生人")
    await eventually(lambda: tg.fake.sent_to(WANG) and tg.fake.sent_to(4242))
    assert "可以使用以下命令" in (tg.fake.sent_to(WANG)[0].text or "")
    assert "/bind 绑定码" in (tg.fake.sent_to(4242)[0].text or "")  # not bound yet
    private = [c["command"] for c in tg.fake.commands["all_private_chats"]["commands"]]
    group = [c["command"] for c in tg.fake.commands["all_group_chats"]["commands"]]
    assert {"help", "incident", "duty", "bind"} <= set(private)
    assert "bind" not in group and "incident" in group  # a code said in a group is public
    described = {c["command"]: c["description"] for c in tg.fake.commands["all_private_chats"]["commands"]}
    assert described["help"] == "查看您可以使用的命令"


async def test_command_in_the_duty_group(tg: Harness) -> None:
    tg.fake.add_chat(GROUP, "supergroup", title="值班群")
    tg.fake.push_message(GROUP, WANG, "/help@someone_else_bot")  # not for us
    tg.fake.push_message(GROUP, WANG, "/due@dutybot_test_bot 2026-09-30 1个工作日")
    tg.fake.push_message(GROUP, WANG, "大家辛苦了")                  # chatter, not for the bot
    replies = await after_barrier(tg.fake, GROUP, WANG, "/whoami")
    assert len(replies) == 2 and "2026年10月8日" in replies[0]   # the /due answer, then the barrier's


async def test_bind_in_a_group_is_refused(tg: Harness) -> None:
    tg.fake.push_message(GROUP, 777, "/bind ABCD2345")
    await eventually(lambda: tg.fake.sent_to(GROUP))
    assert "私聊" in (tg.fake.sent_to(GROUP)[0].text or "")


async def test_button_press_is_answered_and_the_card_edited(tg: Harness) -> None:
    tg.fake.push_message(WANG, WANG, "/incident new 篡改 https://www.example.gov.cn 首页被篡改")
    await eventually(lambda: tg.fake.sent_to(LI))
    card = tg.fake.sent_to(LI)[0]
    assert "待确认" in (card.text or "")
    buttons = [b for row in card.reply_markup["inline_keyboard"] for b in row]
    ack = next(b for b in buttons if b["text"] == "确认收到")
    assert ack["callback_data"].startswith("/incident ack INC-")

    await eventually(lambda: _settled(tg.engine))  # the card's message id is stored
    tg.fake.push_callback(LI, LI, card.message_id, ack["callback_data"], first_name="李强")
    await eventually(lambda: tg.fake.callback_answers)
    await eventually(lambda: "已确认" in tg.fake.messages[(LI, card.message_id)]["text"])
    edited = tg.fake.messages[(LI, card.message_id)]
    labels = [b["text"] for row in edited["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["我来处置"]               # the spent button is gone
    assert len(tg.fake.sent_to(LI)) == 2      # the card was sent, then edited — no new message
    # 王芳 (the reporter) and the group never show a stale "待确认".
    assert all("待确认" not in t for t in texts(tg.fake, LI))


async def test_same_update_twice_is_handled_once(tg: Harness) -> None:
    update = tg.fake.push_message(WANG, WANG, "/whoami")
    tg.fake.push_update({"message": update["message"]}, update_id=update["update_id"])
    replies = await after_barrier(tg.fake, WANG, WANG, "/help")
    assert len(replies) == 2 and replies[0].startswith("姓名：王芳")   # one /whoami answer, then /help's


async def test_a_group_upgraded_to_a_supergroup_keeps_getting_messages(tg: Harness, clock: FakeClock) -> None:
    tg.fake.add_chat(-555, "group", title="值班群")
    tg.fake.fail_next("sendMessage", -555, status=400,
                      description="Bad Request: group chat was upgraded to a supergroup chat",
                      parameters={"migrate_to_chat_id": -100555})
    with session_scope(tg.engine) as session:
        enqueue(session=session, message=Outbound("【每日简报】", chat_id="-555"), now=clock.now(),
                event_key="brief:1")
    tg.app.sender.wake()
    await eventually(lambda: tg.fake.sent_to(-100555))
    with session_scope(tg.engine) as session:  # the configured old id keeps working
        enqueue(session=session, message=Outbound("第二条", chat_id="-555"), now=clock.now(),
                event_key="brief:2")
    tg.app.sender.wake()
    await eventually(lambda: len(tg.fake.sent_to(-100555)) == 2)
    assert tg.fake.sent_to(-555) == []
    with Session(tg.engine) as session:
        alias = session.exec(select(ChatAlias)).one()
        assert (alias.old_chat_id, alias.new_chat_id) == ("-555", "-100555")
    await eventually(lambda: any("群聊已升级" in (r.text or "") for r in tg.fake.sent_to(ZHANG)))


async def test_migration_service_message_is_recorded(tg: Harness) -> None:
    tg.fake.add_chat(-777, "group", title="值班群")
    tg.fake.push_message(-777, WANG, "", migrate_to_chat_id=-100777)
    await eventually(lambda: any("-100777" in (r.text or "") for r in tg.fake.sent_to(ZHANG)))
    with Session(tg.engine) as session:
        assert session.exec(select(ChatAlias.new_chat_id)).one() == "-100777"


async def test_blocked_user_is_recorded_and_admins_told(tg: Harness, clock: FakeClock) -> None:
    tg.fake.fail_next("sendMessage", WANG, status=403,
                      description="Forbidden: bot was blocked by the user", times=None)
    with session_scope(tg.engine) as session:
        wang = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == str(WANG))).one()
        enqueue(session=session, message=Outbound("【值班提醒】", person_id=wang.person_id),
                now=clock.now(), event_key="remind:1")
    tg.app.sender.wake()
    await eventually(lambda: any("投递失败" in (r.text or "") for r in tg.fake.sent_to(ZHANG)))
    notice = next(r.text for r in tg.fake.sent_to(ZHANG) if "投递失败" in (r.text or ""))
    assert "王芳" in notice and "已屏蔽机器人" in notice
    with Session(tg.engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == str(WANG))).one()
        assert ident.blocked_at is not None
        row = session.exec(select(OutboxMessage).where(OutboxMessage.event_key == "remind:1")).one()
        assert row.status == OutboxStatus.dead and row.attempts == 1   # no retry loop
    attempts = [c for c in tg.fake.calls if c[0] == "sendMessage" and str(c[1].get("chat_id")) == str(WANG)]
    assert len(attempts) == 1
    # Unblocking and writing again makes the person reachable again.
    tg.fake.clear_failures()
    tg.fake.push_message(WANG, WANG, "/whoami")
    await eventually(lambda: tg.fake.sent_to(WANG))
    with Session(tg.engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == str(WANG))).one()
        assert ident.blocked_at is None


async def test_network_failure_and_5xx_are_retried(tg: Harness, clock: FakeClock) -> None:
    tg.fake.fail_next("sendMessage", LI, status=502, description="Bad Gateway")
    with session_scope(tg.engine) as session:
        li = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == str(LI))).one()
        enqueue(session=session, message=Outbound("【事件提醒】", person_id=li.person_id),
                now=clock.now(), event_key="x:1")
    tg.app.sender.wake()
    await eventually(lambda: any(c[0] == "sendMessage" for c in tg.fake.calls))
    await eventually(lambda: _row(tg.engine, "x:1").attempts == 1)
    assert _row(tg.engine, "x:1").status == OutboxStatus.pending
    clock.advance(timedelta(minutes=15))
    tg.app.sender.wake()
    await eventually(lambda: _row(tg.engine, "x:1").status == OutboxStatus.sent)
    assert len(tg.fake.sent_to(LI)) == 1


def _settled(engine: Engine) -> bool:
    """Nothing left in the outbox to send (every send is recorded as sent)."""
    with Session(engine) as session:
        return session.exec(select(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.pending)).first() is None


def _row(engine: Engine, key: str) -> OutboxMessage:
    with Session(engine) as session:
        return session.exec(select(OutboxMessage).where(OutboxMessage.event_key == key)).one()


async def test_photo_with_a_caption_becomes_evidence(tg: Harness) -> None:
    tg.fake.push_message(WANG, WANG, "/incident new 敏感信息 https://www.example.gov.cn/a 有不当言论")
    await eventually(lambda: tg.fake.sent_to(WANG))
    number = (tg.fake.sent_to(WANG)[0].text or "").split("已登记 ")[1].split("（")[0]
    tg.fake.add_file("PIC1", b"\xff\xd8\xff fake jpeg", "photos/file_1.jpg")
    tg.fake.push_message(WANG, WANG, f"/incident evidence {number}", photo="PIC1")
    await eventually(lambda: len(tg.fake.sent_to(WANG)) >= 2)
    assert f"已为 {number} 保全证据 1 份" in (tg.fake.sent_to(WANG)[-1].text or "")
    from incidents.models import Evidence
    with Session(tg.engine) as session:
        kept = session.exec(select(Evidence)).one()
    assert kept.kind == "photo" and kept.size == len(b"\xff\xd8\xff fake jpeg")


async def test_photo_without_a_caption_is_held_for_the_evidence_command(tg: Harness) -> None:
    tg.fake.push_message(WANG, WANG, "/incident new 敏感信息 https://www.example.gov.cn/a 有不当言论")
    await eventually(lambda: tg.fake.sent_to(WANG))
    number = (tg.fake.sent_to(WANG)[0].text or "").split("已登记 ")[1].split("（")[0]
    jpeg = b"\xff\xd8\xff another fake jpeg"
    tg.fake.add_file("PIC2", jpeg, "photos/file_2.jpg")
    tg.fake.push_message(WANG, WANG, "", photo="PIC2")   # no caption
    await eventually(lambda: len(tg.fake.sent_to(WANG)) >= 2)
    hint = tg.fake.sent_to(WANG)[-1].text or ""
    assert hint == "已收到图片。请在10分钟内回复：/incident evidence 事件编号 说明（将作为证据保存）。"
    assert tg.app.dispatcher.held.count(f"telegram:{WANG}") == 1

    tg.fake.push_message(WANG, WANG, f"/incident evidence {number} 首页截图")
    await eventually(lambda: len(tg.fake.sent_to(WANG)) >= 3)
    assert f"已为 {number} 保全证据 1 份" in (tg.fake.sent_to(WANG)[-1].text or "")
    from incidents.models import Evidence
    with Session(tg.engine) as session:
        kept = session.exec(select(Evidence)).one()
    assert (kept.kind, kept.size, kept.text) == ("photo", len(jpeg), "首页截图")
    assert tg.app.dispatcher.held.count(f"telegram:{WANG}") == 0


# ---------------------------------------------------------------- webhook


@pytest.fixture
async def hooked(engine: Engine, clock: FakeClock) -> AsyncIterator[Harness]:
    """Webhook mode: the app's HTTP service receives what Telegram would post."""
    _people(engine, clock)
    fake = FakeBotApi(TOKEN)
    async with serve_asgi(fake.app) as url:
        settings = _settings(url, DUTYBOT_TELEGRAM_MODE="webhook",
                             DUTYBOT_TELEGRAM_WEBHOOK_URL="https://bot.example.gov.cn/telegram/webhook",
                             DUTYBOT_TELEGRAM_WEBHOOK_SECRET="s3cret-token", DUTYBOT_HTTP_PORT="0")
        adapter = TelegramAdapter(settings.telegram)
        app = App(settings, clock=clock, adapter=adapter, engine=engine)
        app.sender.limiter = RateLimiter(())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        await eventually(lambda: app.running)
        assert app.http is not None
        try:
            yield Harness(fake, app, adapter, f"http://127.0.0.1:{app.http.port}", engine)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)


async def test_webhook_registered_with_the_secret(hooked: Harness) -> None:
    assert hooked.fake.webhook["url"] == "https://bot.example.gov.cn/telegram/webhook"
    assert hooked.fake.webhook["secret_token"] == "s3cret-token"
    async with httpx.AsyncClient() as client:
        health = await client.get(hooked.url + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_webhook_with_a_wrong_secret_is_refused(hooked: Harness) -> None:
    update = FakeBotApi.update_json(hooked.fake.push_message(WANG, WANG, "/whoami"))
    hook, good = hooked.url + "/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
    helps = 0

    async def barrier(client: httpx.AsyncClient) -> list[str]:
        """Post a /help (the next update id) and wait for its answer; every reply to an
        update posted before it is out by then (see :func:`after_barrier`)."""
        nonlocal helps
        helps += 1
        sentinel = FakeBotApi.update_json(hooked.fake.push_message(WANG, WANG, "/help"))
        assert (await client.post(hook, json=sentinel, headers=good)).status_code == 200
        marker = BARRIER_ANSWERS["/help"]
        await eventually(lambda: sum(marker in (r.text or "") for r in hooked.fake.sent_to(WANG)) == helps)
        return [r.text or "" for r in hooked.fake.sent_to(WANG)]

    async with httpx.AsyncClient() as client:
        wrong = await client.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        missing = await client.post(hook, json=update)
        assert (wrong.status_code, missing.status_code) == (403, 403)
        replies = await barrier(client)
        assert len(replies) == 1                                  # only the barrier's: /whoami unanswered
        first = await client.post(hook, json=update, headers=good)
        again = await client.post(hook, json=update, headers=good)
        assert (first.status_code, again.status_code) == (200, 200)  # a retry is acknowledged …
        replies = await barrier(client)
    assert len(replies) == 3                                      # … and handled once
    assert replies[1].startswith("姓名：王芳")


# ---------------------------------------------------------------- limits


async def test_retry_after_holds_back_only_that_chat(engine: Engine, clock: FakeClock) -> None:
    _people(engine, clock)
    now = [1000.0]
    fake = FakeBotApi(TOKEN, enforce_limits=True, time_source=lambda: now[0])
    async with serve_asgi(fake.app) as url:
        adapter = TelegramAdapter(_settings(url).telegram)
        await adapter.bot.initialize()
        sender = OutboxSender(engine=engine, adapter=adapter, clock=clock,
                              settings=load_settings(None, env={}).outbox,
                              time_source=lambda: now[0], rng=random.Random(1))
        fake.fail_next("sendMessage", WANG, status=429, description="Too Many Requests: retry after 3",
                       parameters={"retry_after": 3})
        with session_scope(engine) as session:
            ids = {i.external_id: i.person_id for i in session.exec(select(ChatIdentity))}
            for n in range(2):
                for who in (WANG, LI):
                    enqueue(session=session, message=Outbound(f"消息{n}", person_id=ids[str(who)]),
                            now=clock.now(), event_key=f"m{n}:{who}")
        await sender.deliver_due()
        assert [r.text for r in fake.sent_to(LI)] == ["消息0"] and fake.sent_to(WANG) == []
        for _ in range(2):                           # 2 s later: 李强 goes on, 王芳 still waits
            now[0] += 1.0
            clock.advance(timedelta(seconds=1))
            await sender.deliver_due()
        assert [r.text for r in fake.sent_to(LI)] == ["消息0", "消息1"] and fake.sent_to(WANG) == []
        for _ in range(3):
            now[0] += 1.05
            clock.advance(timedelta(seconds=1.05))
            await sender.deliver_due()
        assert [r.text for r in fake.sent_to(WANG)] == ["消息0", "消息1"]   # in order
        assert fake.too_many == 0   # the only 429 was the injected one; we never provoked one
        await adapter.bot.shutdown()


async def test_declared_limits_are_telegrams() -> None:
    assert RateWindow("global", 30, 1.0) in TelegramAdapter.limits
    assert RateWindow("chat", 1, 1.0) in TelegramAdapter.limits
    assert RateWindow("group", 20, 60.0) in TelegramAdapter.limits


# ---------------------------------------------------------------- small parts


def test_api_urls_for_a_self_hosted_server() -> None:
    assert api_urls(None) == ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot")
    assert api_urls("https://tg.example.gov.cn/") == ("https://tg.example.gov.cn/bot",
                                                      "https://tg.example.gov.cn/file/bot")
    assert api_urls("http://10.0.0.5:8081/bot") == ("http://10.0.0.5:8081/bot",
                                                    "http://10.0.0.5:8081/file/bot")


def test_buttons_too_long_for_telegram_become_typed_commands() -> None:
    markup, typed = keyboard((Button("确认收到", "/incident ack INC-20261123-001"),
                              Button("驳回", "/reply reject R-1 " + "理由" * 20)))
    assert markup is not None and [b.text for row in markup.inline_keyboard for b in row] == ["确认收到"]
    assert [b.label for b in typed] == ["驳回"]


def test_missing_token_is_a_clear_chinese_error(tmp_path: Path) -> None:
    from core.errors import AdapterError
    with pytest.raises(AdapterError, match="DUTYBOT_TELEGRAM_TOKEN"):
        TelegramAdapter(load_settings(None, env={}).telegram)


async def test_a_refused_token_stops_the_start(engine: Engine, clock: FakeClock) -> None:
    from core.errors import AdapterError
    fake = FakeBotApi("999:OTHER")
    async with serve_asgi(fake.app) as url:
        adapter = TelegramAdapter(_settings(url).telegram)
        app = App(_settings(url), clock=clock, adapter=adapter, engine=engine)
        with pytest.raises(AdapterError, match="拒绝了机器人令牌"):
            await app.run(asyncio.Event())


async def test_dutybot_run_with_only_the_two_environment_variables(tmp_path: Path) -> None:
    """``dutybot run --adapter telegram`` on a fresh folder: no config file, the embedded
    database is created, and the bot answers."""
    import io

    from bot.runner import run_adapter

    fake = FakeBotApi(TOKEN)
    async with serve_asgi(fake.app) as url:
        settings = load_settings(None, env={"DUTYBOT_TELEGRAM_TOKEN": TOKEN,
                                            "DUTYBOT_TELEGRAM_BASE_URL": url})
        out, stop = io.StringIO(), asyncio.Event()
        task = asyncio.create_task(run_adapter(settings, "telegram", out=out, stop=stop))
        fake.push_message(555, 555, "/help", first_name="新同事")
        await eventually(lambda: fake.sent_to(555))
        stop.set()
        fake.close()
        assert await asyncio.wait_for(task, timeout=10) == 0
    assert (Path.cwd() / "dutybot.db").exists()
    assert "/bind" in (fake.sent_to(555)[0].text or "")
    assert "值班机器人已启动（Telegram，长轮询模式）" in out.getvalue()
    assert "值班机器人已停止" in out.getvalue()


def _membership(fake: FakeBotApi, chat: dict[str, object], status: str, old: str) -> dict[str, object]:
    def member(state: str) -> dict[str, object]:
        return {"user": fake.bot_user, "status": state, **({"until_date": 0} if state == "kicked" else {})}
    return {"my_chat_member": {"chat": chat, "from": {"id": WANG, "is_bot": False, "first_name": "王芳"},
                               "date": 1764032400, "old_chat_member": member(old),
                               "new_chat_member": member(status)}}


async def test_blocking_the_bot_is_known_at_once_and_unblocking_clears_it(tg: Harness) -> None:
    private = {"id": WANG, "type": "private", "first_name": "王芳"}
    tg.fake.push_update(_membership(tg.fake, private, "kicked", "member"))
    await eventually(lambda: any("已屏蔽机器人" in (r.text or "") for r in tg.fake.sent_to(ZHANG)))
    notice = next(r.text for r in tg.fake.sent_to(ZHANG) if "已屏蔽机器人" in (r.text or ""))
    assert "王芳" in (notice or "")
    with Session(tg.engine) as session:
        ident = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == str(WANG))).one()
        assert ident.blocked_at is not None
    tg.fake.push_update(_membership(tg.fake, private, "member", "kicked"))

    def unblocked() -> bool:
        with Session(tg.engine) as session:
            ident = session.exec(select(ChatIdentity).where(ChatIdentity.external_id == str(WANG))).one()
            return ident.blocked_at is None
    await eventually(unblocked)


async def test_removed_from_the_duty_group_tells_the_admins(tg: Harness) -> None:
    group = {"id": GROUP, "type": "supergroup", "title": "值班群"}
    tg.fake.push_update(_membership(tg.fake, group, "left", "member"))
    await eventually(lambda: any("移出群聊" in (r.text or "") for r in tg.fake.sent_to(ZHANG)))
    assert str(GROUP) in next(r.text or "" for r in tg.fake.sent_to(ZHANG) if "移出群聊" in (r.text or ""))


async def test_webhook_update_not_stored_is_answered_500_and_handled_on_redelivery(
        hooked: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing lost (issue 16 item 6): a full disk refuses the update's commit; Telegram
    gets 500 (so it delivers the update again), the person one apology, and the
    redelivery is handled once."""
    from tests.bot.test_store_failure import fail_commits
    update = FakeBotApi.update_json(hooked.fake.push_message(WANG, WANG, "/whoami"))
    hook, good = hooked.url + "/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
    fail_commits(monkeypatch)
    async with httpx.AsyncClient() as client:
        first = await client.post(hook, json=update, headers=good)
        assert first.status_code == 500
        await eventually(lambda: any("未能保存" in (r.text or "") for r in hooked.fake.sent_to(WANG)))
        again = await client.post(hook, json=update, headers=good)
        assert again.status_code == 200
    await eventually(lambda: any((r.text or "").startswith("姓名：王芳") for r in hooked.fake.sent_to(WANG)))
    texts = [r.text or "" for r in hooked.fake.sent_to(WANG)]
    assert sum("未能保存" in t for t in texts) == 1 and sum(t.startswith("姓名：王芳") for t in texts) == 1
