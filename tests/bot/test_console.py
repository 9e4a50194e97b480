"""The console adapter and drill mode: scripts, :as, :advance, transcripts."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.console import ConsoleAdapter, ConsoleSession, parse_delta
from bot.app import App
from bot.cli import main
from bot.config import load_settings
from bot.dispatcher import Context, Handler
from bot.handlers import default_handlers
from core import schedule
from core.clock import FakeClock, parse_local
from core.messages import Inbound, Outbound
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
              handlers=[*default_handlers(), RemindHandler()])
    app.scheduler.register("remind", remind)
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


def test_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["demo", "--transcript", str(tmp_path / "demo.jsonl")])
    out = capsys.readouterr().out
    assert code == 0
    assert "绑定成功" in out
    assert "截止：2026年10月10日（星期六）24:00" in out   # the make-up Saturday counts
    assert "暂定" in out
    assert "演示结束" in out
