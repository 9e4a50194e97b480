"""Drills never touch the record (issue 15 item 1): ``dutybot console`` and ``dutybot drill``
run on a sandbox; ``console --live`` acts on the live database without taking or
dead-lettering messages meant for another platform; ``run --adapter console`` binds only
people bound nowhere."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.console import ConsoleAdapter
from bot.cli import main
from bot.config import load_settings
from bot.console_live import ConsoleMode, ConsoleOnlySender
from bot.console_run import run_console
from bot.models import ProcessedUpdate
from bot.sandbox import sandbox
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from incidents.models import Incident
from people.models import ChatIdentity, Person, Role
from tests.factories import make_person

NOW = parse_local("2026-11-20T09:00")


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """A live deployment: ``dutybot.toml`` pointing at ``live.db``, where 张伟 (admin) and
    王芳 (officer) are bound on WeCom and 王芳 has a message waiting to go out there."""
    config = tmp_path / "dutybot.toml"
    config.write_text('[database]\nurl = "sqlite:///live.db"\n\n[incidents]\nevidence_dir = "live-evidence"\n',
                      encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    upgrade(engine)
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin, Role.officer), now=NOW, platform="wecom",
                    phone="13800000001")
        wang = make_person(session, "王芳", roles=(Role.officer,), now=NOW, platform="wecom",
                           phone="13800000002")
        enqueue(session=session, message=Outbound("【值班表已发布】您 11月23日 白班", person_id=wang.id),
                now=NOW, event_key="roster:publish:2026-11")
        session.commit()
    engine.dispose()
    return config


def _snapshot(config: Path) -> dict[str, object]:
    """What the drill must not change: the outbox rows, identities, people, incidents."""
    engine = make_engine(f"sqlite:///{config.parent / 'live.db'}")
    with Session(engine) as session:
        rows = [r.model_dump() for r in session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))]
        idents = [(i.platform, i.external_id) for i in session.exec(select(ChatIdentity))]
        people = sorted(p.name for p in session.exec(select(Person)))
        incidents = session.exec(select(func.count()).select_from(Incident)).one()
        updates = session.exec(select(func.count()).select_from(ProcessedUpdate)).one()
    engine.dispose()
    return {"outbox": rows, "identities": sorted(idents), "people": people, "incidents": incidents,
            "updates": updates}


def _script(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "script.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_console_as_a_wecom_person_is_a_drill_that_leaves_the_record_alone(
        live: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(live)
    code = main(["--config", str(live), "console", "--as", "王芳", "--script", _script(tmp_path, ":quit")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "演练模式：在正式数据库" in out and "临时副本" in out and "不会写入正式数据库" in out
    assert "加 --live 在正式数据库上操作" in out
    assert "【值班表已发布】" in out            # the copy holds the live data; shown, not sent
    after = _snapshot(live)
    assert after == before
    rows: list[dict[str, object]] = after["outbox"]  # type: ignore[assignment]
    [row] = rows
    assert row["status"] == OutboxStatus.pending and row["attempts"] == 0 and row["sent_at"] is None
    assert not [i for i in after["identities"] if i[0] == "console"]  # type: ignore[attr-defined]
    assert not (tmp_path / "live-evidence").exists()


def test_a_now_drill_reports_an_incident_that_never_reaches_the_live_register(
        live: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(live)
    script = _script(tmp_path, "/incident new 违法 https://www.example.gov.cn/hd/88 留言板出现赌博广告",
                     ":advance 1h")
    code = main(["--config", str(live), "console", "--as", "王芳", "--now", "2026-11-23T09:00",
                 "--script", script])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "INC-20261123-001" in out
    assert _snapshot(live) == before
    assert before["incidents"] == 0


def test_drill_empty_starts_from_nothing(live: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(live)
    code = main(["--config", str(live), "drill", "--empty", "--now", "2026-11-23T09:00",
                 "--script", _script(tmp_path, "/people list", "/whoami")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "演练模式：在空的临时数据库上运行" in out
    assert "已创建首位管理员“管理员”" in out
    assert "王芳" not in out and "张伟" not in out     # none of the live people
    assert _snapshot(live) == before


def test_drill_without_a_live_database_creates_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["drill", "--script", _script(tmp_path, "/help")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "正式数据库尚不存在" in out
    assert not (tmp_path / "dutybot.db").exists()


def test_console_live_acts_on_the_record_but_leaves_wecom_messages_alone(
        live: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(live)
    script = _script(tmp_path, "/whoami", ":as 张伟", "/people add 陈晨 13800000005 值班员", ":advance 1h")
    code = main(["--config", str(live), "console", "--live", "--as", "王芳", "--script", script])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "正在正式数据库上操作（--live）" in out
    assert "姓名：王芳" in out and "已添加 陈晨" in out
    assert "正式数据库上不能拨动时钟" in out
    assert "【值班表已发布】" not in out
    after = _snapshot(live)
    assert after["people"] == sorted([*before["people"], "陈晨"])  # type: ignore[misc]
    assert after["identities"] == before["identities"]      # the operator identities are gone
    assert after["updates"] == 2                            # /whoami and /people add: on the record
    assert after["outbox"][0] == before["outbox"][0]  # type: ignore[index]
    replies = [r for r in after["outbox"] if r["event_key"].startswith("update:console:")]  # type: ignore[attr-defined]
    assert replies and all(r["status"] == OutboxStatus.sent for r in replies)


def test_console_live_rejects_drill_options(live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(live), "console", "--live", "--now", "2026-11-23T09:00"]) == 2
    assert "--now 只用于演练" in capsys.readouterr().err
    assert main(["--config", str(live), "console", "--live", "--empty"]) == 2
    assert "--empty 只用于演练" in capsys.readouterr().err


def test_a_crashed_live_console_s_operator_identity_is_swept(live: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    with Session(engine) as session:
        wang = session.exec(select(Person).where(Person.name == "王芳")).one()
        assert wang.id is not None
        session.add(ChatIdentity(person_id=wang.id, platform="console", external_id="console-op:王芳",
                                 chat_id="console-op:王芳", bound_at=NOW))
        session.commit()
    assert main(["--config", str(live), "console", "--live", "--script", _script(tmp_path, ":quit")]) == 0
    with Session(engine) as session:
        assert not session.exec(select(ChatIdentity).where(ChatIdentity.platform == "console")).all()
    engine.dispose()


def test_run_on_the_console_binds_only_people_bound_nowhere(live: Path, tmp_path: Path) -> None:
    """``dutybot run --adapter console``: the console is the platform of those bound nowhere;
    WeCom people keep their identities and their messages."""
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    with Session(engine) as session:
        make_person(session, "刘洋", roles=(Role.officer,), now=NOW, platform=None, phone="13800000006")
        session.commit()
    before = _snapshot(live)
    out = io.StringIO()
    code = asyncio.run(run_console(load_settings(live), as_name="王芳", now_text=None,
                                   script=io.StringIO("/whoami\n:as 刘洋\n/whoami\n"), transcript=None,
                                   out=out, interactive=False, mode=ConsoleMode.service))
    assert code == 0
    assert "姓名：王芳" in out.getvalue() and "姓名：刘洋" in out.getvalue()
    assert "【值班表已发布】" not in out.getvalue()
    after = _snapshot(live)
    assert after["outbox"][0] == before["outbox"][0]  # type: ignore[index]
    consoles = [i for i in after["identities"] if i[0] == "console"]  # type: ignore[attr-defined]
    assert consoles == [("console", "console:刘洋")]
    engine.dispose()


async def test_the_live_console_sender_delivers_only_console_rows(engine: Engine) -> None:
    clock = FakeClock(NOW)
    with Session(engine) as session:
        wecom = make_person(session, "王芳", now=NOW, platform="wecom", phone="13800000002")
        console = make_person(session, "刘洋", now=NOW, platform="console", external_id="console:刘洋",
                              phone="13800000006")
        both = make_person(session, "李强", now=NOW, platform="wecom", phone="13800000007")
        session.add(ChatIdentity(person_id=both.id or 0, platform="console", external_id="console:李强",
                                 chat_id="console:李强", bound_at=NOW))   # an old drill's leftover
        nobody = make_person(session, "赵敏", now=NOW, platform=None, phone="13800000008")
        for person in (wecom, console, both, nobody):
            enqueue(session=session, message=Outbound(f"通知{person.name}", person_id=person.id),
                    now=NOW, event_key="notice")
        enqueue(session=session, message=Outbound("回复王芳", person_id=wecom.id), now=NOW,
                event_key="update:console:console-1:0")
        enqueue(session=session, message=Outbound("群消息", chat_id="console:group:值班群"), now=NOW,
                event_key="brief", platform="console")
        enqueue(session=session, message=Outbound("企业微信群", chat_id="wrk-group"), now=NOW,
                event_key="brief", platform="wecom")
        session.commit()
    shown: list[tuple[str, str]] = []
    adapter = ConsoleAdapter(lambda chat, text: shown.append((chat, text)))
    sender = ConsoleOnlySender(engine=engine, adapter=adapter, clock=clock,
                               settings=load_settings(None, env={}).outbox)
    report = await sender.deliver_due()
    assert shown == [("console:刘洋", "通知刘洋"), ("console:王芳", "回复王芳"),
                     ("console:group:值班群", "群消息")]
    assert report.sent == 3 and (await sender.deliver_due()).sent == 0
    with Session(engine) as session:
        left = {r.text: r.status for r in session.exec(select(OutboxMessage))}
    assert left["通知王芳"] == left["通知李强"] == left["通知赵敏"] == left["企业微信群"] == OutboxStatus.pending


def test_a_postgresql_deployment_drills_on_an_empty_sqlite_database() -> None:
    settings = load_settings(None, env={"DUTYBOT_DATABASE_URL": "postgresql+psycopg://duty@127.0.0.1:5432/duty"})
    with sandbox(settings) as box:
        assert "PostgreSQL" in box.note and "不会写入正式数据库" in box.note and not box.copied
        assert box.settings.database_url() == f"sqlite:///{box.directory / 'drill.db'}"
        assert box.settings.resolve(box.settings.incidents.evidence_dir) == box.directory / "evidence"
        assert (box.directory / "drill.db").exists()
    assert not box.directory.exists()
    assert settings.database.url.startswith("postgresql") and settings.incidents.evidence_dir == "evidence"


async def test_the_console_service_keeps_messages_to_people_bound_nowhere_waiting(engine: Engine) -> None:
    """``dutybot run --adapter console``: a message to someone bound nowhere (an external
    contact is never bound on the console) waits, the admin is told once, and the wait
    runs out after ``unbound_wait_hours``."""
    clock = FakeClock(NOW)
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=NOW, platform="console",
                            external_id="console:张伟", phone="13800000001")
        contact = make_person(session, "区委网信办", roles=(Role.external,), now=NOW, platform=None,
                              phone="13800000009")
        contact_id = contact.id
        for n in (1, 2):
            enqueue(session=session, message=Outbound(f"报告{n}", person_id=contact.id), now=NOW,
                    event_key=f"report:{n}")
        session.commit()
    shown: list[tuple[str, str]] = []
    sender = ConsoleOnlySender(engine=engine, adapter=ConsoleAdapter(lambda c, t: shown.append((c, t))),
                               clock=clock, settings=load_settings(None, env={}).outbox)
    sender.park_unbound = True
    report = await sender.deliver_due()
    assert report.waiting == 2
    report = await sender.deliver_due()   # the admin's notice goes out on the next pass
    assert [chat for chat, _ in shown] == ["console:张伟"]
    assert "【人员未绑定】区委网信办尚未绑定聊天账号" in shown[0][1]
    with Session(engine) as session:
        statuses = [r.status for r in session.exec(select(OutboxMessage).where(
            OutboxMessage.person_id == contact_id))]
    assert statuses == [OutboxStatus.waiting, OutboxStatus.waiting]
    clock.advance(timedelta(hours=72))
    await sender.deliver_due()
    await sender.deliver_due()
    with Session(engine) as session:
        statuses = [r.status for r in session.exec(select(OutboxMessage).where(
            OutboxMessage.person_id == contact_id))]
    assert statuses == [OutboxStatus.dead, OutboxStatus.dead]
    assert len(shown) == 2 and "【消息已过期】" in shown[1][1] and "区委网信办" in shown[1][1]
