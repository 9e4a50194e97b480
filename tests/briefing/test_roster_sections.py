"""The roster in the daily briefing: today's duty first, then gaps."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.config import load_settings
from briefing.service import build_daily
from core.clock import parse_local
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.models import DutyRole, Shift
from roster.service import unassign
from tests.factories import make_person, roster_days

SETTINGS = load_settings(None, env={})


def test_todays_duty_comes_first_and_gaps_are_listed(engine: Engine) -> None:
    now = parse_local("2026-11-23T08:00")
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=now, phone="13800000001")
        make_person(session, "李强", roles=(Role.leader,), now=now, phone="13900000002")
        roster_days(session, start="2026-11-23", end="2026-11-24", officers=["王芳"], leaders=["李强"], now=now)
        night = session.exec(select(Shift).where(Shift.day == date(2026, 11, 24), Shift.name == "夜班")).one()
        leader = session.exec(select(Person).where(Person.name == "李强")).one()
        unassign(session=session, shift=night, person=leader, role=DutyRole.leader, now=now, actor="test")
        session.commit()
        built = build_daily(session=session, now=parse_local("2026-11-23T08:30"),
                            calendar=WorkdayCalendar.from_dir(None), settings=SETTINGS.briefing)
    keys = [s.key for s in built.sections]
    assert keys[0] == "roster.today"
    text = built.text()
    assert "【今日值班】\n· 白班 08:30–17:30｜值班员：王芳 13800000001｜带班领导：李强 13900000002" in text
    gaps = built.section("roster.gaps")
    assert gaps is not None and gaps.headline == "【值班空缺】2 处"
    assert "11月25日（星期三）：尚未排班" in gaps.items[0]
    assert "夜班 17:30–次日08:30：缺带班领导" in gaps.items[1]
    assert "概况：值班空缺2" in text
