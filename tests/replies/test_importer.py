"""Importing the message platform's exports: CSV (with BOM) and xlsx, all or nothing,
row-by-row errors, deadlines per category from known 2026 dates, reminders, and the CLI."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bot.cli.replies import register
from core.audit import AuditEvent, history
from core.clock import FakeClock, local_midnight, parse_local
from core.db import make_engine, upgrade
from core.errors import InputError
from core.profiles import load_profile
from core.schedule import DueItem, DueStatus
from core.tables import read_table
from core.workdays import WorkdayCalendar
from people.models import Role
from replies.flows import ReminderPolicy
from replies.importer import (
    COLUMNS_HINT,
    REQUIRED,
    ReplyImportFailed,
    import_items,
    parse_when,
)
from replies.models import ReplyItem, ReplyStatus
from tests.factories import make_person

HEADER = "外部编号,渠道,类别,收到时间,摘要,单位,负责人,答复时间,答复摘要\n"


def write_csv(path: Path, body: str) -> Path:
    path.write_bytes(("\ufeff" + HEADER + body).encode("utf-8"))   # Excel's "CSV UTF-8"
    return path


def run_import(engine: Engine, clock: FakeClock, path: Path) -> list[ReplyItem]:
    rows = read_table(path, required=REQUIRED, columns_hint=COLUMNS_HINT)
    with Session(engine, expire_on_commit=False) as session:
        items = import_items(session=session, rows=rows, calendar=WorkdayCalendar(),
                             profile=load_profile("default"), policy=ReminderPolicy(),
                             now=clock.now(), actor="t")
        session.commit()
    return items


def seed_people(engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        make_person(session, "王芳", now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        gone = make_person(session, "刘洋", now=clock.now(), unit="区教育局")
        gone.active = False
        session.add(gone)
        session.commit()


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(session.exec(select(func.count()).select_from(t)).one()   # type: ignore[return-value]
                     for t in (ReplyItem, DueItem, AuditEvent))


def at(text: str) -> datetime:
    return parse_local(text).astimezone(UTC)


def wall(text: str) -> datetime:
    """Beijing wall-clock time, as an xlsx cell holds it (Excel has no time zones)."""
    return parse_local(text).replace(tzinfo=None)


def pending_stages(engine: Engine, number: str) -> set[str]:
    with Session(engine) as session:
        due = session.exec(select(DueItem).where(DueItem.ref == f"reply:{number}",
                                                 DueItem.status == DueStatus.pending)).all()
    return {d.data()["stage"] for d in due}


def test_csv_with_bom_imports_open_and_answered_rows(tmp_path: Path, engine: Engine,
                                                     clock: FakeClock) -> None:
    seed_people(engine, clock)
    path = write_csv(tmp_path / "msgs.csv", (
        "W-1,网站留言,咨询,2026-11-20 10:00,“办事指南”链接打不开,,王芳,,\n"
        "W-2,,找错,2026/11/02 08:30,首页错别字,区教育局,,2026-11-03 16:00,已更正\n"
        ",新媒体,异议,2026-11-09T09:00,对已发布的通知有异议,,,,\n"
        ",,,,,,,,\n"                                               # blank rows are skipped
        "W-4,,建议,2026-11-02,增加办事指南下载,区人社局,,2026-11-02,已采纳\n"))
    items = run_import(engine, clock, path)
    assert [i.number for i in items] == [f"MSG-20261123-00{n}" for n in range(1, 5)]
    consult, error, objection, suggestion = items
    assert (consult.channel, consult.unit, consult.external_ref) == ("website", "区政府办", "W-1")
    assert consult.assignee_id is not None and consult.status == ReplyStatus.open
    assert error.channel == "error_portal" and objection.channel == "new_media"
    assert (error.status, error.answer, error.closed_at) == (ReplyStatus.answered, "已更正",
                                                             at("2026-11-03T16:00"))
    assert error.on_time() is True
    # A bare reply date on the day of receipt counts as answered on receipt.
    assert suggestion.closed_at == suggestion.received_at == at("2026-11-02T00:00")
    # 7 working days from Friday 11-20 end on Tuesday 12-01 at 24:00; every stage is ahead.
    assert consult.due_at == at("2026-12-02T00:00")
    assert pending_stages(engine, consult.number) == {"before", "due", "breach", "leader", "principal"}
    # The objection was due 11-18: escalations fire at once, nothing for answered rows.
    assert pending_stages(engine, objection.number) == {"breach", "leader", "principal"}
    assert pending_stages(engine, error.number) == set()
    with Session(engine) as session:
        actions = [e.action for e in history(session=session, entity_type="reply", entity_id=error.number)]
    assert actions == ["created", "imported_answered"]


def test_xlsx_with_date_cells(tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.strip().split(","))
    sheet.append([12345, None, "找错", wall("2026-11-19T14:05"), "栏目空白", "区政府办",
                  None, wall("2026-11-20T09:00"), "已补充"])
    sheet.append([None, "其他", "查证", wall("2026-11-16"), "反映路灯不亮", None, None, None, None])
    book.save(tmp_path / "msgs.xlsx")
    rows = read_table(tmp_path / "msgs.xlsx", required=REQUIRED, columns_hint=COLUMNS_HINT)
    assert rows[0]["收到时间"] == "2026-11-19T14:05" and rows[1]["收到时间"] == "2026-11-16"
    first, second = run_import(engine, clock, tmp_path / "msgs.xlsx")
    assert first.external_ref == "12345" and first.closed_at == at("2026-11-20T09:00")
    assert second.channel == "other" and second.received_at == at("2026-11-16T00:00")


@pytest.mark.parametrize(("received", "kind", "last_day"), [
    # 找错 on the last working day before National Day: the make-up Saturday 10-10 counts.
    ("2026-09-30 16:00", "找错", date(2026, 10, 10)),
    # 需查证办理 received on a holiday: the 15 working days are counted from 10-08.
    ("2026-10-03 11:00", "需查证办理", date(2026, 10, 27)),
    # Friday before Spring Festival: 02-14 and 02-28 are make-up Saturdays.
    ("2026/2/13 10:00", "咨询", date(2026, 3, 2)),
])
def test_imported_open_item_due_by_category(tmp_path: Path, engine: Engine, clock: FakeClock,
                                            received: str, kind: str, last_day: date) -> None:
    (item,) = run_import(engine, clock, write_csv(tmp_path / "m.csv", f",,{kind},{received},某条留言,,,,\n"))
    assert item.due_last_day == last_day
    assert item.due_at == local_midnight(last_day + timedelta(days=1))   # 24:00 of the last day
    assert item.provisional is False and "依据：" in item.citation
    # Long overdue on 2026-11-23: breach and both escalations are due now.
    assert pending_stages(engine, item.number) == {"breach", "leader", "principal"}
    with Session(engine) as session:
        due_now = session.exec(select(DueItem).where(DueItem.ref == f"reply:{item.number}")).all()
    assert all(d.due_at == clock.now() for d in due_now)


def test_bad_rows_are_reported_row_by_row_and_nothing_is_stored(tmp_path: Path, engine: Engine,
                                                                 clock: FakeClock) -> None:
    seed_people(engine, clock)
    path = write_csv(tmp_path / "bad.csv", (
        "A-1,,咨询,2026-11-20 10:00,正常的一行,,,,\n"               # row 2: fine
        "A-2,,投诉,2026-11-20 10:00,类别不对,,,,\n"                 # row 3
        "A-3,,咨询,2026-11-31 10:00,日期不存在,,,,\n"               # row 4
        "A-4,,咨询,2026-11-24 10:00,收到时间在将来,,,,\n"           # row 5
        "A-5,,咨询,2026-11-20 10:00,,,,,\n"                        # row 6
        "A-6,,咨询,2026-11-20 10:00,负责人已停用,,刘洋,,\n"         # row 7
        "A-7,,咨询,2026-11-20 10:00,只有答复时间,,,2026-11-21 10:00,\n"  # row 8
        "A-8,,咨询,2026-11-20 10:00,答复早于收到,,,2026-11-19 10:00,已答复\n"  # row 9
        "A-9,微博,咨询,2026-11-20 10:00,渠道不对,,,,\n"             # row 10
        "A-10,,咨询,20.11.2026,日期格式不对,,,,\n"                   # row 11
    ))
    with pytest.raises(ReplyImportFailed) as info:
        run_import(engine, clock, path)
    problems = info.value.problems
    assert [p.split("：")[0] for p in problems] == [f"第{n}行" for n in range(3, 12)]
    assert "无法识别的类别“投诉”" in problems[0]
    assert "不是有效的日期时间" in problems[1]
    assert "晚于现在" in problems[2]
    assert "缺少摘要" in problems[3]
    assert "负责人“刘洋”不是在册人员" in problems[4]
    assert "应同时填写" in problems[5]
    assert "早于收到时间" in problems[6]
    assert "无法识别的渠道“微博”" in problems[7]
    assert "YYYY-MM-DD HH:MM" in problems[8]
    assert info.value.message.startswith("导入失败，未导入任何留言")
    assert isinstance(info.value, InputError)
    assert counts(engine)[0] == 0 and counts(engine)[1] == 0


def test_duplicate_external_refs(tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    run_import(engine, clock, write_csv(tmp_path / "a.csv", "X-1,,咨询,2026-11-20 10:00,第一次,,,,\n"))
    before = counts(engine)
    path = write_csv(tmp_path / "b.csv", (
        "X-2,,咨询,2026-11-20 10:00,新的,,,,\n"
        "X-1,,咨询,2026-11-20 10:00,已导入过,,,,\n"
        "X-2,,找错,2026-11-20 11:00,文件内重复,,,,\n"))
    with pytest.raises(ReplyImportFailed) as info:
        run_import(engine, clock, path)
    assert info.value.problems == ["第3行：外部编号 X-1 已登记过（MSG-20261123-001）",
                                   "第4行：外部编号 X-2 与第2行重复"]
    assert counts(engine) == before


def test_empty_file_and_missing_columns(tmp_path: Path, engine: Engine, clock: FakeClock) -> None:
    with pytest.raises(ReplyImportFailed, match="文件中没有留言数据"):
        run_import(engine, clock, write_csv(tmp_path / "e.csv", ""))
    (tmp_path / "m.csv").write_text("外部编号,摘要\nA,B\n", encoding="utf-8")
    with pytest.raises(InputError, match="缺少“类别”、“收到时间”列（表头应为：外部编号、渠道"):
        run_import(engine, clock, tmp_path / "m.csv")


@pytest.mark.parametrize(("text", "expected", "bare"), [
    ("2026-10-08 09:30", "2026-10-08T09:30", False),
    ("2026-10-08T09:30", "2026-10-08T09:30", False),
    ("2026/10/08 09:30", "2026-10-08T09:30", False),
    ("2026/10/8 9:30:15", "2026-10-08T09:30:15", False),
    ("2026-10-08", "2026-10-08T00:00", True),
])
def test_parse_when_forms(text: str, expected: str, bare: bool) -> None:
    assert parse_when(text, "收到时间") == (at(expected), bare)


@freeze_time("2026-11-23 01:00:00")
def test_cli_import_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        make_person(session, "王芳", now=datetime(2026, 11, 1, tzinfo=UTC))
        session.commit()
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    parser = argparse.ArgumentParser(prog="dutybot")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    path = write_csv(tmp_path / "m.csv", (
        "Y-1,,找错,2026-11-19 10:00,首页链接失效,区政府办,王芳,,\n"
        ",,咨询,2026-11-02 10:00,办事时间咨询,,,,\n"
        ",,咨询,2026-11-02 10:00,社保咨询,,,2026-11-20 10:00,已答复\n"))
    out = run("replies", "import", str(path))
    assert "已导入 3 条留言：已答复 1 条（其中超期答复 1 条），待答复 2 条（其中已超期 1 条）" in out
    out = run("replies", "list")
    lines = out.splitlines()
    assert lines[0].startswith("MSG-20261123-002\t咨询建议\t截止 11月11日 24:00（已超期）\t未指定")
    assert lines[1].startswith("MSG-20261123-001\t找错\t截止 11月24日 24:00\t王芳\t首页链接失效")
    assert lines[-1] == "共 2 条待答复的留言"
    out = run("replies", "list", "--overdue")
    assert "MSG-20261123-002" in out and "MSG-20261123-001" not in out
    with pytest.raises(ReplyImportFailed, match="第2行：外部编号 Y-1 已登记过"):
        run("replies", "import", str(path))
    with Session(make_engine(f"sqlite:///{db}")) as session:
        assert session.exec(select(func.count()).select_from(ReplyItem)).one() == 3
        assert session.exec(select(func.count()).select_from(AuditEvent)
                            .where(col(AuditEvent.action) == "imported_answered")).one() == 1
