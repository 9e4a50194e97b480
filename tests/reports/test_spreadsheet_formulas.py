"""Formula injection (issue 16 item 5): every xlsx the product writes — the reply
statistics, the roster export, the incident register, the duty log — keeps what people
typed as text. A summary ``=HYPERLINK("http://x","y")`` or a unit ``=1+1`` comes out as a
string cell (data type ``s``, Excel's quote prefix), never as a formula; numbers stay numbers.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import SHANGHAI, FakeClock, parse_local
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from incidents.models import Incident, IncidentStatus
from incidents.stats import write_register_xlsx
from people.models import Person, Role
from replies.flows import ReminderPolicy
from replies.importer import import_items
from replies.stats import compute_stats
from replies.stats import write_xlsx as write_reply_xlsx
from reports.dutylog import build_log
from reports.dutylog import write_xlsx as write_log_xlsx
from roster.export import export_xlsx
from roster.models import Handover, ReadingRound, RoundStatus
from roster.service import find_shift
from tests.factories import make_person, roster_days

LINK = '=HYPERLINK("http://x","y")'
SUM = "=1+1"


def formula_free(path: Path) -> dict[str, list[tuple[object, str]]]:
    """Each sheet's (value, data type) of every text cell starting with a formula
    character; and the file holds no ``<f>`` (formula) element at all."""
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in z.read(name).decode(), name
    found: dict[str, list[tuple[object, str]]] = {}
    for sheet in load_workbook(path):
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                    assert cell.data_type == "s" and cell.data_type != "f" and cell.quotePrefix, cell
                    found.setdefault(sheet.title, []).append((cell.value, cell.data_type))
    return found


def test_reply_statistics(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    rows = [{"类别": "找错", "收到时间": "2026-11-19 10:00", "摘要": LINK, "单位": SUM},
            {"类别": "咨询", "收到时间": "2026-11-20 10:00", "摘要": "+8613800000000 来电", "单位": "@甲局"}]
    with Session(engine) as session:
        import_items(session=session, rows=rows, calendar=WorkdayCalendar(), profile=load_profile("default"),
                     policy=ReminderPolicy(), now=clock.now(), actor="t")
        session.commit()
        stats = compute_stats(session=session, start=date(2026, 11, 1), end=date(2026, 11, 23), now=clock.now())
    path = tmp_path / "replies.xlsx"
    write_reply_xlsx(stats, path)
    found = formula_free(path)
    assert (SUM, "s") in found["汇总"] and ("@甲局", "s") in found["汇总"]
    assert (LINK, "s") in found["关注项"] and (SUM, "s") in found["关注项"]
    unit_row = next(r for r in load_workbook(path)["汇总"].iter_rows() if r[1].value == SUM)
    assert unit_row[2].value == 1 and unit_row[2].data_type == "n"       # the count is a number


def test_roster_export(engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    with Session(engine) as session:
        make_person(session, LINK, roles=(Role.officer,), now=clock.now(), phone="13800000001")
        make_person(session, SUM, roles=(Role.leader,), now=clock.now(), phone="13800000002")
        roster_days(session, start="2026-12-01", end="2026-12-01", officers=[LINK], leaders=[SUM], now=clock.now())
        session.commit()
        path = tmp_path / "roster.xlsx"
        assert export_xlsx(session=session, start=date(2026, 12, 1), end=date(2026, 12, 1), path=path) >= 1
    found = formula_free(path)
    assert (SUM, "s") in found["值班表"] and (LINK, "s") in found["值班表"]


def test_incident_register(engine: Engine, tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    with Session(engine) as session:
        session.add(Incident(number="INC-20261120-001", type="opinion", unit=SUM, site="-网站",
                             playbook="opinion@1", reported_at=datetime(2026, 11, 20, 8, 0, tzinfo=SHANGHAI),
                             status=IncidentStatus.closed, description=LINK, conclusion="+已处置"))
        session.commit()
        path = tmp_path / "register.xlsx"
        write_register_xlsx(session=session, start=date(2026, 11, 1), end=date(2026, 11, 23), path=path, now=now)
    found = formula_free(path)
    assert {(LINK, "s"), (SUM, "s"), ("-网站", "s"), ("+已处置", "s")} <= set(found["台账"])
    assert (SUM, "s") in found["统计"]


def test_duty_log(engine: Engine, tmp_path: Path) -> None:
    now = parse_local("2026-09-29T12:00").astimezone(UTC)
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=now)
        make_person(session, "-李强", roles=(Role.leader,), now=now)
        roster_days(session, start="2026-09-30", end="2026-09-30", officers=["王芳"], leaders=["-李强"], now=now)
        shift = find_shift(session=session, day=date(2026, 9, 30), name="白班")
        wang = session.exec(select(Person).where(Person.name == "王芳")).one()
        at = parse_local("2026-09-30T10:00").astimezone(UTC)
        session.add_all([
            ReadingRound(shift_id=shift.id, seq=1, prompt_at=at, due_at=at, status=RoundStatus.anomaly,
                         answered_at=at, note=SUM),
            Handover(shift_id=shift.id, person_id=wang.id, at=at, note=LINK, summary="@读网：1 次")])
        session.commit()
        log = build_log(session=session, start=date(2026, 9, 30), end=date(2026, 9, 30),
                        now=parse_local("2026-10-02T09:00").astimezone(UTC), checkin_window=parse_local(
                            "2026-10-02T09:30") - parse_local("2026-10-02T09:00"))
    path = tmp_path / "log.xlsx"
    write_log_xlsx(log, path)
    found = formula_free(path)
    assert (LINK, "s") in found["班次"] and ("-李强", "s") in found["班次"]
    assert (SUM, "s") in found["读网"] and {(LINK, "s"), ("@读网：1 次", "s")} <= set(found["交班"])
