"""Spot-checks drawn ahead at random times (DUTY-4, ``[roster.spotcheck_plan]``): N per
week inside the windows, stored as due items that survive a restart, fired as checks the
units' officers learn of only then; the plan is shown to admins only. A seeded Random and
a fake clock, never real time."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from bot.scheduler import Scheduler
from core.clock import FakeClock, local, parse_local
from core.outbox import OutboxMessage
from core.profiles import load_profile
from core.schedule import DueItem, DueStatus
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.models import DutyRole, Shift, SpotCheck, SpotCheckStatus
from roster.service import assign
from roster.spotcheck import register_spotchecks
from roster.spotcheck_plan import KIND, SpotCheckPlan, plan_checks, register_spotcheck_plan
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)
PROFILE = load_profile("default")
MONDAY = "2026-11-23T00:00"
WINDOWS = ((time(8, 30), time(17, 30)), (time(20, 0), time(23, 0)))
PLAN = SpotCheckPlan(per_week=2, windows=WINDOWS, units=("区教育局", "区卫健局"), confirm=timedelta(minutes=15))


def staff(engine: Engine, now: datetime) -> None:
    """Three weeks from 11-22: 王芳 (区教育局) and 陈晨 (区卫健局) on every shift, their leaders
    李强 and 周明; 张伟 the admin."""
    with Session(engine) as session:
        for name, role, unit in (("张伟", Role.admin, "区政府办公室"), ("王芳", Role.officer, "区教育局"),
                                 ("陈晨", Role.officer, "区卫健局"), ("李强", Role.leader, "区教育局"),
                                 ("周明", Role.leader, "区卫健局")):
            make_person(session, name, roles=(role,), now=now, unit=unit)
        roster_days(session, start="2026-11-22", end="2026-12-13", officers=["王芳"], leaders=["李强"], now=now)
        people = {p.name: p for p in session.exec(select(Person))}
        for shift in session.exec(select(Shift)):
            for name, role in (("陈晨", DutyRole.officer), ("周明", DutyRole.leader)):
                assign(session=session, shift=shift, person=people[name], role=role, source="manual", now=now,
                       actor="test")
        session.commit()


def scheduler(engine: Engine, clock: FakeClock, plan: SpotCheckPlan, seed: int) -> Scheduler:
    sched = Scheduler(engine=engine, clock=clock)
    register_spotchecks(sched, profile=PROFILE)
    register_spotcheck_plan(sched, plan=plan, profile=PROFILE, calendar=CAL, rng=random.Random(seed))
    return sched


def planned(engine: Engine, status: DueStatus | None = DueStatus.pending) -> list[DueItem]:
    with Session(engine) as session:
        stmt = select(DueItem).where(DueItem.kind == KIND)
        if status is not None:
            stmt = stmt.where(DueItem.status == status)
        return list(session.exec(stmt.order_by(col(DueItem.due_at))))


def in_windows(at: datetime) -> bool:
    clock = local(at).time()
    return any(a <= clock < b for a, b in WINDOWS)


def told(engine: Engine, name: str) -> list[OutboxMessage]:
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.person_id == person.id)
                                 .order_by(col(OutboxMessage.id))))


def test_checks_are_drawn_inside_the_windows_n_per_week_and_fire_as_checks(engine: Engine) -> None:
    clock = FakeClock(parse_local(MONDAY))
    staff(engine, clock.now())
    sched = scheduler(engine, clock, PLAN, seed=7)
    sched.tick()                                   # the planner runs at start
    items = planned(engine)
    weeks: dict[str, dict[str, int]] = {}
    for item in items:
        assert in_windows(item.due_at), local(item.due_at)
        week = item.ref.removeprefix("spotcheck_plan:")
        unit = item.data()["unit"]
        weeks.setdefault(week, {}).setdefault(unit, 0)
        weeks[week][unit] += 1
    assert weeks == {"2026-W48": {"区教育局": 2, "区卫健局": 2}, "2026-W49": {"区教育局": 2, "区卫健局": 2}}
    assert all(parse_local("2026-11-23T00:00") <= i.due_at < parse_local("2026-12-07T00:00") for i in items)
    # Drawn is not told: the officers hear nothing until a check starts.
    assert told(engine, "王芳") == [] and told(engine, "陈晨") == []

    # A restart (a new scheduler, another random generator) keeps what was drawn.
    before = [(i.key, i.due_at) for i in planned(engine)]
    sched = scheduler(engine, clock, PLAN, seed=99)
    first = min(i.due_at for i in items)
    sched.advance_to(first - timedelta(minutes=1))
    assert [(i.key, i.due_at) for i in planned(engine)] == before
    assert told(engine, "王芳") == [] and told(engine, "陈晨") == []

    # The first check fires at its time and asks that unit's officer on duty.
    sched.advance_to(first)
    unit = next(i for i in items if i.due_at == first).data()["unit"]
    officer = "王芳" if unit == "区教育局" else "陈晨"
    with Session(engine) as session:
        [check] = session.exec(select(SpotCheck)).all()
        assert check.unit == unit and check.requested_by_id is None and check.status == SpotCheckStatus.pending
    [asked] = told(engine, officer)
    assert asked.text.startswith(f"【在岗抽查】区政府办公室正在抽查{unit}") and asked.created_at == first
    # Nobody confirms: the result goes to the admin (no one asked in person) and the unit's leader.
    sched.advance_to(first + timedelta(minutes=16))
    assert told(engine, "张伟")[-1].text.startswith(f"【抽查结果】{unit}")
    # The whole week: every drawn check of it has started.
    sched.advance_to(parse_local("2026-11-30T00:05"))
    with Session(engine) as session:
        checks = session.exec(select(SpotCheck)).all()
    assert sorted(c.unit for c in checks) == ["区卫健局", "区卫健局", "区教育局", "区教育局"]
    assert all(in_windows(c.asked_at) for c in checks)
    # Monday's planner run draws the week after next; the coming week is not redrawn.
    sched.advance_to(parse_local("2026-11-30T00:15"))
    weeks_now = {i.ref for i in planned(engine)}
    assert weeks_now == {"spotcheck_plan:2026-W49", "spotcheck_plan:2026-W50"}
    assert [(i.key, i.due_at) for i in planned(engine) if i.ref.endswith("W49")] == \
        [b for b in before if "W49" in b[0]]


def test_without_units_each_check_picks_a_unit_on_duty_at_the_time(engine: Engine) -> None:
    clock = FakeClock(parse_local(MONDAY))
    staff(engine, clock.now())
    plan = SpotCheckPlan(per_week=3, windows=WINDOWS, confirm=timedelta(minutes=15))
    sched = scheduler(engine, clock, plan, seed=1)
    sched.tick()
    week = [i for i in planned(engine) if i.ref.endswith("W48")]
    assert len(week) == 3 and all(i.data()["unit"] is None for i in week)
    sched.advance_to(parse_local("2026-11-30T00:00"))
    with Session(engine) as session:
        units = [c.unit for c in session.exec(select(SpotCheck))]
    assert len(units) == 3 and set(units) <= {"区教育局", "区卫健局"}


def test_a_week_under_way_gets_its_share_and_changed_settings_redraw(engine: Engine) -> None:
    clock = FakeClock(parse_local("2026-11-26T18:00"))      # Thursday evening
    staff(engine, clock.now())
    with Session(engine) as session:
        plan_checks(session=session, plan=PLAN, calendar=CAL, now=clock.now(), rng=random.Random(3))
        session.commit()
    this_week = [i for i in planned(engine) if i.ref.endswith("W48")]
    assert len(this_week) <= 2 and all(i.due_at > clock.now() for i in this_week)   # 39 of 84 window hours left
    assert len([i for i in planned(engine) if i.ref.endswith("W49")]) == 4
    # The same settings again: nothing new. Other settings: the rest of each week redrawn.
    with Session(engine) as session:
        assert plan_checks(session=session, plan=PLAN, calendar=CAL, now=clock.now(), rng=random.Random(4)) == 0
        session.commit()
    more = SpotCheckPlan(per_week=5, windows=WINDOWS, units=("区教育局",), confirm=timedelta(minutes=15))
    with Session(engine) as session:
        plan_checks(session=session, plan=more, calendar=CAL, now=clock.now(), rng=random.Random(5))
        session.commit()
    assert {i.data()["unit"] for i in planned(engine)} == {"区教育局"}
    assert len([i for i in planned(engine) if i.ref.endswith("W49")]) == 5
    # Switched off: nothing is left pending.
    with Session(engine) as session:
        plan_checks(session=session, plan=SpotCheckPlan(), calendar=CAL, now=clock.now())
        session.commit()
    assert planned(engine) == []
    # Switched on again: drawn anew.
    with Session(engine) as session:
        plan_checks(session=session, plan=PLAN, calendar=CAL, now=clock.now(), rng=random.Random(6))
        session.commit()
    assert len([i for i in planned(engine) if i.ref.endswith("W49")]) == 4


async def test_only_admins_see_the_plan(engine: Engine) -> None:
    clock = FakeClock(parse_local(MONDAY))
    staff(engine, clock.now())
    settings = load_settings(None, env={})
    settings.roster.spotcheck_plan.per_week = 2
    settings.roster.spotcheck_plan.windows = ["08:30-17:30", "20:00-23:00"]
    settings.roster.spotcheck_plan.units = ["区教育局"]
    settings.roster.spotcheck_plan.seed = "drill"
    adapter = MemoryAdapter()
    chat = MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)
    await chat.app.advance_to(parse_local("2026-11-23T00:01"))
    shown = await chat.send("/spotcheck plan", as_="张伟")
    assert shown.startswith("定时抽查计划（仅管理员可见，请勿外传）：单位：区教育局，每个单位每周 2 次")
    lines = [line for line in shown.splitlines() if "｜区教育局" in line]
    assert len(lines) == 4                               # this week and the next
    assert "仅管理员可查看" in await chat.send("/spotcheck plan", as_="王芳")
    assert "仅管理员可查看" in await chat.send("抽查 计划", as_="李强")
    assert [m for m in chat.messages("王芳") if m.startswith("【在岗抽查】")] == []
