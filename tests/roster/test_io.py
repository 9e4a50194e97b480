"""The office's 值班表: import (CSV/xlsx, all or nothing), printable export, iCalendar."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from openpyxl import Workbook, load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.cli import main
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import SHANGHAI, FakeClock, parse_local
from core.db import make_engine, upgrade
from core.tables import read_table
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.export import export_xlsx, person_ical
from roster.importer import COLUMNS_HINT, REQUIRED, RosterImportFailed, import_roster
from roster.models import DutyRole, Shift, ShiftAssignment
from roster.service import assign, find_shift, shifts_between, views
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)
PATTERNS = load_settings(None, env={}).roster.patterns()
PEOPLE = (("王芳", (Role.officer,), "13800000001"), ("陈晨", (Role.officer,), "13800000002"),
          ("赵敏", (Role.officer,), "13800000003"), ("李强", (Role.leader,), "13900000001"),
          ("周明", (Role.leader, Role.officer), "13900000002"))


def seed_people(session: Session, now: datetime) -> None:
    for name, roles, phone in PEOPLE:
        make_person(session, name, roles=roles, now=now, phone=phone)
    make_person(session, "钱多", roles=(Role.officer,), now=now).active = False
    session.flush()


def write_csv(path: Path, text: str, *, bom: bool = True) -> Path:
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def load(path: Path) -> list[dict[str, str]]:
    return read_table(path, required=REQUIRED, columns_hint=COLUMNS_HINT)


def run_import(session: Session, path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    return import_roster(session=session, rows=load(path), calendar=CAL, patterns=PATTERNS,
                         now=clock.now(), actor="test", source=path.name)


def roster_of(session: Session, start: str, end: str) -> dict[tuple[date, str], tuple[list[str], list[str]]]:
    shifts = shifts_between(session=session, start=date.fromisoformat(start), end=date.fromisoformat(end))
    return {(v.shift.day, v.shift.name): (sorted(p.name for p in v.leaders), sorted(p.name for p in v.officers))
            for v in views(session, shifts)}


def test_import_csv_with_bom(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "值班表.csv",
                     "日期,班次,带班领导,值班员\n"
                     "2026-12-01,白班,李强,王芳\n"
                     "2026-12-01,夜班,周明,\"陈晨、赵敏\"\n"
                     "2026-12-02,白班,李强,\"王芳，陈晨\"\n"
                     "2026-12-02,夜班,,\"赵敏,周明\"\n"
                     "2026-12-05,全天,周明,王芳\n")
    with Session(engine) as session:
        seed_people(session, clock.now())
        result = run_import(session, path, clock)
        session.commit()
        got = roster_of(session, "2026-12-01", "2026-12-05")
        assert got[(date(2026, 12, 1), "夜班")] == (["周明"], ["赵敏", "陈晨"])
        assert got[(date(2026, 12, 2), "白班")] == (["李强"], ["王芳", "陈晨"])
        assert got[(date(2026, 12, 2), "夜班")] == ([], ["周明", "赵敏"])
        # Days the file skips still get their (empty, published) shifts.
        assert got[(date(2026, 12, 3), "白班")] == ([], [])
        sources = set(session.exec(select(ShiftAssignment.source)))
        assert sources == {"import"}
        shift = find_shift(session=session, day=date(2026, 12, 1), name="夜班")
        events = session.exec(select(AuditEvent).where(AuditEvent.entity_id == str(shift.id))).all()
        assert any(e.action == "imported" and "值班表.csv 第3行" in e.details()["zh"] for e in events)
        assert sum(e.action == "assigned" for e in events) == 3
    summary = result.summary_zh()
    assert "2026年12月1日—12月5日" in summary and "5 个班次" in summary and "5 人" in summary
    assert "新增安排 12 项" in summary
    assert "12月2日（星期三）夜班：缺带班领导" in summary
    assert "12月3日（星期四）白班：缺值班员、带班领导" in summary


def test_import_xlsx_with_date_cells_replaces_the_shift(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["日期", "班次", "带班领导", "值班员"])
    sheet.append([date(2026, 12, 1), "白班", "周明", "陈晨"])       # an Excel date cell
    sheet.append(["2026/12/01", "夜班", "李强", "王芳"])
    sheet.append([None, None, None, None])                           # a blank row is skipped
    path = tmp_path / "roster.xlsx"
    book.save(path)
    with Session(engine) as session:
        seed_people(session, clock.now())
        roster_days(session, start="2026-12-01", end="2026-12-01", officers=["王芳"], leaders=["李强"],
                    now=clock.now())
        result = run_import(session, path, clock)
        session.commit()
        assert roster_of(session, "2026-12-01", "2026-12-01") == {
            (date(2026, 12, 1), "白班"): (["周明"], ["陈晨"]),
            (date(2026, 12, 1), "夜班"): (["李强"], ["王芳"])}
        # The night shift already had these people: they stay as they were.
        night = find_shift(session=session, day=date(2026, 12, 1), name="夜班")
        assert set(session.exec(select(ShiftAssignment.source).where(ShiftAssignment.shift_id == night.id))) == {"manual"}
        day = find_shift(session=session, day=date(2026, 12, 1), name="白班")
        unassigned = session.exec(select(AuditEvent).where(AuditEvent.entity_id == str(day.id),
                                                           AuditEvent.action == "unassigned")).all()
        assert sorted(e.details()["person"] for e in unassigned) == ["李强", "王芳"]
    assert (result.added, result.removed) == (2, 2)
    assert "该期间所有班次都已排满" in result.summary_zh()


def test_bad_rows_are_reported_row_by_row_and_nothing_is_stored(engine: Engine, clock: FakeClock,
                                                                tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv",
                     "日期,班次,带班领导,值班员\n"
                     "2026-10-01,白班,李强,王芳\n"          # 2: a holiday has only 全天
                     "2026-10-08,白班,李强,张三\n"          # 3: unknown person
                     "2026-10-08,夜班,王芳,李强\n"          # 4: roles the wrong way round
                     "2026-10-09,白班,李强,\n"              # 5: no officer
                     "2026-10-32,白班,李强,王芳\n"          # 6: no such date
                     "2026-10-09,夜班,李强,钱多\n"          # 7: inactive
                     "2026-10-08,白班,周明,陈晨\n"          # 8: duplicate of row 3
                     "十月九日,白班,李强、周明,王芳\n",      # 9: unreadable date, two leaders
                     bom=False)
    with Session(engine) as session:
        seed_people(session, clock.now())
        session.commit()
        with pytest.raises(RosterImportFailed) as err:
            run_import(session, path, clock)
        session.rollback()
        assert session.exec(select(Shift)).all() == []
        assert session.exec(select(ShiftAssignment)).all() == []
    problems = err.value.problems
    assert problems == [
        "第2行：10月1日是节假日（国庆节），当天班次为全天，没有“白班”",
        "第3行：值班员“张三”不在人员名单中（可用 dutybot people list 查看）",
        "第4行：王芳填在带班领导栏，但没有带班领导角色（现有角色：值班员）",
        "第4行：李强填在值班员栏，但没有值班员角色（现有角色：带班领导）",
        "第5行：值班员为空（至少填一人）",
        "第6行：日期“2026-10-32”不存在",
        "第7行：值班员“钱多”已停用",
        "第8行：2026-10-08 白班与第3行重复",
        "第9行：日期“十月九日”无法识别：应为 YYYY-MM-DD，如 2026-12-01",
        "第9行：带班领导只能填一人（收到：李强、周明）",
    ]
    assert err.value.message.startswith("导入失败，未导入任何排班")


def test_shift_column_missing_means_the_days_first_shift(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "day.csv",
                     "日期,带班领导,值班员\n"
                     "2026-10-01,李强,王芳\n"      # National Day: 全天
                     "2026-10-09,周明,陈晨\n")     # a Friday: 白班
    with Session(engine) as session:
        seed_people(session, clock.now())
        run_import(session, path, clock)
        session.commit()
        got = roster_of(session, "2026-10-01", "2026-10-09")
    assert got[(date(2026, 10, 1), "全天")] == (["李强"], ["王芳"])
    assert got[(date(2026, 10, 9), "白班")] == (["周明"], ["陈晨"])
    assert got[(date(2026, 10, 9), "夜班")] == ([], [])
    # An empty 班次 cell works the same way.
    path = write_csv(tmp_path / "cell.csv", "日期,班次,带班领导,值班员\n2026-10-02,,李强,赵敏\n")
    with Session(engine) as session:
        run_import(session, path, clock)
        assert roster_of(session, "2026-10-02", "2026-10-02") == {(date(2026, 10, 2), "全天"): (["李强"], ["赵敏"])}


def test_make_up_saturday_uses_workday_shifts(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "makeup.csv",
                     "日期,班次,带班领导,值班员\n"
                     "2026-10-10,白班,李强,王芳\n"
                     "2026-10-10,夜班,周明,陈晨\n")
    with Session(engine) as session:
        seed_people(session, clock.now())
        run_import(session, path, clock)
        session.commit()
        shifts = shifts_between(session=session, start=date(2026, 10, 10), end=date(2026, 10, 10))
        assert [(s.name, s.pattern) for s in shifts] == [("白班", "workday"), ("夜班", "workday")]
        assert shifts[1].ends_at == parse_local("2026-10-11T08:30")
    wrong = write_csv(tmp_path / "wrong.csv", "日期,班次,带班领导,值班员\n2026-10-10,全天,李强,王芳\n")
    with Session(engine) as session, pytest.raises(RosterImportFailed) as err:
        run_import(session, wrong, clock)
    assert err.value.problems == ["第2行：10月10日是调休上班日（国庆节），当天班次为白班、夜班，没有“全天”"]


def test_xlsx_round_trip_and_print_layout(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    with Session(engine) as session:
        seed_people(session, clock.now())
        roster_days(session, start="2026-12-30", end="2027-01-02", officers=["王芳", "陈晨", "赵敏"],
                    leaders=["李强", "周明"], now=clock.now())
        shift = find_shift(session=session, day=date(2026, 12, 31), name="夜班")
        assign(session=session, shift=shift, person=session.exec(select(Person).where(Person.name == "周明")).one(),
               role=DutyRole.officer, source="manual", now=clock.now(), actor="test")
        session.commit()
        before = roster_of(session, "2026-12-30", "2027-01-02")
        assert export_xlsx(session=session, start=date(2026, 12, 30), end=date(2027, 1, 2), path=path) == 6
        # Importing the export into the same roster changes nothing …
        again = run_import(session, path, clock)
        assert (again.added, again.removed) == (0, 0)
        # … and restores it after the assignments are gone.
        for row in session.exec(select(ShiftAssignment)).all():
            session.delete(row)
        session.commit()
        run_import(session, path, clock)
        session.commit()
        assert roster_of(session, "2026-12-30", "2027-01-02") == before
    sheet = load_workbook(path).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header == ["日期", "星期", "班次", "时间", "带班领导", "值班员", "联系电话"]
    night = [c.value for c in sheet[5]]
    assert night[0].date() == date(2026, 12, 31) and sheet.cell(5, 1).number_format == "yyyy-mm-dd"
    assert night[1:6] == ["星期四", "夜班", "17:30–次日08:30", "周明", "王芳、周明"]
    assert night[6] == "周明 13900000002、王芳 13800000001、周明 13900000002"
    assert sheet.cell(1, 1).font.b and sheet.freeze_panes == "A2"
    assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.fitToWidth == 1
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.column_dimensions["G"].width == 40
    assert sheet.oddHeader.center.text == "值班表 2026年12月30日—2027年1月2日"
    assert not list(tmp_path.glob(".export*"))   # no temporary file left behind


def test_ical_for_a_person(engine: Engine, clock: FakeClock) -> None:
    with Session(engine) as session:
        seed_people(session, clock.now())
        roster_days(session, start="2026-12-31", end="2027-01-01", officers=["王芳", "陈晨"], leaders=["周明"],
                    now=clock.now())
        shift = find_shift(session=session, day=date(2026, 12, 31), name="白班")
        assign(session=session, shift=shift, person=session.exec(select(Person).where(Person.name == "周明")).one(),
               role=DutyRole.officer, source="manual", now=clock.now(), actor="test")
        session.commit()
        wang = session.exec(select(Person).where(Person.name == "王芳")).one()
        zhou = session.exec(select(Person).where(Person.name == "周明")).one()
        data, count = person_ical(session=session, person=wang, start=date(2026, 12, 1), end=date(2027, 1, 31),
                                  now=clock.now())
        again, _ = person_ical(session=session, person=wang, start=date(2026, 12, 1), end=date(2027, 1, 31),
                               now=clock.now())
        leader_data, leader_count = person_ical(session=session, person=zhou, start=date(2026, 12, 31),
                                                end=date(2026, 12, 31), now=clock.now())
    cal = Calendar.from_ical(data)
    assert str(cal["X-WR-CALNAME"]) == "王芳的值班安排"
    events = cal.walk("VEVENT")
    # 12-31 白班 and 2027-01-01 全天 (a holiday; the year is provisional) are 王芳's.
    assert count == len(events) == 2
    assert [str(e["SUMMARY"]) for e in events] == ["值班：白班（值班员）", "值班：全天（值班员）"]
    first = events[0]
    assert first.decoded("DTSTART") == datetime(2026, 12, 31, 8, 30, tzinfo=SHANGHAI)
    assert first["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert "带班领导：周明 13900000002" in str(first["DESCRIPTION"])
    assert "暂定" in str(events[1]["DESCRIPTION"])
    assert [str(e["UID"]) for e in Calendar.from_ical(again).walk("VEVENT")] == [str(e["UID"]) for e in events]
    assert cal.walk("VTIMEZONE")
    # 周明 leads both shifts of 12-31 and is also an officer on the day shift: one event per role.
    leader_events = Calendar.from_ical(leader_data).walk("VEVENT")
    assert leader_count == 3
    assert sorted(str(e["SUMMARY"]) for e in leader_events) == ["值班：夜班（带班领导）", "值班：白班（值班员）",
                                                               "值班：白班（带班领导）"]
    assert len({str(e["UID"]) for e in leader_events}) == 3
    night = next(e for e in leader_events if "夜班" in str(e["SUMMARY"]))
    # The night shift crosses midnight into New Year's Day.
    assert night.decoded("DTSTART") == datetime(2026, 12, 31, 17, 30, tzinfo=SHANGHAI)
    assert night.decoded("DTEND") == datetime(2027, 1, 1, 8, 30, tzinfo=SHANGHAI)
    assert "值班员：陈晨 13800000002" in str(night["DESCRIPTION"])


# ---------------------------------------------------------------- CLI

@pytest.fixture
def cli_dir(tmp_path: Path) -> Path:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        seed_people(session, parse_local("2026-11-01T09:00"))
        session.commit()
    engine.dispose()
    (tmp_path / "dutybot.toml").write_text(f'[database]\nurl = "sqlite:///{db.name}"\n', encoding="utf-8")
    return tmp_path


def test_cli_import_export_ical(cli_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_csv(cli_dir / "dec.csv", "日期,班次,带班领导,值班员\n2026-12-01,白班,李强,王芳\n2026-12-01,夜班,周明,陈晨\n")
    assert main(["roster", "import", str(good), "--check"]) == 0
    assert "检查通过" in capsys.readouterr().out
    assert main(["roster", "import", str(good)]) == 0
    out = capsys.readouterr().out
    assert "已导入值班表（2026年12月1日）：1 天、2 个班次、4 人" in out
    xlsx = cli_dir / "out.xlsx"
    assert main(["roster", "export", "--from", "2026-12-01", "--to", "2026-12-31", "--xlsx", str(xlsx)]) == 0
    assert "2 个班次" in capsys.readouterr().out and xlsx.exists()
    ics = cli_dir / "wang.ics"
    assert main(["roster", "ical", "王芳", "--from", "2026-12-01", "--to", "2026-12-31", "--out", str(ics)]) == 0
    assert "共 1 个值班" in capsys.readouterr().out
    assert len(Calendar.from_ical(ics.read_bytes()).walk("VEVENT")) == 1
    assert main(["roster", "ical", "陈晨", "--from", "2026-12-01", "--to", "2026-12-01"]) == 0
    assert "值班：夜班（值班员）" in Calendar.from_ical(capsys.readouterr().out.encode()).walk("VEVENT")[0]["SUMMARY"]


@pytest.mark.parametrize(("argv", "message"), [
    (["roster", "import", "missing.csv"], "找不到文件"),
    (["roster", "export", "--from", "2026-12-01", "--to", "2026-12-31", "--xlsx", "x.xlsx"], "没有已发布的排班"),
    (["roster", "export", "--from", "2026-12-31", "--to", "2026-12-01", "--xlsx", "x.xlsx"], "结束日期不能早于开始日期"),
    (["roster", "export", "--from", "12月32日", "--to", "2026-12-31", "--xlsx", "x.xlsx"], "无效的开始日期"),
    (["roster", "ical", "张三"], "没有找到人员“张三”"),
])
def test_cli_bad_input_exits_2(cli_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                               message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_usage_error_exits_2(cli_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["roster", "export", "--from", "2026-12-01"])
    assert exc.value.code == 2 and "用法错误" in capsys.readouterr().err


def test_cli_bad_rows_exit_2_and_store_nothing(cli_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_csv(cli_dir / "bad.csv", "日期,班次,带班领导,值班员\n2026-12-01,白班,李强,王芳\n2026-12-05,白班,李强,王芳\n")
    assert main(["roster", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "第3行：12月5日是休息日，当天班次为全天，没有“白班”" in err
    engine = make_engine(f"sqlite:///{cli_dir / 'cli.db'}")
    with Session(engine) as session:
        assert session.exec(select(col(Shift.id))).all() == []
    engine.dispose()
