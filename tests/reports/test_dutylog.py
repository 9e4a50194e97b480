"""The duty log (DUTY-3, CHECK-2): who held each shift, check-ins, rounds, handovers —
in chat, as text and as an xlsx workbook from the CLI."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.cli.roster_log import add_commands, cmd_roster_log
from core.clock import parse_local
from core.db import make_engine, upgrade
from core.errors import InputError
from people.models import Person, Role
from reports.dutylog import CheckinState, DutyLog, build_log, checkin_state, render_zh, write_xlsx
from roster.models import DutyRole, Handover, ReadingRound, RoundStatus, Shift, ShiftAssignment
from roster.service import find_shift
from tests.factories import make_person, roster_days

WINDOW = timedelta(minutes=30)


def utc(text: str) -> datetime:
    return parse_local(text).astimezone(UTC)


def seed(engine: Engine) -> None:
    """09-30 白班 王芳 on time, 夜班 陈晨 late with rounds and a handover; 10-01 全天 王芳 missed."""
    now = utc("2026-09-29T12:00")
    with Session(engine) as session:
        for name, role in (("王芳", Role.officer), ("陈晨", Role.officer), ("李强", Role.leader), ("周明", Role.leader)):
            make_person(session, name, roles=(role,), now=now)
        roster_days(session, start="2026-09-30", end="2026-10-01", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=now)
        people = {p.name: p for p in session.exec(select(Person))}

        def shift(day: str, name: str) -> Shift:
            return find_shift(session=session, day=date.fromisoformat(day), name=name)

        def check_in(s: Shift, name: str, at: str) -> None:
            row = session.exec(select(ShiftAssignment).where(ShiftAssignment.shift_id == s.id,
                                                             ShiftAssignment.person_id == people[name].id,
                                                             ShiftAssignment.role == DutyRole.officer.value)).one()
            row.checked_in_at = utc(at)
            session.add(row)

        day, night = shift("2026-09-30", "白班"), shift("2026-09-30", "夜班")
        check_in(day, "王芳", "2026-09-30T08:25")
        check_in(night, "陈晨", "2026-09-30T18:20")
        session.add_all([
            ReadingRound(shift_id=night.id, seq=1, prompt_at=utc("2026-09-30T21:05"), due_at=utc("2026-09-30T21:35"),
                         status=RoundStatus.ok, answered_at=utc("2026-09-30T21:12")),
            ReadingRound(shift_id=night.id, seq=2, prompt_at=utc("2026-10-01T07:10"), due_at=utc("2026-10-01T07:40"),
                         status=RoundStatus.anomaly, answered_at=utc("2026-10-01T07:15"), note="微博账号被仿冒",
                         incident_number="INC-20261001-001"),
            Handover(shift_id=night.id, person_id=people["陈晨"].id, at=utc("2026-10-01T08:28"),
                     note="仿冒账号已报网信办", summary="读网：2 次")])
        session.commit()


def test_checkin_states_at_the_edges() -> None:
    shift = Shift(day=date(2026, 9, 30), name="夜班", pattern="workday", starts_at=utc("2026-09-30T17:30"),
                  ends_at=utc("2026-10-01T08:30"), created_at=utc("2026-09-01T00:00"))
    assert checkin_state(None, shift, utc("2026-09-30T17:00"), WINDOW) == (CheckinState.upcoming, 0)
    assert checkin_state(None, shift, utc("2026-09-30T18:00"), WINDOW) == (CheckinState.waiting, 0)
    assert checkin_state(None, shift, utc("2026-09-30T18:01"), WINDOW) == (CheckinState.overdue, 0)
    assert checkin_state(None, shift, utc("2026-10-01T08:30"), WINDOW) == (CheckinState.missed, 0)
    assert checkin_state(utc("2026-09-30T17:10"), shift, utc("2026-10-01T09:00"), WINDOW) == (CheckinState.on_time, 0)
    assert checkin_state(utc("2026-09-30T18:00"), shift, utc("2026-10-01T09:00"), WINDOW) == (CheckinState.on_time, 0)
    assert checkin_state(utc("2026-09-30T18:01"), shift, utc("2026-10-01T09:00"), WINDOW) == (CheckinState.late, 31)


def test_log_of_a_night_into_a_holiday(engine: Engine, tmp_path: Path) -> None:
    seed(engine)
    with Session(engine) as session:
        log = build_log(session=session, start=date(2026, 9, 30), end=date(2026, 10, 1),
                        now=utc("2026-10-02T09:00"), checkin_window=WINDOW)
        with pytest.raises(InputError, match="不能早于"):
            build_log(session=session, start=date(2026, 10, 2), end=date(2026, 10, 1), now=utc("2026-10-02T09:00"),
                      checkin_window=WINDOW)
        with pytest.raises(InputError, match="最多 92 天"):
            build_log(session=session, start=date(2026, 1, 1), end=date(2026, 12, 31), now=utc("2026-10-02T09:00"),
                      checkin_window=WINDOW)
    text = render_zh(log)
    assert text.startswith("值班日志：9月30日至10月1日（截至 10月2日 09:00）")
    assert "值班员：王芳 按时接班 08:25" in text
    assert "值班员：陈晨 迟到接班 18:20（迟50分钟）" in text
    assert "第2次 07:15 发现异常：微博账号被仿冒（INC-20261001-001）" in text
    assert "交班：10月1日 08:28 陈晨，备注：仿冒账号已报网信办" in text
    assert "■ 10月1日（星期四）全天 08:30–次日08:30\n  值班员：王芳 未接班" in text
    assert text.endswith("合计：3 个班次；接班 按时 1，迟到 1，未接班 1；读网 2 次（异常 1，未按时 0）；交班 1 次")
    compact = render_zh(log, compact=True)
    assert "  陈晨 迟到接班 18:20（迟50分钟）｜带班 周明｜读网 2（正常1 异常1 未按时0）｜已交班 08:28 陈晨" in compact
    path = tmp_path / "log.xlsx"
    write_xlsx(log, path)
    book = load_workbook(path)
    assert book.sheetnames == ["班次", "接班", "读网", "交班", "说明"]
    shifts = list(book["班次"].iter_rows(values_only=True))
    assert shifts[2][:2] == (datetime(2026, 9, 30), "夜班") and shifts[2][5] == "陈晨 迟到接班 18:20（迟50分钟）"  # noqa: DTZ001
    assert shifts[2][11] == datetime(2026, 10, 1, 8, 28)      # Beijing wall-clock time  # noqa: DTZ001
    checkins = list(book["接班"].iter_rows(values_only=True))
    assert checkins[2][2:] == ("陈晨", datetime(2026, 9, 30, 18, 20), "迟到接班", 50)  # noqa: DTZ001
    assert checkins[3][2:] == ("王芳", None, "未接班", None)
    assert list(book["读网"].iter_rows(values_only=True))[2][5:] == (
        "发现异常", datetime(2026, 10, 1, 7, 15), "微博账号被仿冒", "INC-20261001-001")  # noqa: DTZ001
    with pytest.raises(InputError, match="无法写入"):
        write_xlsx(log, tmp_path / "missing" / "log.xlsx")


def test_empty_period() -> None:
    empty = DutyLog(date(2026, 12, 1), date(2026, 12, 1), utc("2026-12-01T09:00"), [])
    assert render_zh(empty).endswith("该期间没有已发布的班次。")


@freeze_time("2026-10-02 01:00:00")
def test_cli_roster_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    seed(engine)
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    out_file = tmp_path / "log.xlsx"
    args = argparse.Namespace(config=None, from_="2026-09-30", to="2026-10-01", xlsx=str(out_file))
    assert cmd_roster_log(args) == 0
    out = capsys.readouterr().out
    assert "值班日志：9月30日至10月1日（截至 10月2日 09:00）" in out and f"已写入 {out_file}" in out
    assert load_workbook(out_file)["交班"]["E2"].value == "仿冒账号已报网信办"
    # Through the parser the roster CLI builds: default period, the last 7 duty days.
    parser = argparse.ArgumentParser(prog="dutybot")
    parser.add_argument("--config")
    roster = parser.add_subparsers(dest="command").add_parser("roster").add_subparsers(dest="roster_command")
    add_commands(roster)
    parsed = parser.parse_args(["roster", "log"])
    assert parsed.func(parsed) == 0
    assert "值班日志：9月26日至10月2日" in capsys.readouterr().out
    with pytest.raises(InputError, match="无效的开始日期"):
        cmd_roster_log(argparse.Namespace(config=None, from_="2026-13-01", to=None, xlsx=None))


async def test_duty_log_in_chat_for_a_day_and_the_week(engine: Engine) -> None:
    from bot.adapters.memory import MemoryAdapter, MemoryChat
    from bot.app import App
    from bot.config import load_settings
    from core.clock import FakeClock

    seed(engine)
    adapter = MemoryAdapter()
    chat = MemoryChat(App(load_settings(None, env={}), clock=FakeClock(parse_local("2026-10-01T10:00")),
                          adapter=adapter, engine=engine), adapter)
    day = await chat.send("/duty log 9-30", as_="周明")
    assert day.startswith("值班日志：2026年9月30日（星期三）") and "陈晨 迟到接班 18:20（迟50分钟）" in day
    today = await chat.send("值班 日志", as_="周明")
    assert "王芳 未接班（已超时）" in today
    week = await chat.send("/duty log week", as_="周明")
    assert "值班日志：9月25日至10月1日" in week and "已交班 08:28 陈晨" in week
    assert "无法识别的日期" in await chat.send("/duty log 前天晚上", as_="周明")
