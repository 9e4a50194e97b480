"""When next year's holiday data arrives: the year becomes known, what was counted as 暂定
is re-timed and its owners are told, and a local override file still wins.

The suite caps ``chinese-calendar`` at 2026 (tests/conftest.py). Here a release that has
gained 2027 is simulated with :class:`Release2027`. Its 2027 arrangement is invented for
the test (New Year 01-01..01-04, so Monday 01-04 is a rest day); it is not the State
Council's notice, which is not published yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core import workdays
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.workdays import HolidayPackage, WorkdayCalendar, load_override_dir
from incidents.models import Incident, IncidentStep
from people.models import Role
from replies.models import ReplyItem
from tests.conftest import PACKAGE_KNOWN_THROUGH
from tests.factories import make_person

NEXT_YEAR = PACKAGE_KNOWN_THROUGH + 1
SIMULATED_NEW_YEAR = {date(NEXT_YEAR, 1, d) for d in (1, 2, 3, 4)}


class Release2027(HolidayPackage):
    """The package as a release that knows ``NEXT_YEAR`` would answer (simulated data)."""

    def __init__(self) -> None:
        super().__init__(through=PACKAGE_KNOWN_THROUGH)

    def covers(self, year: int) -> bool:
        return year == NEXT_YEAR or super().covers(year)

    def is_workday(self, d: date) -> bool:
        if d.year != NEXT_YEAR:
            return super().is_workday(d)
        return d not in SIMULATED_NEW_YEAR and d.weekday() < 5

    def holiday_name(self, d: date) -> str | None:
        if d.year != NEXT_YEAR:
            return super().holiday_name(d)
        return "元旦" if d in SIMULATED_NEW_YEAR else None


def at(text: str) -> datetime:
    return parse_local(text)


def test_a_release_with_next_year_makes_it_known() -> None:
    today = WorkdayCalendar()
    assert today.coverage(NEXT_YEAR) is None
    before = today.add_workdays(at("2026-12-30T10:00"), 3)
    assert before.provisional and before.last_day == date(NEXT_YEAR, 1, 5)

    updated = WorkdayCalendar(package=Release2027())
    assert updated.coverage(NEXT_YEAR) == "package"
    after = updated.add_workdays(at("2026-12-30T10:00"), 3)
    # 12-31 works; 01-01..01-04 rest (simulated); 01-05 and 01-06 work.
    assert not after.provisional and after.last_day == date(NEXT_YEAR, 1, 6)
    assert "暂定" not in after.zh()
    assert updated.day(date(NEXT_YEAR, 1, 4)).name == "元旦"


def test_an_override_file_still_wins_over_the_new_release(tmp_path: Path) -> None:
    # The office's own file says Monday 01-04 is a working day (say, a local decision).
    (tmp_path / f"{NEXT_YEAR}.toml").write_text(
        f'notice = "本地测试通知"\n[holidays]\n"元旦" = ["{NEXT_YEAR}-01-01..{NEXT_YEAR}-01-03"]\n'
        f'[workdays]\n"元旦" = ["{NEXT_YEAR}-01-04"]\n', encoding="utf-8")
    cal = WorkdayCalendar(overrides=load_override_dir(tmp_path), package=Release2027())
    assert cal.coverage(NEXT_YEAR) == "override"
    assert cal.is_workday(date(NEXT_YEAR, 1, 4))
    assert cal.add_workdays(at("2026-12-30T10:00"), 3).last_day == date(NEXT_YEAR, 1, 5)
    # Days the file does not list still come from the release.
    assert cal.day(date(NEXT_YEAR, 3, 1)).source == "package"


# -- re-timing through the running bot ------------------------------------------------


def start_app(engine: Engine, clock: FakeClock, adapter: MemoryAdapter) -> MemoryChat:
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋"})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)


@pytest.fixture
def office(engine: Engine) -> tuple[Engine, FakeClock]:
    clock = FakeClock(at("2026-12-30T10:00"))
    with Session(engine) as session:
        for name, role, unit in (("王芳", Role.officer, "区政府办"), ("李强", Role.leader, "区政府办"),
                                 ("赵敏", Role.principal, "区政府办"), ("张伟", Role.admin, "区政府办"),
                                 ("刘洋", Role.officer, "区政府办公室")):
            make_person(session, name, roles=(role,), now=clock.now(), unit=unit)
        session.commit()
    return engine, clock


def texts(adapter: MemoryAdapter) -> list[str]:
    return [d.text for d in adapter.delivered]


def retime_notices(chat: MemoryChat, name: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith("【期限调整】")]


async def test_new_year_data_retimes_provisional_deadlines_and_tells_the_owner(
        office: tuple[Engine, FakeClock], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, clock = office
    adapter = MemoryAdapter()
    chat = start_app(engine, clock, adapter)
    reply = await chat.send("/reply new 找错 首页链接失效", as_="王芳")
    assert "2027年1月5日" in reply and "暂定" in reply
    msg = reply.split("已登记 ")[1].split("（")[0]
    clock.set(at("2026-12-31T10:00"))
    opened = await chat.send("/incident new 敏感信息 @区政府办 https://www.example.gov.cn/a.html "
                             "公示名单含身份证号", as_="刘洋")
    inc = opened.split("已登记 ")[1].split("（")[0]
    # SENS-3: 1 working day; 01-01 is a fixed holiday, then the weekend: Monday 01-04 (暂定).
    assert "1月4日 24:00（暂定）" in opened

    # Still no data for 2027: the periodic re-timing changes nothing and says nothing.
    await chat.app.advance_to(at("2026-12-31T10:20"))
    with Session(engine) as session:
        item = session.exec(select(ReplyItem).where(ReplyItem.number == msg)).one()
        assert item.provisional and item.due_at == at("2027-01-06T00:00").astimezone(UTC)
    assert retime_notices(chat, "王芳") == []

    # The admin upgrades chinese-calendar to a release with 2027 and restarts the bot.
    monkeypatch.setattr(workdays, "PACKAGE", Release2027())
    chat = start_app(engine, clock, adapter)
    await chat.app.advance_to(at("2026-12-31T10:35"))

    with Session(engine) as session:
        item = session.exec(select(ReplyItem).where(ReplyItem.number == msg)).one()
        assert not item.provisional
        assert item.due_last_day == date(2027, 1, 6)
        assert item.due_at == at("2027-01-07T00:00").astimezone(UTC)
        incident = session.exec(select(Incident).where(Incident.number == inc)).one()
        first = session.exec(select(IncidentStep).where(IncidentStep.incident_id == incident.id)
                             .order_by(IncidentStep.seq)).first()
        assert first is not None and not first.provisional
        assert first.due_last_day == date(2027, 1, 5)
        timeline = session.exec(select(AuditEvent).where(AuditEvent.entity_id == inc,
                                                         AuditEvent.action == "step_retimed")).all()
        assert len(timeline) == 1 and "调整为 1月5日 24:00" in str(timeline[0].details().get("zh"))

    notices = [m for m in retime_notices(chat, "王芳") if msg in m]
    assert len(notices) == 1
    assert "原截止：1月5日 24:00（暂定）" in notices[0] and "截止：1月6日 24:00" in notices[0]
    assert "暂定" not in notices[0].split("原截止：")[1].split("\n", 1)[1]
    assert "暂定" not in await chat.send("/reply list", as_="王芳")
    # The incident step's owners hear of the move with the new date and the article.
    step_notices = [m for m in texts(adapter) if "【期限调整】" in m and inc in m]
    assert step_notices and all("新截止：1月5日 24:00（依据：" in m for m in step_notices)

    # Nothing is said twice: the next runs find nothing provisional.
    sent = len(texts(adapter))
    await chat.app.advance_to(at("2026-12-31T11:30"))
    assert [m for m in texts(adapter)[sent:] if "【期限调整】" in m] == []

    # The reminders moved with the deadline: the due-day reminder comes on 01-06, not 01-05.
    await chat.app.advance_to(at("2027-01-05T23:00"))
    assert not any("今天到期" in m and msg in m for m in chat.messages("王芳"))
    await chat.app.advance_to(at("2027-01-06T09:01"))
    assert any("今天到期" in m and msg in m for m in chat.messages("王芳"))
