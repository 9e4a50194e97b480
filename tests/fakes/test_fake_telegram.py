"""The fake Bot API server, exercised with python-telegram-bot's real ``Bot`` over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import pytest
from telegram import (  # noqa: TID251 - tests of the Telegram fake talk through the real SDK
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.error import (  # noqa: TID251
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)

from tests.fakes.fake_telegram import FakeBotApi, parse_html, parse_markdown_v2
from tests.fakes.serve import serve_asgi

# PTB warns about ``RetryAfter.retry_after`` becoming a timedelta (unless PTB_TIMEDELTA=1),
# even while building the exception; that is PTB's business, not the fake's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

USER = 1001
GROUP = -1001234567890


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@contextlib.asynccontextmanager
async def running(fake: FakeBotApi) -> AsyncIterator[tuple[Bot, str]]:
    """Serve ``fake`` and yield an initialized PTB ``Bot`` pointed at it, and the base URL."""
    async with serve_asgi(fake.app) as url:
        bot = Bot(fake.token, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot")
        try:
            async with bot:
                yield bot, url
        finally:
            fake.close()


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Yield to the event loop until ``condition()`` holds (synchronisation, not timing)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with running(fake) as (bot, _url):
        yield bot


@pytest.fixture
async def base_url(fake: FakeBotApi, bot: Bot) -> str:
    return bot.base_url.removesuffix("/bot" + fake.token)


# ---------------------------------------------------------------- basics


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123
    assert me.is_bot
    assert me.username == "dutybot_test_bot"
    assert me.can_join_groups is True
    assert bot.username == "dutybot_test_bot"


async def test_wrong_token_is_unauthorized(fake: FakeBotApi) -> None:
    async with serve_asgi(fake.app) as url:
        bot = Bot("999:WRONG", base_url=f"{url}/bot")
        try:
            with pytest.raises(InvalidToken):
                await bot.initialize()
        finally:
            await bot.shutdown()  # initialize() opened the HTTP clients before failing
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{url}/bot999:WRONG/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_is_404(fake: FakeBotApi, base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base_url}/bot{fake.token}/sendTelepathy")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_json_and_form_bodies_are_both_accepted(fake: FakeBotApi, base_url: str) -> None:
    keyboard = {"inline_keyboard": [[{"text": "确认", "callback_data": "ack"}]]}
    async with httpx.AsyncClient(base_url=f"{base_url}/bot{fake.token}") as client:
        by_json = await client.post("/sendMessage", json={
            "chat_id": USER, "text": "123", "reply_markup": json.dumps(keyboard)})
        by_form = await client.post("/sendmessage", data={
            "chat_id": str(USER), "text": "true", "reply_markup": json.dumps(keyboard)})
        by_query = await client.get("/getMe")
    assert by_json.json()["result"]["text"] == "123"
    assert by_json.json()["result"]["reply_markup"] == keyboard
    assert by_form.json()["result"]["text"] == "true"  # text stays a string
    assert by_form.json()["result"]["reply_markup"] == keyboard
    assert by_form.json()["result"]["message_id"] == 2
    assert by_query.json()["ok"] is True
    assert [method for method, _ in fake.calls][-3:] == ["sendMessage", "sendMessage", "getMe"]


# ---------------------------------------------------------------- sending and editing


async def test_send_message_with_inline_keyboard(fake: FakeBotApi, bot: Bot) -> None:
    fake.add_chat(GROUP, "supergroup", "值班群")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("确认", callback_data="ack:1")]])

    first = await bot.send_message(GROUP, "今日值班：王芳", reply_markup=markup)
    second = await bot.send_message(GROUP, "第二条")
    private = await bot.send_message(USER, "私聊")

    assert first.chat.id == GROUP
    assert first.chat.type == "supergroup"
    assert first.chat.title == "值班群"
    assert first.from_user is not None and first.from_user.username == "dutybot_test_bot"
    assert first.text == "今日值班：王芳"
    assert first.reply_markup == markup
    assert second.message_id == first.message_id + 1
    assert private.chat.type == "private"
    assert private.message_id == 1  # message ids count per chat

    stored = fake.messages[(GROUP, first.message_id)]
    assert stored["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ack:1"
    record = fake.sent[0]
    assert (record.method, record.chat_id, record.text, record.message_id) == (
        "sendMessage", GROUP, "今日值班：王芳", first.message_id)
    assert record.reply_markup == stored["reply_markup"]
    assert [r.text for r in fake.sent_to(USER)] == ["私聊"]


async def test_edit_message_text_and_not_modified(fake: FakeBotApi, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("确认", callback_data="ack:1")]])
    sent = await bot.send_message(USER, "待确认", reply_markup=markup)

    edited = await bot.edit_message_text("已确认", chat_id=USER, message_id=sent.message_id,
                                         reply_markup=markup)
    assert isinstance(edited, type(sent))
    assert edited.text == "已确认"
    assert fake.messages[(USER, sent.message_id)]["text"] == "已确认"
    assert [r.method for r in fake.sent] == ["sendMessage", "editMessageText"]

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("已确认", chat_id=USER, message_id=sent.message_id,
                                    reply_markup=markup)
    # Editing without a keyboard removes it, as on Telegram.
    await bot.edit_message_text("已确认", chat_id=USER, message_id=sent.message_id)
    assert "reply_markup" not in fake.messages[(USER, sent.message_id)]

    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)
    assert len(fake.sent) == 3  # failed edits are not recorded


async def test_edit_message_reply_markup(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "卡片")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("撤回", callback_data="undo")]])
    edited = await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=markup)
    assert isinstance(edited, type(sent)) and edited.reply_markup == markup
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=markup)


async def test_text_and_keyboard_are_checked(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "长" * 4097)
    too_long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="值" * 22)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=too_long_data)
    trimmed = await bot.send_message(USER, "  你好 \n")
    assert trimmed.text == "你好"


async def test_parse_modes(bot: Bot) -> None:
    html = await bot.send_message(USER, "<b>值班</b> &lt;表&gt;", parse_mode="HTML")
    assert html.text == "值班 <表>"
    assert html.entities == (MessageEntity(MessageEntity.BOLD, 0, 2),)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "a < b", parse_mode="HTML")

    md = await bot.send_message(USER, r"*周报* 3\.5 分", parse_mode="MarkdownV2")
    assert md.text == "周报 3.5 分"
    assert md.entities == (MessageEntity(MessageEntity.BOLD, 0, 2),)
    with pytest.raises(BadRequest, match=r"(?i)Character '.' is reserved"):
        await bot.send_message(USER, "3.5 分", parse_mode="MarkdownV2")


def test_formatting_parsers() -> None:
    assert parse_html('<a href="https://x.cn/?a=1&amp;b=2">链接</a>') == (
        "链接", [{"type": "text_link", "offset": 0, "length": 2, "url": "https://x.cn/?a=1&b=2"}])
    assert parse_html("<pre><code class=\"language-py\">x</code></pre>") == (
        "x", [{"type": "pre", "offset": 0, "length": 1, "language": "py"}])
    assert parse_markdown_v2("_斜_ __下__ `a.b` [链](https://x.cn)") == (
        "斜 下 a.b 链",
        [
            {"type": "italic", "offset": 0, "length": 1},
            {"type": "underline", "offset": 2, "length": 1},
            {"type": "code", "offset": 4, "length": 3},
            {"type": "text_link", "offset": 8, "length": 1, "url": "https://x.cn"},
        ],
    )
    assert parse_markdown_v2(">引用\n正文")[1] == [{"type": "blockquote", "offset": 0, "length": 2}]
    # Offsets count UTF-16 code units.
    assert parse_markdown_v2("😀*b*")[1] == [{"type": "bold", "offset": 2, "length": 1}]


async def test_send_document_upload_and_download(fake: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_document(USER, document=b"roster", filename="roster.xlsx",
                                   caption="本周排班")
    assert sent.document is not None and sent.document.file_name == "roster.xlsx"
    assert sent.caption == "本周排班"
    file = await bot.get_file(sent.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"roster"


# ---------------------------------------------------------------- receiving


async def test_long_poll_returns_as_soon_as_an_update_is_pushed(fake: FakeBotApi, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    polling = asyncio.create_task(bot.get_updates(timeout=5))
    await until(lambda: fake.waiting_pollers == 1)

    pushed_at = loop.time()
    pushed = fake.push_message(USER, USER, "/start 值班")
    updates = await asyncio.wait_for(polling, timeout=4)

    assert loop.time() - pushed_at < 2  # far less than the 5 s poll timeout
    assert [u.update_id for u in updates] == [pushed["update_id"]]
    message = updates[0].message
    assert message is not None
    assert message.text == "/start 值班"
    assert message.chat.type == "private"
    assert message.from_user is not None and message.from_user.first_name == "王芳"
    assert message.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)


async def test_long_poll_times_out_empty(fake: FakeBotApi, bot: Bot) -> None:
    assert await bot.get_updates(timeout=0) == ()
    assert fake.waiting_pollers == 0


async def test_offset_confirms_older_updates(fake: FakeBotApi, bot: Bot) -> None:
    ids = [fake.push_message(USER, USER, f"第{i}条")["update_id"] for i in range(3)]
    assert [u.update_id for u in await bot.get_updates()] == ids
    assert [u.update_id for u in await bot.get_updates()] == ids  # nothing confirmed yet

    assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert [u["update_id"] for u in fake.pending] == ids[1:]
    assert await bot.get_updates(offset=ids[-1] + 1) == ()
    assert fake.pending == []

    # A repeated update id (redelivery) is allowed; auto ids continue after the highest.
    fake.push_message(USER, USER, "again", update_id=ids[-1] + 1)
    fake.push_message(USER, USER, "again", update_id=ids[-1] + 1)
    nxt = fake.push_message(USER, USER, "next")["update_id"]
    assert [u.update_id for u in await bot.get_updates(offset=ids[-1] + 1)] == [
        ids[-1] + 1, ids[-1] + 1, nxt]


async def test_group_messages_and_migration(fake: FakeBotApi, bot: Bot) -> None:
    fake.push_message(-4001, USER, "/duty@dutybot_test_bot", chat_type="group")
    fake.push_message(-4001, USER, "", migrate_to_chat_id=GROUP)
    updates = await bot.get_updates()
    first, migrated = (u.message for u in updates)
    assert first is not None and first.chat.type == "group" and first.chat.title
    assert first.entities[0].type == MessageEntity.BOT_COMMAND
    assert first.entities[0].length == len("/duty@dutybot_test_bot")
    assert migrated is not None and migrated.migrate_to_chat_id == GROUP

    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(-4001, "旧群")
    assert caught.value.new_chat_id == GROUP
    assert (await bot.send_message(GROUP, "新群")).chat.type == "supergroup"


async def test_inbound_files(fake: FakeBotApi, bot: Bot) -> None:
    fake.add_file("DOC1", b"%PDF-1.4", "documents/通报.pdf")
    fake.add_file("PIC1", b"\x89PNG")
    fake.push_message(USER, USER, "附件", document="DOC1")
    fake.push_message(USER, USER, "", photo="PIC1")
    doc_update, photo_update = await bot.get_updates()
    assert doc_update.message is not None and photo_update.message is not None
    document = doc_update.message.document
    assert document is not None and document.file_name == "通报.pdf"
    assert document.mime_type == "application/pdf"
    assert doc_update.message.caption == "附件"
    file = await bot.get_file(document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"%PDF-1.4"
    assert photo_update.message.photo[-1].file_id == "PIC1"
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_callback_query_is_answered_once(fake: FakeBotApi, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("确认", callback_data="ack:7")]])
    sent = await bot.send_message(USER, "请确认", reply_markup=markup)
    fake.push_callback(USER, USER, sent.message_id, "ack:7")
    await bot.edit_message_text("已确认", chat_id=USER, message_id=sent.message_id)

    (update,) = await bot.get_updates()
    query = update.callback_query
    assert query is not None and query.data == "ack:7"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.message.chat.id == USER
    assert query.message.text == "请确认"  # the message as it was when pressed

    assert await bot.answer_callback_query(query.id, text="已记录") is True
    assert fake.callback_answers == [{"callback_query_id": query.id, "text": "已记录"}]
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query("12345")


async def test_update_json_round_trips(fake: FakeBotApi, bot: Bot) -> None:
    update = fake.push_message(GROUP, USER, "/help", chat_type="supergroup")
    body = fake.update_json(update)
    assert json.loads(json.dumps(body)) == update
    parsed = Update.de_json(body, bot)
    assert parsed.message is not None and parsed.message.chat.id == GROUP


async def test_concurrent_get_updates_conflict(fake: FakeBotApi, bot: Bot, base_url: str) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=5))
    await until(lambda: fake.waiting_pollers == 1)
    async with httpx.AsyncClient() as client:
        other = await client.post(f"{base_url}/bot{fake.token}/getUpdates", data={"timeout": "0"})
    assert other.json() == {"ok": True, "result": []}
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
        await asyncio.wait_for(polling, timeout=4)


async def test_abandoned_long_poll_stops_waiting(fake: FakeBotApi, bot: Bot, base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(
            client.post(f"{base_url}/bot{fake.token}/getUpdates", data={"timeout": "30"}))
        await until(lambda: fake.waiting_pollers == 1)
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
    await until(lambda: fake.waiting_pollers == 0)


# ---------------------------------------------------------------- configuration calls


async def test_commands_per_scope(fake: FakeBotApi, bot: Bot) -> None:
    group = [BotCommand("duty", "今日值班"), BotCommand("incident", "上报舆情")]
    await bot.set_my_commands(group, scope=BotCommandScopeAllGroupChats())
    await bot.set_my_commands([BotCommand("start", "开始")], scope=BotCommandScopeAllPrivateChats())

    assert fake.commands["all_group_chats"]["commands"] == [
        {"command": "duty", "description": "今日值班"},
        {"command": "incident", "description": "上报舆情"},
    ]
    assert fake.commands["all_group_chats"]["scope"] == {"type": "all_group_chats"}
    assert await bot.get_my_commands(scope=BotCommandScopeAllGroupChats()) == tuple(group)
    assert await bot.get_my_commands() == ()

    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("值班", "中文命令不行")])
    await bot.delete_my_commands(scope=BotCommandScopeAllGroupChats())
    assert "all_group_chats" not in fake.commands


async def test_webhook_blocks_polling(fake: FakeBotApi, bot: Bot) -> None:
    url = "https://dutybot.example.cn/telegram/webhook"
    await bot.set_webhook(url, secret_token="s3cret_token-1", allowed_updates=["message"])
    assert fake.webhook["url"] == url
    assert fake.webhook["secret_token"] == "s3cret_token-1"
    assert fake.webhook["allowed_updates"] == ["message"]
    fake.push_message(USER, USER, "hi")
    info = await bot.get_webhook_info()
    assert info.url == url and info.pending_update_count == 1

    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)HTTPS URL"):
        await bot.set_webhook("http://dutybot.example.cn/hook")
    with pytest.raises(BadRequest, match=r"(?i)ports 80, 88, 443 or 8443"):
        await bot.set_webhook("https://dutybot.example.cn:8080/hook")

    await bot.delete_webhook(drop_pending_updates=True)
    assert fake.webhook == {}
    assert await bot.get_updates() == ()


async def test_send_chat_action(fake: FakeBotApi, bot: Bot) -> None:
    assert await bot.send_chat_action(USER, "typing") is True
    assert fake.calls[-1] == ("sendChatAction", {"chat_id": USER, "action": "typing"})


# ---------------------------------------------------------------- failure injection


async def test_injected_429_raises_retry_after(fake: FakeBotApi, bot: Bot) -> None:
    fake.fail_next("sendMessage", status=429, description="Too Many Requests: retry after 3",
                   parameters={"retry_after": 3})
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "x")
    assert retry_seconds(caught.value) == 3
    assert (await bot.send_message(USER, "x")).text == "x"  # only the next call failed
    assert len(fake.sent) == 1


async def test_injected_403_and_server_errors(fake: FakeBotApi, bot: Bot) -> None:
    fake.fail_next("sendMessage", USER, status=403,
                   description="Forbidden: bot was blocked by the user", times=None)
    fake.fail_next("editMessageText", status=502, description="Bad Gateway", times=2)
    with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
        await bot.send_message(USER, "x")
    with pytest.raises(Forbidden):
        await bot.send_message(USER, "x")
    other = await bot.send_message(2002, "另一个人")
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.edit_message_text("y", chat_id=2002, message_id=other.message_id)
    await bot.edit_message_text("y", chat_id=2002, message_id=other.message_id)
    fake.clear_failures()
    await bot.send_message(USER, "unblocked")


async def test_injected_migration(fake: FakeBotApi, bot: Bot) -> None:
    fake.fail_next("sendMessage", -4002, status=400,
                   description="Bad Request: group chat was upgraded to a supergroup chat",
                   parameters={"migrate_to_chat_id": -100123})
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(-4002, "x")
    assert caught.value.new_chat_id == -100123


# ---------------------------------------------------------------- rate limits


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def limited(clock: FakeTime) -> FakeBotApi:
    return FakeBotApi(enforce_limits=True, time_source=clock)


async def test_one_message_per_second_per_chat(limited: FakeBotApi, clock: FakeTime) -> None:
    async with running(limited) as (bot, _url):
        await bot.send_message(USER, "1")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "2")
        assert retry_seconds(caught.value) == 1
        assert limited.too_many == 1 and limited.too_many_by_chat[USER] == 1
        await bot.send_message(2002, "another chat is not affected")

        clock.advance(0.5)
        with pytest.raises(RetryAfter):  # still blocked after the 429
            await bot.send_message(USER, "2")
        assert limited.blocked_hits == 1
        clock.advance(0.5)
        await bot.send_message(USER, "2")
        assert [r.at for r in limited.sent_to(USER)] == [1000.0, 1001.0]


async def test_twenty_messages_per_minute_per_group(limited: FakeBotApi, clock: FakeTime) -> None:
    async with running(limited) as (bot, _url):
        start = clock.now
        for i in range(20):
            await bot.send_message(GROUP, f"第{i + 1}条")
            clock.advance(1.1)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(GROUP, "第21条")
        assert retry_seconds(caught.value) == 38  # the first send leaves the window at +60 s
        assert clock.now - start == pytest.approx(22)
        assert limited.too_many_by_chat[GROUP] == 1
        clock.advance(37)
        with pytest.raises(RetryAfter):
            await bot.send_message(GROUP, "第21条")
        clock.advance(1)
        await bot.send_message(GROUP, "第21条")


async def test_thirty_messages_per_second_overall(limited: FakeBotApi, clock: FakeTime) -> None:
    async with running(limited) as (bot, _url):
        for chat in range(1, 31):
            await bot.send_message(chat, "广播")
        with pytest.raises(RetryAfter):
            await bot.send_message(31, "广播")
        clock.advance(1.0)
        await bot.send_message(32, "广播")


async def test_injected_retry_after_blocks_the_chat(limited: FakeBotApi, clock: FakeTime) -> None:
    async with running(limited) as (bot, _url):
        limited.fail_next("sendMessage", USER, status=429, description="Too Many Requests: "
                          "retry after 5", parameters={"retry_after": 5})
        with pytest.raises(RetryAfter):
            await bot.send_message(USER, "x")
        clock.advance(4)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "x")
        assert retry_seconds(caught.value) == 1
        clock.advance(1)
        await bot.send_message(USER, "x")
