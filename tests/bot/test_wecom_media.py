"""Pictures and files sent to the WeCom app become incident evidence (issue 14, item 3).

End to end on loopback, as in :mod:`tests.bot.test_wecom_adapter`: encrypted callbacks in,
``media/get`` served by the fake WeCom, the evidence stored by the real handler.
"""

# Fixtures come from tests.bot.test_wecom_adapter (imported below), so a test parameter with a
# fixture's name is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.adapters.media import filename_from
from bot.adapters.wecom import WeComAdapter
from bot.config import load_settings
from bot.held_media import HeldMedia, sender_key
from core.clock import FakeClock
from core.messages import Attachment
from incidents.models import Evidence
from tests.bot.test_no_english import english_words
from tests.bot.test_wecom_adapter import (  # noqa: F401  (fixtures)
    AGENT,
    CORP,
    Rig,
    api_url,
    cdata,
    fake,
    http,
    rig,
    wecom_env,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.4 \xe9\x80\x9a\xe6\x8a\xa5" + b"0" * 3000


def media_xml(user: str, msg_type: str, media_id: str, msg_id: int, created: int, *,
              file_name: str | None = None) -> str:
    extra = f"<PicUrl>{cdata('https://wework.qpic.cn/x/0')}</PicUrl>" if msg_type == "image" else ""
    if file_name is not None:
        extra += f"<FileName>{cdata(file_name)}</FileName>"
    return (f"<xml><ToUserName>{cdata(CORP)}</ToUserName><FromUserName>{cdata(user)}"
            f"</FromUserName><CreateTime>{created}</CreateTime><MsgType>{cdata(msg_type)}"
            f"</MsgType>{extra}<MediaId>{cdata(media_id)}</MediaId><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{AGENT}</AgentID></xml>")


async def send_media(rig: Rig, user: str, msg_type: str, media_id: str,
                     file_name: str | None = None, msg_id: int | None = None) -> None:
    mid = next(rig.msg_ids) if msg_id is None else msg_id
    response = await rig.post(media_xml(user, msg_type, media_id, mid, rig.now(),
                                        file_name=file_name))
    assert response.status_code == 200 and response.content == b""


async def say(rig: Rig, user: str, text: str) -> str:
    """Send ``text``; the last message ``user`` got after it was handled."""
    await rig.say(user, text)
    await rig.settle()
    return rig.texts(user)[-1]


async def new_incident(rig: Rig) -> str:
    reply = await say(rig, "wangfang", "/incident new 违法有害信息 https://www.example.gov.cn/hd/msg/88 "
                                      "留言板出现赌博广告")
    found = re.search(r"INC-\d{8}-\d{3}", "\n".join(rig.texts("wangfang")))
    assert found, reply
    return found.group(0)


def evidence_rows(rig: Rig) -> list[Evidence]:
    with Session(rig.engine) as session:
        return list(session.exec(select(Evidence).order_by(Evidence.id)))  # type: ignore[arg-type]


def held(rig: Rig, user: str = "wangfang") -> int:
    """How many pictures and files the dispatcher holds for ``user``."""
    return rig.app.dispatcher.held.count(sender_key("wecom", user))


def held_files() -> list[Path]:
    folder = Path("evidence") / "held"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def stored_files(number: str) -> list[Path]:
    folder = Path("evidence") / number   # the tests run in tmp_path (conftest)
    return sorted(folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ the user flow


async def test_a_picture_then_the_evidence_command_keeps_it_and_unlocks_the_step(rig: Rig) -> None:
    number = await new_incident(rig)
    assert "须先保全证据" in await say(rig, "wangfang", f"/incident done {number} 1")

    media_id = rig.fake.add_media(PNG, content_type="image/png", filename="shot.png")
    await send_media(rig, "wangfang", "image", media_id)
    await rig.settle()
    hint = rig.texts("wangfang")[-1]
    assert hint.startswith("已收到图片") and "/incident evidence 事件编号 说明" in hint
    assert english_words(hint) == []
    [call] = rig.fake.media_calls()
    assert call["params"]["media_id"] == media_id and call["params"]["access_token"].startswith("tok-")
    assert evidence_rows(rig) == []   # nothing is kept before the person says where

    kept = await say(rig, "wangfang", f"/incident evidence {number} 留言页截图")
    digest = hashlib.sha256(PNG).hexdigest()
    assert f"已为 {number} 保全证据 1 份" in kept and f"SHA-256 {digest[:8]}" in kept
    [row] = evidence_rows(rig)
    assert (row.kind, row.filename, row.content_type, row.sha256, row.size, row.text) == (
        "photo", "shot.png", "image/png", digest, len(PNG), "留言页截图")
    [path] = stored_files(number)
    assert path.read_bytes() == PNG and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    await say(rig, "wangfang", f"/incident show {number}")
    assert any("证据：1 份" in text for text in rig.texts("wangfang")[-2:])  # text, then card
    # The step that needs evidence first can now be done.
    assert "已完成" in await say(rig, "wangfang", f"/incident done {number} 1")
    # The picture went with that command only.
    again = await say(rig, "wangfang", f"/incident evidence {number} 口述补充")
    assert "文字记录" in again and len(evidence_rows(rig)) == 2


async def test_a_file_keeps_its_name_and_several_items_go_together(rig: Rig) -> None:
    number = await new_incident(rig)
    report = rig.fake.add_media(PDF, content_type="application/pdf", filename="tongbao.pdf")
    shot = rig.fake.add_media(PNG, content_type="image/png", filename="a.png", chunked=True)
    await send_media(rig, "wangfang", "file", report, file_name="网信办通报.pdf")
    await send_media(rig, "wangfang", "image", shot)
    await rig.settle()
    assert rig.texts("wangfang")[-2].startswith("已收到文件")
    assert "共 2 份待保存" in rig.texts("wangfang")[-1]

    kept = await say(rig, "wangfang", f"事件 证据 {number} 通报原件和截图")
    assert "保全证据 2 份" in kept
    rows = evidence_rows(rig)
    assert [(r.kind, r.filename, r.sha256) for r in rows] == [
        ("file", "网信办通报.pdf", hashlib.sha256(PDF).hexdigest()),
        ("photo", "a.png", hashlib.sha256(PNG).hexdigest())]
    assert [p.read_bytes() for p in stored_files(number)] == [PDF, PNG]
    assert "已完成" in await say(rig, "wangfang", f"/incident done {number} 1")


async def test_held_media_wait_ten_minutes_for_their_sender_only(rig: Rig) -> None:
    number = await new_incident(rig)
    await send_media(rig, "wangfang", "image", rig.fake.add_media(PNG))
    await send_media(rig, "wangfang", "image", rig.fake.add_media(PNG), msg_id=4242)
    await send_media(rig, "wangfang", "image", rig.fake.add_media(PNG), msg_id=4242)  # a retry
    await rig.settle()
    assert len(rig.fake.media_calls()) == 2
    assert len(held_files()) == 4   # each: the bytes and a JSON sidecar
    # Someone else's command does not take them; other commands leave them alone.
    await say(rig, "zhangwei", f"/incident evidence {number} 张伟的文字记录")
    await say(rig, "wangfang", "/whoami")
    assert "请写明事件编号" in await say(rig, "wangfang", "/incident evidence")
    assert held(rig) == 2
    rig.clock.advance(timedelta(minutes=10))
    reply = await say(rig, "wangfang", f"/incident evidence {number} 截图")
    assert "文字记录" in reply and "照片" not in reply
    assert [r.kind for r in evidence_rows(rig)] == ["text", "text"]
    assert held(rig) == 0 and held_files() == []   # expired: deleted from disk


async def test_a_refused_command_keeps_the_picture_for_the_corrected_one(rig: Rig) -> None:
    number = await new_incident(rig)
    await send_media(rig, "wangfang", "image", rig.fake.add_media(PNG, content_type="image/png"))
    await rig.settle()
    wrong = number[:-3] + "999"
    refused = await say(rig, "wangfang", f"/incident evidence {wrong} 留言页截图")
    assert "1 份图片/文件仍为您保留" in refused and "无需重新发送图片" in refused
    assert english_words(refused) == []
    assert held(rig) == 1 and evidence_rows(rig) == []
    kept = await say(rig, "wangfang", f"/incident evidence {number} 留言页截图")
    assert f"已为 {number} 保全证据 1 份" in kept
    [row] = evidence_rows(rig)
    assert row.kind == "photo" and row.sha256 == hashlib.sha256(PNG).hexdigest()
    assert held(rig) == 0 and held_files() == []


# ------------------------------------------------------------------ refusals and failures


async def test_a_bad_media_id_is_explained_and_nothing_is_kept(rig: Rig,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    number = await new_incident(rig)
    caplog.set_level(logging.INFO)
    await send_media(rig, "wangfang", "image", "expired-media-id")
    await rig.settle()
    reply = rig.texts("wangfang")[-1]
    assert reply == "图片下载失败：文件无效或已过期，请重新发送。"
    assert english_words(reply) == []
    assert "errcode 40007" in caplog.text
    assert "tok-" not in caplog.text   # the access token never reaches the log
    assert held(rig) == 0
    reply = await say(rig, "wangfang", f"/incident evidence {number}")
    assert "请附上网址" in reply and evidence_rows(rig) == []

    # WeCom unreachable (5xx): a different reason, still nothing kept.
    rig.fake.fail_next("/cgi-bin/media/get", status=502)
    await send_media(rig, "wangfang", "file", rig.fake.add_media(PDF), file_name="a.pdf")
    await rig.settle()
    assert rig.texts("wangfang")[-1] == "文件下载失败：网络或企业微信暂时不可用，请重新发送。"
    assert held(rig) == 0 and stored_files(number) == []


async def test_an_expired_token_is_refreshed_for_a_download(rig: Rig) -> None:
    await rig.adapter.client.token()
    rig.fake.expire_tokens()
    await send_media(rig, "wangfang", "image", rig.fake.add_media(PNG))
    await rig.settle()
    assert rig.texts("wangfang")[-1].startswith("已收到图片")
    assert [c["params"]["access_token"] for c in rig.fake.media_calls()] == ["tok-1", "tok-2"]


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "streamed"])
async def test_an_oversize_file_is_refused_without_reading_it(rig: Rig, chunked: bool) -> None:
    number = await new_incident(rig)
    rig.adapter.max_media_bytes = 10_000
    big = rig.fake.add_media(b"x" * 50_000, content_type="application/zip", filename="big.zip",
                             chunked=chunked)
    await send_media(rig, "wangfang", "file", big, file_name="big.zip")
    await rig.settle()
    reply = rig.texts("wangfang")[-1]
    assert reply.startswith("文件过大（超过 10 KB），未保存") and english_words(reply) == []
    assert held(rig) == 0
    await say(rig, "wangfang", f"/incident evidence {number} 压缩包")
    assert [r.kind for r in evidence_rows(rig)] == ["text"] and stored_files(number) == []


async def test_voice_and_video_get_a_hint(rig: Rig) -> None:
    await send_media(rig, "wangfang", "voice", "voice-1")
    await rig.settle()
    reply = rig.texts("wangfang")[-1]
    assert "暂不支持把语音或视频保存为证据" in reply and english_words(reply) == []
    assert rig.fake.media_calls() == []


# ------------------------------------------------------------------ pieces


def test_the_evidence_command_takes_the_held_media(rig: Rig) -> None:
    def takes(text: str) -> bool:
        handler, args, _ = rig.app.dispatcher.route(text)
        return handler is not None and handler.takes_held_media(args)

    for text in ("/incident evidence INC-20261123-001 截图", "/INCIDENT Evidence INC-1",
                 "／incident evidence INC-1", "事件 证据 INC-1 说明", "/incident 存证 INC-1",
                 "/incident@dutybot evidence INC-1"):
        assert takes(text), text
    for text in ("/incident show INC-1", "/incident evidences INC-1", "证据 INC-1", "/help", "",
                 "/incident evidence", "/incident evidence  "):   # no number: only the usage
        assert not takes(text), text


def test_file_names_from_content_disposition() -> None:
    assert filename_from('attachment; filename="shot.png"') == "shot.png"
    assert filename_from("attachment; filename*=UTF-8''%E9%80%9A%E6%8A%A5.pdf") == "通报.pdf"
    assert filename_from('attachment; filename="../../etc/passwd"') == "passwd"
    assert filename_from("") == "" and filename_from("inline") == ""


def test_held_media_are_bounded(clock: FakeClock, tmp_path: Path) -> None:
    held = HeldMedia(tmp_path / "held", clock, per_sender=2, max_bytes=10)
    one, two, three = (Attachment(f"{n}.png", b"1234", "image/png", "photo") for n in "abc")

    def take(key: str) -> tuple[Attachment, ...]:
        items = held.items(key)
        held.release(items)
        return tuple(item.attachment for item in items)

    assert held.hold("x:a", (one,)) == 1
    clock.advance(timedelta(seconds=1))
    assert held.hold("x:a", (two, three)) == 2   # the oldest is dropped
    assert take("x:a") == (two, three) and take("x:a") == ()
    held.hold("x:a", (one, two))
    clock.advance(timedelta(seconds=1))
    held.hold("x:b", (three,))                  # 12 bytes > 10: the oldest goes
    assert take("x:a") == (two,) and take("x:b") == (three,)
    assert list((tmp_path / "held").iterdir()) == []   # nothing left behind


def test_the_default_size_limit_is_the_evidence_fetch_limit(clock: FakeClock) -> None:
    settings = load_settings(None, env=wecom_env("http://127.0.0.1:9"))
    adapter = WeComAdapter(settings.wecom, clock=clock)
    assert adapter.max_media_bytes == settings.incidents.fetch_max_bytes == 10_000_000
