"""Staff changes filed with the district office (STAFF-2, 梁平办法第六条): adding, deactivating
or re-numbering a person with a duty role opens a 备案 item and tells the admins; an admin
marks it filed; open items are repeated once a working day at office hours (工作要求, no
deadline: 及时 is not a number) and appear in the briefing. Under 宝鸡 nothing is recorded.
Clock moved, never slept."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli.main import main
from bot.config import load_settings
from briefing.service import build_daily
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from core.workdays import WorkdayCalendar
from people.models import Person, Role, StaffFiling
from tests.factories import make_person

LIANGPING = {"DUTYBOT_RULES_PROFILE": "liangping"}
ASK = "请将人员变动报区政府办公室备案（依据：梁平办法第六条）"
CADENCE = "（每个工作日上班时提醒一次，直至办结；此频次为工作要求，条款未规定时限）"
# Monday 2026-11-23, 10:00.
START = "2026-11-23T10:00"


def build(engine: Engine, env: dict[str, str], start: str = START) -> tuple[MemoryChat, FakeClock]:
    """张伟 and 刘洋 (admins), 王芳 and 陈晨 (officers), 李强 (leader)."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, roles in (("张伟", (Role.admin,)), ("刘洋", (Role.admin,)), ("王芳", (Role.officer,)),
                            ("陈晨", (Role.officer,)), ("李强", (Role.leader,))):
            make_person(session, name, roles=roles, now=clock.now())
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env=env), clock=clock, adapter=adapter, engine=engine), adapter), clock


def filing_messages(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith("【人员变动")]


async def test_changes_of_duty_staff_open_items_and_the_admins_are_told(engine: Engine) -> None:
    chat, _ = build(engine, LIANGPING)
    reply = await chat.send("/people add 孙丽 13900000009 值班员 区网信办", as_="张伟")
    assert "已添加 孙丽（值班员）" in reply and f"{ASK}：编号 1。" in reply
    assert "/people filed 编号" in reply
    told = filing_messages(chat, "刘洋")
    assert told == [f"【人员变动备案】{ASK}：\n· 编号 1｜11月23日 新增：孙丽（值班员｜区网信办｜13900000009）\n"
                    "报备后请发送 /people filed 编号（或 dutybot people filed 编号）。"]
    assert filing_messages(chat, "张伟") == []        # the admin who acted reads it in the reply
    assert filing_messages(chat, "王芳") == []

    # Someone without a duty role: nothing to file.
    reply = await chat.send("/people add 周八 13900000010 管理员", as_="张伟")
    assert "已添加 周八（管理员）" in reply and "备案" not in reply

    reply = await chat.send("/people phone 王芳 13900000003", as_="张伟")
    assert "已将 王芳 的电话由 13800000000 改为 13900000003" in reply and f"{ASK}：编号 2。" in reply
    reply = await chat.send("/people deactivate 陈晨", as_="刘洋")
    assert "已停用 陈晨（值班员）" in reply and f"{ASK}：编号 3。" in reply
    assert "找不到人员“陈晨”" in await chat.send("/people deactivate 陈晨", as_="刘洋")
    assert "编号 3｜11月23日 停用：陈晨（值班员｜区政府办｜13800000000）" in filing_messages(chat, "张伟")[0]

    listed = await chat.send("/people filings", as_="张伟")
    assert "待备案的人员变动（3 项）：" in listed
    assert "· 编号 2｜11月23日 手机号码变更：王芳：13800000000 → 13900000003" in listed
    assert "待备案的人员变动 3 项：/people filings" in await chat.send("/people list", as_="张伟")
    done = await chat.send("/people filed 1", as_="刘洋")
    assert "已登记为已备案：编号 1｜11月23日 新增：孙丽" in done and "尚有 2 项待备案" in done
    assert "已于" in await chat.send("/people filed 1", as_="刘洋")
    assert "找不到人员变动备案事项 9" in await chat.send("/people filed 9", as_="刘洋")
    assert "需要以下角色之一：管理员" in await chat.send("/people filed 2", as_="王芳")
    with Session(engine) as session:
        actions = [(e.entity_id, e.action) for e in session.exec(
            select(AuditEvent).where(AuditEvent.entity_type == "staff_filing").order_by(AuditEvent.id))]
    assert actions == [("1", "opened"), ("2", "opened"), ("3", "opened"), ("1", "filed")]


async def test_open_items_are_repeated_once_a_working_day_at_office_hours(engine: Engine) -> None:
    chat, _ = build(engine, LIANGPING, start="2026-11-26T16:00")            # Thursday
    await chat.send("/people add 孙丽 13900000009 值班员", as_="张伟")
    await chat.send("/people add 吴刚 13900000011 带班领导", as_="张伟")
    assert len(filing_messages(chat, "刘洋")) == 2                           # told at once, each

    await chat.app.advance_to(parse_local("2026-11-27T08:59"))
    assert len(filing_messages(chat, "刘洋")) == 2                           # nothing at night
    await chat.app.advance_to(parse_local("2026-11-27T09:00"))               # Friday, office opens
    reminders = [m for m in filing_messages(chat, "刘洋") if m.startswith("【人员变动待备案】")]
    assert len(reminders) == 1
    assert reminders[0].startswith(f"【人员变动待备案】以下 2 项人员变动尚未登记已备案，{ASK}：")
    assert "· 编号 1｜11月26日 新增：孙丽（值班员｜—｜13900000009）" in reminders[0]
    assert reminders[0].endswith(CADENCE)
    assert [m for m in filing_messages(chat, "张伟") if m.startswith("【人员变动待备案】")] == reminders
    assert not [m for m in filing_messages(chat, "王芳")]

    await chat.send("/people filed 2", as_="张伟")
    await chat.app.advance_to(parse_local("2026-11-27T17:00"))               # once a day, not more
    await chat.app.advance_to(parse_local("2026-11-29T12:00"))               # the weekend: nothing
    assert len([m for m in filing_messages(chat, "刘洋") if m.startswith("【人员变动待备案】")]) == 1
    await chat.app.advance_to(parse_local("2026-11-30T09:00"))               # Monday: again, 1 left
    reminders = [m for m in filing_messages(chat, "刘洋") if m.startswith("【人员变动待备案】")]
    assert len(reminders) == 2 and "以下 1 项" in reminders[1] and "吴刚" not in reminders[1]

    await chat.send("/people filed 1", as_="刘洋")
    await chat.app.advance_to(parse_local("2026-12-01T10:00"))               # all filed: silence
    assert len([m for m in filing_messages(chat, "刘洋") if m.startswith("【人员变动待备案】")]) == 2


async def test_a_catch_up_after_downtime_outside_office_hours_waits_for_the_next_working_day(engine: Engine) -> None:
    chat, clock = build(engine, LIANGPING, start="2026-11-23T10:00")
    await chat.send("/people add 孙丽 13900000009 值班员", as_="张伟")
    await chat.app.advance_to(parse_local("2026-11-23T18:00"))
    # Down from Monday evening until Tuesday 20:00: the missed 09:00 run sends nothing then.
    clock.set(parse_local("2026-11-24T20:00"))
    chat.app.scheduler.catch_up()
    await chat.app.drain()
    assert not [m for m in filing_messages(chat, "刘洋") if m.startswith("【人员变动待备案】")]
    await chat.app.advance_to(parse_local("2026-11-25T09:00"))
    assert len([m for m in filing_messages(chat, "刘洋") if m.startswith("【人员变动待备案】")]) == 1


async def test_open_items_in_the_daily_briefing(engine: Engine) -> None:
    chat, clock = build(engine, LIANGPING)
    await chat.send("/people add 孙丽 13900000009 值班员", as_="张伟")
    settings = load_settings(None, env=LIANGPING)
    with Session(engine) as session:
        built = build_daily(session=session, now=clock.now(), calendar=WorkdayCalendar.from_dir(None),
                            settings=settings.briefing)
    section = built.section("people.filings")
    assert section is not None and section.headline == "【人员变动待备案】1 项"
    assert section.items == ("编号 1｜11月23日 新增：孙丽（值班员｜—｜13900000009）",)
    assert "待备案1" in built.text()


async def test_nothing_is_recorded_under_baoji(engine: Engine) -> None:
    chat, _ = build(engine, {"DUTYBOT_RULES_PROFILE": "baoji"})
    reply = await chat.send("/people add 孙丽 13900000009 值班员", as_="张伟")
    assert "已添加 孙丽（值班员）" in reply and "备案" not in reply
    assert "备案" not in await chat.send("/people phone 王芳 13900000003", as_="张伟")
    assert "备案" not in await chat.send("/people deactivate 陈晨", as_="张伟")
    await chat.app.advance_to(parse_local("2026-11-25T10:00"))
    assert filing_messages(chat, "刘洋") == [] and filing_messages(chat, "张伟") == []
    assert "没有待备案的人员变动" in await chat.send("/people filings", as_="张伟")
    with Session(engine) as session:
        assert session.exec(select(StaffFiling)).all() == []
        # The changes themselves are made and recorded all the same.
        assert session.exec(select(Person).where(Person.name == "王芳")).one().phone == "13900000003"
        assert not session.exec(select(Person).where(Person.name == "陈晨")).one().active


@freeze_time("2026-11-23 02:00:00")
def test_cli_people_changes_and_filings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        make_person(session, "张伟", roles=(Role.admin,), now=parse_local("2026-11-20T10:00"))
        session.commit()
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("DUTYBOT_RULES_PROFILE", "liangping")

    assert main(["people", "add", "孙丽", "--roles", "值班员", "--phone", "13900000009",
                 "--trained", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "已添加 孙丽（值班员）" in out and f"{ASK}：编号 1。" in out
    (tmp_path / "p.csv").write_text("姓名,电话,角色,培训日期\n吴刚,13900000011,带班领导,\n郑丽,,值班员,2026-11-02\n",
                                    encoding="utf-8")
    assert main(["people", "import", str(tmp_path / "p.csv")]) == 0
    assert f"{ASK}：编号 2、3。" in capsys.readouterr().out
    assert main(["people", "phone", "孙丽", "13900000019"]) == 0
    assert "编号 4" in capsys.readouterr().out
    assert main(["people", "deactivate", "吴刚"]) == 0
    assert "已停用 吴刚（带班领导）" in capsys.readouterr().out
    assert main(["people", "list", "--all"]) == 0
    out = capsys.readouterr().out
    assert "孙丽\t值班员\t—\t13900000019\t培训 2026-11-20\t" in out
    assert "郑丽\t值班员\t—\t—\t培训 2026-11-02\t" in out
    assert "待备案的人员变动 5 项：dutybot people filings" in out
    assert main(["people", "filings"]) == 0
    assert "编号 5｜11月23日 停用：吴刚（带班领导｜—｜13900000011）" in capsys.readouterr().out
    assert main(["people", "filed", "5"]) == 0
    assert "已登记为已备案：编号 5" in capsys.readouterr().out
    assert main(["people", "filed", "5"]) == 2
    assert main(["people", "filed", "99"]) == 1
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        assert [r.id for r in session.exec(select(StaffFiling).where(StaffFiling.filed_at == None))] == [  # noqa: E711
            1, 2, 3, 4]
        zheng = session.exec(select(Person).where(Person.name == "郑丽")).one()
        assert zheng.trained_on == date(2026, 11, 2)
    engine.dispose()
