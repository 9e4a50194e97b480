"""Incident statistics over a seeded set (counts, medians, overdue steps per type and unit,
the period boundary), the register xlsx, and the CLI."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.cli import main
from core.clock import SHANGHAI
from core.db import make_engine, upgrade
from core.errors import InputError
from incidents.models import Incident, IncidentStatus, IncidentStep, StepStatus
from incidents.report import step_overdue
from incidents.stats import (
    REGISTER_COLUMNS,
    IncidentStats,
    compute_incident_stats,
    render_zh,
    write_register_xlsx,
)
from tests.factories import make_person

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
START, END = date(2026, 11, 1), date(2026, 11, 23)
M = timedelta(minutes=1)


def sh(month: int, day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=SHANGHAI)


def wall(month: int, day: int, hh: int, mm: int) -> datetime:
    """Beijing wall-clock time as Excel holds it (naive)."""
    return sh(month, day, hh, mm).replace(tzinfo=None)


def _incident(session: Session, n: int, type_: str, unit: str, reported: datetime,
              status: IncidentStatus, **kw: object) -> Incident:
    fields: dict[str, object] = {"description": f"事件{n}"} | kw
    incident = Incident(number=f"INC-202611{n:02d}-001", type=type_, unit=unit, site="区政府门户网站",
                        playbook=f"{type_}@1", reported_at=reported, status=status, **fields)
    session.add(incident)
    session.flush()
    return incident


def _step(incident: Incident, seq: int, due: datetime | None, status: StepStatus = StepStatus.pending,
          done_at: datetime | None = None, optional: bool = False) -> IncidentStep:
    assert incident.id is not None
    return IncidentStep(incident_id=incident.id, seq=seq, key=f"s{seq}", title=f"步骤{seq}",
                        rule_id="SENS-3", citation="梁平办法第二十四条", owner_role="officer",
                        due_at=due, status=status, done_at=done_at, optional=optional)


def seed(engine: Engine) -> None:
    with Session(engine) as session:
        wang = make_person(session, "王芳", now=NOW)
        li = make_person(session, "李强", now=NOW)
        t = sh(11, 1, 0, 5)          # first minutes of the period
        a = _incident(session, 1, "sensitive", "甲局", t, IncidentStatus.closed,
                      reporter_id=wang.id, owner_id=li.id, acknowledged_at=t + 10 * M,
                      resolved_at=t + 120 * M, closed_at=sh(11, 2, 10, 0), conclusion="已删除")
        session.add_all([_step(a, 1, t + 30 * M, StepStatus.done, t + 45 * M),     # done late
                         _step(a, 2, t + 200 * M, StepStatus.done, t + 100 * M)])
        t = sh(11, 3, 10, 0)
        b = _incident(session, 2, "sensitive", "甲局", t, IncidentStatus.resolved,
                      acknowledged_at=t + 30 * M, resolved_at=t + 240 * M)
        session.add(_step(b, 1, t + 60 * M, StepStatus.done, t + 60 * M))         # exactly on time
        t = sh(11, 10, 10, 0)
        c = _incident(session, 3, "site_down", "乙局", t, IncidentStatus.handling,
                      acknowledged_at=t + 20 * M, owner_id=wang.id)
        session.add_all([_step(c, 1, t + 30 * M),                                  # pending, overdue
                         _step(c, 2, sh(11, 30, 0, 0)),                            # not yet due
                         _step(c, 3, t + 30 * M, optional=True),                   # optional: not counted
                         _step(c, 4, t + 30 * M, StepStatus.skipped),
                         _step(c, 5, None)])
        t = sh(11, 20, 8, 0)
        d = _incident(session, 4, "opinion", "乙局", t, IncidentStatus.reported,
                      description='=HYPERLINK("http://example.com","点此")')
        session.add(_step(d, 1, sh(11, 25, 0, 0)))
        t = sh(11, 21, 9, 0)
        e = _incident(session, 5, "tamper", "", t, IncidentStatus.false_alarm,
                      acknowledged_at=t + 5 * M, closed_at=t + 60 * M, status_reason="监测系统误报")
        session.add(_step(e, 1, t + 30 * M))                                       # withdrawn: not counted
        _incident(session, 6, "counterfeit", "甲局", sh(10, 31, 23, 59), IncidentStatus.reported)
        _incident(session, 7, "hack", "丙局", sh(11, 24, 0, 0), IncidentStatus.reported)
        session.commit()


def stats_for(engine: Engine, start: date = START, end: date = END) -> IncidentStats:
    with Session(engine) as session:
        return compute_incident_stats(session=session, start=start, end=end, now=NOW)


def test_numbers_for_a_seeded_set(engine: Engine) -> None:
    seed(engine)
    stats = stats_for(engine)
    t = stats.total
    assert (t.count, t.open, t.overdue_steps) == (5, 3, 2)
    assert t.mtta == 15 * M                     # median of 5, 10, 20, 30 minutes
    assert t.mttr == 180 * M                    # median of 2 h and 4 h
    units = {g.name: g for g in stats.by_unit}
    assert [g.name for g in stats.by_unit] == ["乙局", "甲局", "未指定单位"]
    assert (units["甲局"].count, units["甲局"].open, units["甲局"].overdue_steps) == (2, 1, 1)
    assert (units["甲局"].mtta, units["甲局"].mttr) == (20 * M, 180 * M)
    assert (units["乙局"].count, units["乙局"].open, units["乙局"].overdue_steps) == (2, 2, 1)
    assert (units["乙局"].mtta, units["乙局"].mttr) == (20 * M, None)
    assert (units["未指定单位"].count, units["未指定单位"].open, units["未指定单位"].mtta) == (1, 0, 5 * M)
    types = {g.name: g for g in stats.by_type}
    assert len(stats.by_type) == 8 and stats.by_type[0].name == "无法访问"
    assert (types["敏感信息"].count, types["敏感信息"].overdue_steps, types["敏感信息"].mttr) == (2, 1, 180 * M)
    assert (types["无法访问"].count, types["无法访问"].open, types["无法访问"].overdue_steps) == (1, 1, 1)
    assert types["假冒账号"].count == 0 and types["攻击/盗号"].count == 0     # outside the period


def test_period_boundaries(engine: Engine) -> None:
    seed(engine)
    assert stats_for(engine, date(2026, 10, 31), date(2026, 10, 31)).total.count == 1
    assert stats_for(engine, date(2026, 11, 24), date(2026, 11, 24)).total.count == 1
    assert stats_for(engine, date(2026, 11, 1), date(2026, 11, 1)).total.count == 1
    with pytest.raises(InputError, match="晚于结束日期"):
        stats_for(engine, date(2026, 11, 2), date(2026, 11, 1))


def test_render_zh(engine: Engine) -> None:
    assert "本期没有登记事件" in render_zh(stats_for(engine))
    seed(engine)
    text = render_zh(stats_for(engine))
    assert text.splitlines()[0] == "【事件处置统计】2026年11月1日至11月23日报告的事件（截至 11月23日 09:00）"
    assert ("合计：事件 5 起，未结案 3 起，确认用时中位数 15分钟，处置用时中位数 3小时，超期步骤 2 个"
            in text)
    assert "  乙局：事件 2 起，未结案 2 起，确认用时中位数 20分钟，处置用时中位数 —，超期步骤 1 个" in text
    assert "  敏感信息：事件 2 起" in text and "假冒账号" not in text


def test_step_overdue_rules() -> None:
    reported = sh(11, 1, 9, 0)
    closed = Incident(number="X", type="sensitive", description="d", playbook="p",
                      reported_at=reported, status=IncidentStatus.closed, closed_at=sh(11, 2, 9, 0))
    step = IncidentStep(incident_id=1, seq=1, key="k", title="t", rule_id="SENS-3", citation="c",
                        owner_role="officer", due_at=sh(11, 1, 12, 0))
    assert step_overdue(step, incident=closed, now=NOW)              # pending past due at closing
    step.due_at = sh(11, 3, 12, 0)
    assert not step_overdue(step, incident=closed, now=NOW)          # closed before it fell due
    closed.status = IncidentStatus.handling
    assert step_overdue(step, incident=closed, now=NOW)              # still open: measured at now
    step.status, step.done_at = StepStatus.done, sh(11, 3, 12, 1)
    assert step_overdue(step, incident=closed, now=NOW)              # done a minute late
    step.done_at = step.due_at
    assert not step_overdue(step, incident=closed, now=NOW)


def test_register_xlsx(engine: Engine, tmp_path: Path) -> None:
    seed(engine)
    path = tmp_path / "台账.xlsx"
    with Session(engine) as session:
        write_register_xlsx(session=session, start=START, end=END, path=path, now=NOW)
    book = load_workbook(path)
    assert book.sheetnames == ["台账", "统计", "说明"]
    rows = list(book["台账"].iter_rows(values_only=True))
    assert rows[0] == REGISTER_COLUMNS
    assert [r[0] for r in rows[1:]] == [f"INC-202611{n:02d}-001" for n in range(1, 6)]
    assert rows[1] == ("INC-20261101-001", wall(11, 1, 0, 5), "敏感信息", "一般", "本单位发现",
                       "区政府门户网站", None, "事件1", "甲局", "王芳", "李强", "已结案",
                       wall(11, 1, 0, 15), wall(11, 1, 2, 5),
                       wall(11, 2, 10, 0), "已删除", 1)
    assert rows[3][11:17] == ("处置中", wall(11, 10, 10, 20), None, None, None, 1)
    assert rows[5][8] == "未指定单位" and rows[5][11] == "已标记为误报" and rows[5][15] == "监测系统误报"
    formula = book["台账"].cell(5, 8)                               # user text is never a formula
    assert formula.value == '=HYPERLINK("http://example.com","点此")' and formula.data_type == "s"
    summary = list(book["统计"].iter_rows(values_only=True))
    assert summary[1] == ("合计", "合计", 5, 3, 15.0, 180.0, 2)
    assert ("单位", "乙局", 2, 2, 20.0, None, 1) in summary
    assert ("类型", "敏感信息", 2, 1, 20.0, 180.0, 1) in summary
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


@freeze_time("2026-11-23 01:00:00")
def test_cli_register_and_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    seed(engine)
    engine.dispose()
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    out_file = tmp_path / "reg.xlsx"
    assert main(["incident", "register", "--xlsx", str(out_file)]) == 0      # default: this month
    assert f"已写入事件台账 {out_file}：2026-11-01 至 2026-11-23 报告的事件 5 起。" in capsys.readouterr().out
    assert load_workbook(out_file)["台账"].max_row == 6
    assert main(["incident", "register", "--from", "2026-10-01", "--to", "2026-11-30",
                 "--xlsx", str(out_file)]) == 0
    assert "报告的事件 7 起" in capsys.readouterr().out
    assert main(["incident", "stats"]) == 0
    assert "合计：事件 5 起，未结案 3 起" in capsys.readouterr().out
    assert main(["incident", "stats", "--from", "2026-13-01"]) == 2
    assert "无效的开始日期" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:                                # --xlsx is required
        main(["incident", "register"])
    assert exited.value.code == 2
    assert "缺少参数" in capsys.readouterr().err
