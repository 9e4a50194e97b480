"""Routine reminders wait for office hours (issue 14 item 4): an overdue public reply that
falls due on a holiday Saturday is reminded on the next working morning, its leaders and
principal later from there — with the clock moved, never slept."""

from __future__ import annotations

from datetime import UTC, date, time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, parse_local
from core.errors import ConfigError
from core.office_hours import OfficeHours
from core.workdays import WorkdayCalendar
from people.models import Role
from replies.flows import ReminderPolicy, schedule_reminders, stage_times
from replies.models import ReplyItem
from tests.factories import make_person

CALENDAR = WorkdayCalendar()
# Due at the end of Saturday 2026-10-03, a National Day holiday (10-01..10-07).
SATURDAY_DUE = parse_local("2026-10-04T00:00")


def test_stages_outside_office_hours_move_to_the_next_working_morning() -> None:
    item = ReplyItem(due_at=SATURDAY_DUE, due_last_day=date(2026, 10, 3))
    quiet = ReminderPolicy(office_hours=OfficeHours(CALENDAR, time(9, 0), time(17, 30)))
    times = stage_times(item=item, calendar=CALENDAR, policy=quiet)
    assert times["before"] == parse_local("2026-09-30T09:00")     # already a working morning
    assert times["breach"] == parse_local("2026-10-08T09:00")     # the first working day after the holiday
    assert times["leader"] == parse_local("2026-10-08T13:00")     # 4 hours after the breach went out
    assert times["principal"] == parse_local("2026-10-09T09:00")  # 24 hours later, at opening time
    # Without office hours: at any hour, as before.
    loud = stage_times(item=item, calendar=CALENDAR, policy=ReminderPolicy())
    assert loud["breach"] == SATURDAY_DUE and loud["leader"] == parse_local("2026-10-04T04:00")


def build(engine: Engine, start: str) -> MemoryChat:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        make_person(session, "王芳", roles=(Role.officer,), now=clock.now(), unit="区政府办")
        make_person(session, "李强", roles=(Role.leader,), now=clock.now(), unit="区政府办")
        make_person(session, "赵敏", roles=(Role.principal,), now=clock.now(), unit="区政府办")
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine), adapter)


def tagged(chat: MemoryChat, name: str, tag: str) -> list[str]:
    return [m for m in chat.messages(name) if tag in m]


async def test_an_overdue_reply_due_on_a_holiday_saturday_is_reminded_on_the_next_working_day(
        engine: Engine) -> None:
    chat = build(engine, "2026-09-28T10:00")
    reply = await chat.send("/reply new 咨询 国庆期间办事大厅是否开放", as_="王芳")
    number = reply.split("已登记 ")[1].split("（")[0]
    with Session(engine) as session:   # the deadline falls on Saturday 10-03 (24:00)
        item = session.exec(select(ReplyItem).where(ReplyItem.number == number)).one()
        item.due_at, item.due_last_day = SATURDAY_DUE, date(2026, 10, 3)
        schedule_reminders(session=session, item=item, calendar=chat.app.calendar,
                           policy=chat.app.settings.reply_policy(chat.app.calendar), now=chat.app.clock.now())
        session.commit()
    await chat.app.advance_to(parse_local("2026-10-08T08:59"))
    assert tagged(chat, "王芳", "【已超期】") == [] and tagged(chat, "李强", "超期升级") == []
    await chat.app.advance_to(parse_local("2026-10-08T09:00"))
    assert len(tagged(chat, "王芳", "【已超期】")) == 1 and number in chat.last("王芳")
    assert tagged(chat, "王芳", "今天到期") == []        # never "due today" after the deadline
    await chat.app.advance_to(parse_local("2026-10-08T13:00"))
    assert len(tagged(chat, "李强", "【超期升级·带班领导】")) == 1
    await chat.app.advance_to(parse_local("2026-10-09T08:59"))
    assert tagged(chat, "赵敏", "【超期升级·主要负责人】") == []
    await chat.app.advance_to(parse_local("2026-10-09T09:00"))
    assert len(tagged(chat, "赵敏", "【超期升级·主要负责人】")) == 1
    with Session(engine) as session:
        item = session.exec(select(ReplyItem).where(ReplyItem.number == number)).one()
        assert item.due_at == SATURDAY_DUE.astimezone(UTC)   # the deadline itself never moves


def test_office_hours_are_configured_or_turned_off() -> None:
    settings = load_settings(None, env={})
    policy = settings.reply_policy(CALENDAR)
    assert policy.office_hours is not None and policy.office_hours.zh() == "工作日 09:00–17:30"
    assert settings.incidents.repeat_limit == 2
    off = load_settings(None, env={"DUTYBOT_CALENDAR_OFFICE_HOURS": ""})
    assert off.reply_policy(CALENDAR).office_hours is None and off.office_hours(CALENDAR) is None
    late = load_settings(None, env={"DUTYBOT_CALENDAR_OFFICE_HOURS": "08:30-18:00"})
    assert late.office_hours(CALENDAR) == OfficeHours(CALENDAR, time(8, 30), time(18, 0))
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"DUTYBOT_CALENDAR_OFFICE_HOURS": "18:00-09:00"})
    assert "calendar.office_hours" in str(err.value.problems) and "上班时间应早于下班时间" in str(err.value.problems)
