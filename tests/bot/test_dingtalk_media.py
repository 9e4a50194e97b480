"""Pictures and files sent to the DingTalk robot become incident evidence (issue 14, item 3).

Against the fake DingTalk on loopback, as in :mod:`tests.bot.test_dingtalk_adapter`:
``messageFiles/download`` hands out a signed link on the fake, which serves the bytes.
"""

# Fixtures come from tests.bot.test_dingtalk_adapter (imported below), so a test parameter with a
# fixture's name is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.dingtalk import DingTalkAdapter
from bot.app import App
from bot.held_media import sender_key
from core.clock import FakeClock
from incidents.models import Evidence
from tests.bot.test_dingtalk_adapter import (  # noqa: F401  (fixtures)
    GROUP,
    base_url,
    bind_person,
    callback_app,
    eventually,
    fake,
    settings_for,
    texts,
)
from tests.bot.test_no_english import english_words
from tests.fakes.fake_dingtalk import FakeDingTalk

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.4 " + b"1" * 5000
STAFF = "staff001"


@pytest.fixture
async def bot(base_url: str, engine: Engine, clock: FakeClock) -> AsyncIterator[tuple[App, DingTalkAdapter]]:
    """The app on DingTalk in callback mode, fed through ``deliver`` (what both the
    Stream client and the callback route call)."""
    settings = settings_for(base_url, "callback")
    adapter = DingTalkAdapter(settings.dingtalk, clock=clock, stop_grace_seconds=0.5)
    app = App(settings, clock=clock, adapter=adapter, engine=engine)
    await adapter.start(app.handle)
    bind_person(engine, clock)
    try:
        yield app, adapter
    finally:
        await adapter.stop()


class Chat:
    def __init__(self, app: App, adapter: DingTalkAdapter, fake: FakeDingTalk) -> None:
        self.app, self.adapter, self.fake = app, adapter, fake

    def got(self, chat: str = STAFF) -> list[str]:
        return texts(self.fake.session_sent, chat)

    async def deliver(self, data: dict[str, Any]) -> None:
        await self.adapter.deliver(data)
        await self.app.drain()

    async def say(self, text: str, chat: str = STAFF) -> str:
        await self.deliver(self.fake.bot_message(text, staff_id=STAFF))
        return self.got(chat)[-1]

    async def picture(self, code: str, *, group: str | None = None, msg_id: str | None = None) -> None:
        await self.deliver(self.fake.bot_message("", staff_id=STAFF, group=group, msg_id=msg_id,
                                                 msgtype="picture",
                                                 content={"downloadCode": code,
                                                          "pictureDownloadCode": f"p-{code}"}))

    async def file(self, code: str, name: str) -> None:
        await self.deliver(self.fake.bot_message("", staff_id=STAFF, msgtype="file", content={
            "downloadCode": code, "fileName": name, "spaceId": "1", "fileId": "f1"}))

    async def new_incident(self) -> str:
        reply = await self.say("/incident new 违法有害信息 https://www.example.gov.cn/hd/msg/88 留言板出现赌博广告")
        found = re.search(r"INC-\d{8}-\d{3}", "\n".join(self.got()))
        assert found, reply
        return found.group(0)

    def held(self) -> int:
        """What the dispatcher holds for the staff member (in any chat)."""
        return self.app.dispatcher.held.count(sender_key("dingtalk", STAFF))


@pytest.fixture
def chat(bot: tuple[App, DingTalkAdapter], fake: FakeDingTalk) -> Chat:
    return Chat(*bot, fake)


def evidence_rows(engine: Engine) -> list[Evidence]:
    with Session(engine) as session:
        return list(session.exec(select(Evidence).order_by(Evidence.id)))  # type: ignore[arg-type]


def stored(number: str) -> list[bytes]:
    folder = Path("evidence") / number   # the tests run in tmp_path (conftest)
    return [p.read_bytes() for p in sorted(folder.iterdir())] if folder.exists() else []


# ------------------------------------------------------------------ the user flow


async def test_a_picture_then_the_evidence_command_keeps_it_and_unlocks_the_step(
        chat: Chat, fake: FakeDingTalk, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    number = await chat.new_incident()
    assert "须先保全证据" in await chat.say(f"/incident done {number} 1")

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="httpx")   # `dutybot run` quiets it process-wide
    await chat.picture(fake.add_file(PNG, content_type="image/png"))
    hint = chat.got()[-1]
    assert hint.startswith("已收到图片") and "/incident evidence 事件编号 说明" in hint
    assert english_words(hint) == []
    download, link = fake.file_calls()
    assert download["json"]["robotCode"] == "dingrobot001" and download["json"]["downloadCode"] == "dlc-1"
    assert download["headers"]["x-acs-dingtalk-access-token"].startswith("tok-")
    assert "x-acs-dingtalk-access-token" not in link["headers"]   # the token stays with the API
    assert "Signature=sig" not in caplog.text and "Signature=***" in caplog.text
    assert evidence_rows(engine) == []

    kept = await chat.say(f"/incident evidence {number} 留言页截图")
    digest = hashlib.sha256(PNG).hexdigest()
    assert f"已为 {number} 保全证据 1 份" in kept and f"SHA-256 {digest[:8]}" in kept
    [row] = evidence_rows(engine)
    assert (row.kind, row.content_type, row.sha256, row.size, row.text) == (
        "photo", "image/png", digest, len(PNG), "留言页截图")
    assert row.filename is not None and row.filename.startswith("picture-") and row.filename.endswith(".png")
    assert stored(number) == [PNG]
    assert "已完成" in await chat.say(f"/incident done {number} 1")


async def test_through_the_http_callback(callback_app: tuple[App, DingTalkAdapter, str],
                                         fake: FakeDingTalk, engine: Engine, clock: FakeClock) -> None:
    app, _, url = callback_app
    bind_person(engine, clock)
    data = fake.bot_message("", staff_id=STAFF, msgtype="picture",
                            content={"downloadCode": fake.add_file(PNG)})
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=json.dumps(data), headers=fake.callback_headers())
    assert response.status_code == 200
    await eventually(lambda: bool(texts(fake.session_sent, STAFF)), step=app.drain, what="the hint")
    assert texts(fake.session_sent, STAFF)[-1].startswith("已收到图片")
    assert app.dispatcher.held.count(sender_key("dingtalk", STAFF)) == 1


async def test_a_file_and_a_group_rich_text_with_pictures(chat: Chat, fake: FakeDingTalk,
                                                          engine: Engine) -> None:
    number = await chat.new_incident()
    await chat.file(fake.add_file(PDF, content_type="application/pdf", chunked=True), "网信办通报.pdf")
    assert chat.got()[-1].startswith("已收到文件")
    kept = await chat.say(f"事件 证据 {number} 通报原件")
    assert "保全证据 1 份" in kept and "网信办通报.pdf" in kept

    # In a group the robot hears a rich-text message that @-mentions it: its pictures go
    # with the command written in it.
    first, second = fake.add_file(PNG), fake.add_file(PNG[::-1], content_type="image/jpeg")
    await chat.deliver(fake.bot_message("", staff_id=STAFF, group=GROUP, msgtype="richText", content={
        "richText": [{"text": f" /incident evidence {number} 群内截图"},
                     {"type": "picture", "downloadCode": first, "pictureDownloadCode": "x"},
                     {"text": "\n"}, {"type": "picture", "downloadCode": second}]}))
    assert "保全证据 2 份" in chat.got(GROUP)[-1]
    rows = evidence_rows(engine)
    assert [(r.kind, r.filename, r.sha256) for r in rows] == [
        ("file", "网信办通报.pdf", hashlib.sha256(PDF).hexdigest()),
        ("photo", rows[1].filename, hashlib.sha256(PNG).hexdigest()),
        ("photo", rows[2].filename, hashlib.sha256(PNG[::-1]).hexdigest())]
    assert rows[2].filename is not None and rows[2].filename.endswith("-2.jpg")
    assert stored(number) == [PDF, PNG, PNG[::-1]]
    assert chat.held() == 0


async def test_held_pictures_expire_and_a_redelivery_is_not_held_twice(chat: Chat, fake: FakeDingTalk,
                                                                      clock: FakeClock,
                                                                      engine: Engine) -> None:
    number = await chat.new_incident()
    code = fake.add_file(PNG)
    await chat.picture(code, msg_id="msgPic1")
    await chat.picture(code, msg_id="msgPic1")   # the gateway repeats the frame
    assert chat.held() == 1 and len(chat.got()) == 2   # one hint
    assert "王芳" in await chat.say("/whoami")   # other commands leave them alone
    assert chat.held() == 1
    clock.advance(timedelta(minutes=10))
    assert "文字记录" in await chat.say(f"/incident evidence {number} 截图")
    assert [r.kind for r in evidence_rows(engine)] == ["text"]


# ------------------------------------------------------------------ refusals and failures


async def test_a_bad_download_code_is_explained_and_nothing_is_kept(
        chat: Chat, fake: FakeDingTalk, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    number = await chat.new_incident()
    caplog.set_level(logging.INFO)
    await chat.picture("expired-code")
    reply = chat.got()[-1]
    assert reply == "图片下载失败：文件无效或已过期，请重新发送。" and english_words(reply) == []
    assert "invalidParameter.downloadCode" in caplog.text and "tok-" not in caplog.text
    assert chat.held() == 0

    fake.link_ttl = 0   # the link has expired before it is fetched: OSS answers 403
    await chat.picture(fake.add_file(PNG))
    assert chat.got()[-1] == "图片下载失败：文件无效或已过期，请重新发送。"
    fake.link_ttl = 3600
    fake.fail_next("/v1.0/robot/messageFiles/download", status=503)
    await chat.file(fake.add_file(PDF), "a.pdf")
    assert chat.got()[-1] == "文件下载失败：网络或钉钉暂时不可用，请重新发送。"

    assert chat.held() == 0
    assert "请附上网址" in await chat.say(f"/incident evidence {number}")
    assert evidence_rows(engine) == [] and stored(number) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "streamed"])
async def test_an_oversize_file_is_refused_without_reading_it(chat: Chat, fake: FakeDingTalk,
                                                             engine: Engine, chunked: bool) -> None:
    number = await chat.new_incident()
    chat.adapter.max_media_bytes = 10_000
    await chat.file(fake.add_file(b"x" * 50_000, content_type="application/zip", chunked=chunked), "big.zip")
    reply = chat.got()[-1]
    assert reply.startswith("文件过大（超过 10 KB），未保存") and english_words(reply) == []
    assert chat.held() == 0
    await chat.say(f"/incident evidence {number} 压缩包")
    assert [r.kind for r in evidence_rows(engine)] == ["text"] and stored(number) == []


async def test_a_video_gets_a_hint(chat: Chat, fake: FakeDingTalk) -> None:
    await chat.deliver(fake.bot_message("", staff_id=STAFF, msgtype="video",
                                        content={"downloadCode": "v1", "videoType": "mp4"}))
    reply = chat.got()[-1]
    assert "暂不支持把语音或视频保存为证据" in reply and english_words(reply) == []
    assert fake.file_calls() == []
