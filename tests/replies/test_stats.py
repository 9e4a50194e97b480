"""Reply statistics over a seeded set: on-time rate, median time to reply, overdue per
unit, the national-check flags, the period boundary, the report and the xlsx, the CLI."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.cli.replies import register
from core.clock import FakeClock, parse_local
from core.db import make_engine, upgrade
from core.errors import InputError
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from replies.flows import ReminderPolicy
from replies.importer import import_items
from replies.stats import ReplyStats, compute_stats, one_month_after, render_zh, write_xlsx

COLUMNS = ("外部编号", "类别", "收到时间", "摘要", "单位", "答复时间", "答复摘要")
# number suffix, category, received, unit, answered (now: Monday 2026-11-23 09:00)
SEED = [
    ("A", "找错", "2026-11-02 10:00", "甲局", "2026-11-04 10:00"),      # due 11-05: on time, 48 h
    ("B", "咨询", "2026-11-02 10:00", "甲局", "2026-11-13 10:00"),      # due 11-11: late, 264 h
    ("C", "找错", "2026-11-19 10:00", "乙局", ""),                      # due 11-24: open
    ("D", "查证", "2026-10-09 09:00", "乙局", "2026-11-10 09:00"),      # due 10-29: late, 768 h, > 1 month
    ("E", "咨询", "2026-11-09 09:00", "乙局", ""),                      # due 11-18: open, overdue
    ("F", "异议", "2026-10-15 09:00", "", ""),                          # due 10-26: open, overdue, > 1 month
    ("G", "找错", "2026-09-30 23:30", "甲局", ""),                      # received before the period
    ("H", "咨询", "2026-10-01 00:30", "丙局", "2026-11-01 00:30"),      # a month to the minute: not flagged
]


def seed(engine: Engine, clock: FakeClock) -> dict[str, str]:
    rows = [dict(zip(COLUMNS, (ref, kind, received, f"留言{ref}", unit, answered,
                               "已答复" if answered else ""), strict=True))
            for ref, kind, received, unit, answered in SEED]
    with Session(engine) as session:
        items = import_items(session=session, rows=rows, calendar=WorkdayCalendar(),
                             profile=load_profile("default"), policy=ReminderPolicy(),
                             now=clock.now(), actor="t")
        session.commit()
        return {i.external_ref or "": i.number for i in items}


def stats_for(engine: Engine, clock: FakeClock, start: date, end: date) -> ReplyStats:
    with Session(engine) as session:
        return compute_stats(session=session, start=start, end=end, now=clock.now())


def test_numbers_for_a_seeded_set(engine: Engine, clock: FakeClock) -> None:
    numbers = seed(engine, clock)
    stats = stats_for(engine, clock, date(2026, 10, 1), date(2026, 11, 23))
    t = stats.total
    assert (t.received, t.on_time, t.late, t.open, t.open_overdue) == (7, 1, 3, 3, 2)
    assert t.on_time_rate == 0.25
    assert t.median_hours == (264 + 744) / 2      # of 48, 264, 744 (H), 768
    units = {g.name: g for g in stats.by_unit}
    assert list(units) == ["乙局", "甲局", "丙局", "未指定单位"]   # most received first
    assert (units["甲局"].received, units["甲局"].on_time_rate, units["甲局"].median_hours) == (2, 0.5, 156)
    assert (units["乙局"].open, units["乙局"].open_overdue, units["乙局"].on_time_rate) == (2, 1, 0)
    assert (units["未指定单位"].open_overdue, units["未指定单位"].on_time_rate) == (1, None)
    categories = {g.name: g for g in stats.by_category}
    assert list(categories) == ["找错", "咨询建议", "需查证办理", "异议"]
    assert (categories["找错"].received, categories["找错"].open, categories["找错"].on_time) == (2, 1, 1)
    assert categories["咨询建议"].open_overdue == 1 and categories["咨询建议"].late == 2
    assert stats.open_error_reports == [numbers["C"]]            # G is outside the period
    assert stats.closed_after_month == [numbers["D"]]
    assert stats.open_after_month == [numbers["F"]]


def test_the_period_is_by_beijing_date(engine: Engine, clock: FakeClock) -> None:
    numbers = seed(engine, clock)
    sept = stats_for(engine, clock, date(2026, 9, 30), date(2026, 9, 30))
    assert sept.total.received == 1 and sept.open_error_reports == [numbers["G"]]
    october = stats_for(engine, clock, date(2026, 10, 1), date(2026, 10, 31))
    assert october.total.received == 3                            # D, F, H
    with pytest.raises(InputError, match="晚于结束日期"):
        stats_for(engine, clock, date(2026, 11, 2), date(2026, 11, 1))


@pytest.mark.parametrize(("received", "month_later"), [
    ("2026-10-09T09:00", "2026-11-09T09:00"),
    ("2026-01-31T15:00", "2026-02-28T15:00"),
    ("2026-12-31T23:59", "2027-01-31T23:59"),
])
def test_one_month_after(received: str, month_later: str) -> None:
    assert one_month_after(parse_local(received)) == parse_local(month_later)


def test_report_and_xlsx(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    numbers = seed(engine, clock)
    stats = stats_for(engine, clock, date(2026, 10, 1), date(2026, 11, 23))
    text = render_zh(stats)
    assert text.startswith("【互动回应统计】2026年10月1日至11月23日收到的留言（截至 11月23日 09:00）")
    assert "合计：收到 7，按时答复 1，超期答复 3，未答复 3（已超期 2），按时率 25.0%，用时中位数 504.0 小时" in text
    assert f"找错留言未答复：1 条（{numbers['C']}）" in text
    assert f"超过一个月才答复：1 条（{numbers['D']}）" in text
    write_xlsx(stats, tmp_path / "r.xlsx")
    book = load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["汇总", "关注项", "说明"]
    summary = list(book["汇总"].iter_rows(values_only=True))
    assert summary[0][:3] == ("维度", "名称", "收到")
    assert summary[1] == ("合计", "合计", 7, 1, 3, 3, 2, 0.25, 504.0)
    assert ("单位", "甲局", 2, 1, 1, 0, 0, 0.5, 156.0) in summary
    assert ("类别", "异议", 1, 0, 0, 1, 1, None, None) in summary
    flagged = list(book["关注项"].iter_rows(values_only=True))
    assert [(r[0], r[1]) for r in flagged[1:]] == [("找错留言未答复", numbers["C"]),
                                                   ("超过一个月才答复", numbers["D"]),
                                                   ("超过一个月仍未答复", numbers["F"])]
    assert flagged[2][4] == datetime(2026, 10, 9, 9, 0)           # Beijing wall-clock time  # noqa: DTZ001
    empty = stats_for(engine, clock, date(2026, 1, 1), date(2026, 1, 31))
    assert render_zh(empty).endswith("本期没有收到留言。")
    with pytest.raises(InputError, match="无法写入"):
        write_xlsx(stats, tmp_path / "missing" / "r.xlsx")


@freeze_time("2026-11-23 01:00:00")
def test_cli_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    numbers = seed(engine, FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC)))
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    parser = argparse.ArgumentParser(prog="dutybot")
    parser.add_argument("--config")
    register(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    out = run("replies", "stats")                                 # default: this month to date
    assert "2026年11月1日至11月23日" in out and "合计：收到 4，" in out
    out = run("replies", "stats", "--from", "2026-10-01", "--to", "2026-11-23",
              "--xlsx", str(tmp_path / "s.xlsx"))
    assert f"（{numbers['D']}）" in out and f"已写入 {tmp_path / 's.xlsx'}" in out
    assert (tmp_path / "s.xlsx").exists()
    with pytest.raises(InputError, match="无效的开始日期"):
        run("replies", "stats", "--from", "2026-13-01")
