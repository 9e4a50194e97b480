"""The console adapter and drill mode: scripts, :as, :advance, transcripts."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.console import ConsoleAdapter, ConsoleSession, parse_delta, split_path
from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli import main
from bot.config import load_settings
from bot.dispatcher import Context, Handler
from bot.handlers import default_handlers
from core import schedule
from core.clock import FakeClock, parse_local
from core.messages import Attachment, Inbound, Outbound
from core.outbox import enqueue
from core.schedule import DueItem
from people.models import Role
from people.service import find_person
from tests.factories import make_person


class RemindHandler(Handler):
    """A test command: '/remind 2h 文本' sends the text to the leader when due."""

    command = "remind"
    usage = "/remind 2h 文本"
    summary = "测试用提醒"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        delay, _, text = ctx.args.partition(" ")
        assert ctx.person is not None
        schedule.schedule(session=ctx.session, key=f"remind:{inbound.update_id}", kind="remind",
                          ref=text, due_at=ctx.now + parse_delta(delay), now=ctx.now,
                          payload={"text": text})
        return [Outbound(f"好的，{delay} 后提醒带班领导。")]


class GrabHandler(Handler):
    """A test command: '/grab 说明' keeps the inbound and says what was attached."""

    command = "grab"
    usage = "/grab 说明"
    summary = "测试用：接收附件"
    received: ClassVar[list[Inbound]] = []

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        self.received.append(inbound)
        names = "、".join(f"{a.filename}（{a.kind}）" for a in inbound.attachments) or "无"
        return [Outbound(f"收到附件：{names}；说明：{ctx.args}")]


def remind(session: Session, item: DueItem, now: object) -> None:
    leader = find_person(session=session, name="李强")
    enqueue(session=session, message=Outbound(f"提醒：{item.data()['text']}", person_id=leader.id),
            now=now, event_key=f"due:{item.key}")  # type: ignore[arg-type]


@pytest.fixture
def drill(engine: Engine) -> tuple[ConsoleSession, io.StringIO, io.StringIO, FakeClock]:
    clock = FakeClock(parse_local("2026-09-30T16:00"))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), platform=None)
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), platform=None)
        session.commit()
    out, transcript = io.StringIO(), io.StringIO()
    holder: list[ConsoleSession] = []
    app = App(load_settings(None, env={}), clock=clock, engine=engine,
              adapter=ConsoleAdapter(lambda c, t: holder[0].show(c, t)),
              handlers=[*default_handlers(), RemindHandler(), GrabHandler()])
    app.scheduler.register("remind", remind)
    GrabHandler.received.clear()
    console = ConsoleSession(app, clock, out=out, transcript=transcript)
    holder.append(console)
    return console, out, transcript, clock


async def test_scripted_drill_with_advance_produces_the_transcript(drill) -> None:  # type: ignore[no-untyped-def]
    console, out, transcript, clock = drill
    script = [":as 王芳", "/remind 2h 网站首页打不开", "/remind 30m 核实完毕", ":advance 1h",
              ":advance 1h", ":as 李强", "/whoami"]
    await console.run_lines(script)
    records = [json.loads(line) for line in transcript.getvalue().splitlines()]
    expected = [
        ("16:00", "in", "王芳", "/remind 2h 网站首页打不开"),
        ("16:00", "out", "王芳", "好的，2h 后提醒带班领导。"),
        ("16:00", "in", "王芳", "/remind 30m 核实完毕"),
        ("16:00", "out", "王芳", "好的，30m 后提醒带班领导。"),
        ("16:30", "out", "李强", "提醒：核实完毕"),
        ("18:00", "out", "李强", "提醒：网站首页打不开"),
        ("18:00", "in", "李强", "/whoami"),
        ("18:00", "out", "李强", "姓名：李强\n角色：带班领导\n"),
    ]
    seen = [(r["at"][11:16], r["direction"], r["person"], r["text"]) for r in records]
    assert len(seen) == len(expected), seen
    for got, want in zip(seen, expected, strict=True):
        assert got[:3] == want[:3] and got[3].startswith(want[3]), (got, want)
    assert records[0]["at"] == "2026-09-30T16:00:00+08:00"
    screen = out.getvalue()
    assert "→ 李强（带班领导）：提醒：核实完毕" in screen
    assert clock.now() == parse_local("2026-09-30T18:00")


async def test_advance_rejects_bad_input_and_clock_never_goes_back(drill) -> None:  # type: ignore[no-untyped-def]
    console, out, _, clock = drill
    await console.run_lines([":as 王芳", ":advance soon", ":at 2026-01-01T00:00", ":advance 1d2h"])
    screen = out.getvalue()
    assert "用法：:advance 2h" in screen and "模拟时钟不能倒退" in screen
    assert clock.now() == parse_local("2026-10-01T18:00")


async def test_attach_sends_a_local_file_with_the_command(  # type: ignore[no-untyped-def]
        drill, tmp_path: Path) -> None:
    console, out, transcript, _ = drill
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    (tmp_path / "shot.png").write_bytes(png)
    (tmp_path / "my notes").mkdir()
    (tmp_path / "my notes" / "记录 1.txt").write_text("评论原文", encoding="utf-8")
    await console.run_lines([
        ":as 王芳",
        f":attach {tmp_path / 'shot.png'} /grab 首页截图",
        f':attach "{tmp_path / "my notes" / "记录 1.txt"}" @群 /grab 群里的记录',
        f":attach {tmp_path / 'missing.png'} /grab 不该发出",
        f':attach "{tmp_path / "my notes"}" /grab 不该发出',
        ":attach",
        ':attach "unclosed.png /grab',
        "/grab 没有附件",
    ])
    received = GrabHandler.received
    assert [i.text for i in received] == ["/grab 首页截图", "/grab 群里的记录", "/grab 没有附件"]
    [photo] = received[0].attachments
    assert (photo.filename, photo.kind, photo.content_type, photo.data) == (
        "shot.png", "photo", "image/png", png)
    assert not received[0].is_group
    [note] = received[1].attachments
    assert (note.filename, note.kind, note.content_type) == ("记录 1.txt", "file", "text/plain")
    assert note.data == "评论原文".encode()
    assert received[1].is_group and received[1].chat_id == "console:group:值班群"
    assert received[2].attachments == ()

    screen = out.getvalue()
    assert "王芳：/grab 首页截图［附件：shot.png］" in screen
    assert "收到附件：shot.png（photo）；说明：首页截图" in screen
    assert f"（找不到文件 {tmp_path / 'missing.png'}，未发送）" in screen
    assert f"（{tmp_path / 'my notes'} 是文件夹，不是文件，未发送）" in screen
    assert screen.count("用法：:attach 文件路径") == 2
    assert "不该发出" not in screen   # neither echoed nor sent
    records = [json.loads(line) for line in transcript.getvalue().splitlines()]
    ins = [r for r in records if r["direction"] == "in"]
    assert [r.get("attachments") for r in ins] == [["shot.png"], ["记录 1.txt"], None]


async def test_attach_needs_a_speaker_and_unknown_steering_lists_attach(drill, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    console, out, _, _ = drill
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    await console.run_lines([f":attach {tmp_path / 'a.pdf'} /grab 说明", ":help"])
    assert GrabHandler.received == []
    screen = out.getvalue()
    assert "请先用 :as 姓名 选择发言人" in screen
    assert ":attach 文件 命令" in screen


def test_split_path() -> None:
    assert split_path("a.png /incident evidence X 说明") == ("a.png", "/incident evidence X 说明")
    assert split_path('"my shot.png"  /grab') == ("my shot.png", "/grab")
    assert split_path("'a b.png'") == ("a b.png", "")
    for bad in ("", "  ", '"open.png /grab', '""'):
        with pytest.raises(ValueError):
            split_path(bad)


async def test_memory_chat_delivers_attachments(engine: Engine) -> None:
    clock = FakeClock(parse_local("2026-11-23T09:00"))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    app = App(load_settings(None, env={}), clock=clock, engine=engine, adapter=adapter,
              handlers=[*default_handlers(), GrabHandler()])
    GrabHandler.received.clear()
    chat = MemoryChat(app, adapter)
    shot = Attachment("shot.png", b"png-bytes", "image/png", "photo")
    reply = await chat.send("/grab 截图", as_="王芳", attachments=(shot,))
    assert reply == "收到附件：shot.png（photo）；说明：截图"
    assert GrabHandler.received[-1].attachments == (shot,)
    assert await chat.send("/grab 无", as_="王芳") == "收到附件：无；说明：无"


def test_parse_delta() -> None:
    assert parse_delta("1d2h30m") == timedelta(days=1, hours=2, minutes=30)
    for bad in ("", "2x", "0h", "h"):
        with pytest.raises(ValueError):
            parse_delta(bad)


def test_console_cli_on_an_empty_database_creates_the_first_admin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "drill.txt"
    script.write_text("/people add 王芳 13800000003 值班员\n/people list\n:as 王芳\n/help\n",
                      encoding="utf-8")
    code = main(["--debug", "console", "--script", str(script), "--now", "2026-11-23T09:00",
                 "--transcript", str(tmp_path / "t.jsonl")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "已创建首位管理员“管理员”" in out
    assert "已添加 王芳（值班员）" in out
    assert "王芳，您好" in out
    records = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {"at", "direction", "person", "text"} <= set(records[0])
    assert records[0]["person"] == "管理员" and records[0]["direction"] == "in"
    assert "演练模式" in out and not (tmp_path / "dutybot.db").exists()   # a drill: nothing kept


def test_console_live_on_an_empty_database_makes_the_first_admin_for_real(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "setup.txt"
    script.write_text("/people add 王芳 13800000003 值班员\n", encoding="utf-8")
    assert main(["console", "--live", "--script", str(script)]) == 0
    out = capsys.readouterr().out
    assert "已创建首位管理员“管理员”" in out and "已添加 王芳（值班员）" in out
    assert main(["people", "list"]) == 0
    listed = capsys.readouterr().out
    assert "管理员" in listed and "王芳" in listed
