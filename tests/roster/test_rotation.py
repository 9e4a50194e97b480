"""Generating a fair draft roster, leave, publishing: what an admin and the people on the
roster notice."""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from datetime import date, time
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli.roster_plan import add_commands
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import FakeClock, local, parse_local
from core.db import make_engine, upgrade
from core.errors import DutybotError, InputError, NotFound
from core.outbox import OutboxMessage
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.drafts import Draft, generate_draft, load_draft, publish_draft
from roster.leave import add_leave
from roster.models import DutyRole, Shift, ShiftAssignment
from roster.patterns import ShiftPatterns, ShiftSpec
from roster.rotation import Candidate, Slot, rotate
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)
PATTERNS = load_settings(None, env={}).roster.patterns()
NOW = parse_local("2026-09-20T10:00")
OFFICERS = ["王芳", "陈晨", "刘洋", "赵静", "孙磊", "周婷"]
LEADERS = ["李强", "张伟", "吴刚", "郑丽"]


def staff(engine: Engine, officers: list[str] = OFFICERS, leaders: list[str] = LEADERS,
          unit: str = "区政府办", unbound: tuple[str, ...] = ()) -> None:
    with Session(engine) as session:
        for name in officers:
            make_person(session, name, roles=(Role.officer,), now=NOW, unit=unit,
                        platform=None if name in unbound else "memory")
        for name in leaders:
            make_person(session, name, roles=(Role.leader,), now=NOW, unit=unit,
                        platform=None if name in unbound else "memory")
        session.commit()


def generate(engine: Engine, start: str, end: str, **kw: object) -> Draft:
    with Session(engine, expire_on_commit=False) as session:
        draft = generate_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date.fromisoformat(start),
                               end=date.fromisoformat(end), now=NOW, actor="test", **kw)  # type: ignore[arg-type]
        session.commit()
    return draft


def table(engine: Engine, start: str, end: str) -> dict[tuple[date, str, str], list[str]]:
    """(day, shift, role) -> names, for every shift of the period."""
    out: dict[tuple[date, str, str], list[str]] = defaultdict(list)
    with Session(engine) as session:
        rows = session.exec(select(Shift, ShiftAssignment, Person)
                            .join(ShiftAssignment, ShiftAssignment.shift_id == Shift.id)  # type: ignore[arg-type]
                            .join(Person, Person.id == ShiftAssignment.person_id)  # type: ignore[arg-type]
                            .where(Shift.day >= date.fromisoformat(start), Shift.day <= date.fromisoformat(end))
                            .order_by(ShiftAssignment.id)).all()  # type: ignore[arg-type]
        for shift, row, person in rows:
            out[(shift.day, shift.name, row.role)].append(person.name)
    return dict(out)


def held_by(engine: Engine, name: str) -> list[Shift]:
    with Session(engine) as session:
        return list(session.exec(select(Shift).join(ShiftAssignment, ShiftAssignment.shift_id == Shift.id)  # type: ignore[arg-type]
                                 .join(Person, Person.id == ShiftAssignment.person_id)  # type: ignore[arg-type]
                                 .where(Person.name == name).order_by(Shift.starts_at)))  # type: ignore[arg-type]


def spread(draft: Draft, names: list[str], attr: str) -> int:
    values = [getattr(r.period, attr) for r in draft.fairness if r.person.name in names]
    assert len(values) == len(names)
    return max(values) - min(values)


def assert_rested(engine: Engine, names: list[str]) -> None:
    """Nobody holds two overlapping or back-to-back shifts."""
    for name in names:
        shifts = held_by(engine, name)
        for before, after in itertools.pairwise(shifts):
            assert after.starts_at > before.ends_at, (name, before.day, before.name, after.day, after.name)


# ---------------------------------------------------------------- fairness

@pytest.mark.parametrize(("start", "end"), [
    ("2026-10-01", "2026-10-31"),   # National Day week, a make-up Saturday (10-10)
    ("2026-02-01", "2026-02-28"),   # Spring Festival, make-up Saturdays 02-14 and 02-28
])
def test_a_month_is_balanced_within_one(engine: Engine, start: str, end: str) -> None:
    staff(engine)
    draft = generate(engine, start, end)
    assert not draft.unfilled and not draft.kept
    # Every shift has its officer and a leader, and nobody is both on one shift.
    assert all(len(v.officers) == 1 and len(v.leaders) == 1 for v in draft.views)
    assert all(v.shift.published is False for v in draft.views)
    for names in (OFFICERS, LEADERS):
        for attr in ("nights", "restdays", "holidays"):
            assert spread(draft, names, attr) <= 1, (attr, names)
        assert spread(draft, names, "total") <= 2
    holidays = sum(r.period.holidays for r in draft.fairness if r.person.name in OFFICERS)
    assert holidays == (7 if start.startswith("2026-10") else 9)   # 10-01..07; 02-15..23
    assert_rested(engine, OFFICERS + LEADERS)


def test_no_day_shift_after_a_night_and_one_seed_one_roster(engine: Engine) -> None:
    staff(engine, officers=OFFICERS[:3], leaders=LEADERS[:3])
    generate(engine, "2026-11-02", "2026-11-29", seed=7)
    first = table(engine, "2026-11-02", "2026-11-29")
    for day in range(2, 29):
        night = first.get((date(2026, 11, day), "夜班", "officer"))
        morning = first.get((date(2026, 11, day + 1), "白班", "officer"))
        if night and morning:
            assert night != morning
    assert_rested(engine, OFFICERS[:3] + LEADERS[:3])
    generate(engine, "2026-11-02", "2026-11-29", seed=7)
    assert table(engine, "2026-11-02", "2026-11-29") == first
    generate(engine, "2026-11-02", "2026-11-29", seed=8)
    assert table(engine, "2026-11-02", "2026-11-29") != first


def test_ties_break_by_name_then_seed() -> None:
    """With nothing else to tell people apart, the name order decides; a seed reorders it."""
    day = date(2026, 11, 24)
    slot = Slot(1, day, "白班", parse_local("2026-11-24T08:30"), parse_local("2026-11-24T17:30"), 1, False,
                False, False)
    people = [Candidate(3, "陈晨"), Candidate(1, "王芳"), Candidate(2, "刘洋")]
    first = sorted(people, key=lambda c: c.name)[0].person_id
    assert rotate(slots=[slot], officers=people, leaders=[]).picks[1][DutyRole.officer] == [first]
    picks = {rotate(slots=[slot], officers=people, leaders=[], seed=s).picks[1][DutyRole.officer][0]
             for s in range(20)}
    assert len(picks) > 1
    assert rotate(slots=[slot], officers=people, leaders=[], seed=5).picks == \
        rotate(slots=[slot], officers=people, leaders=[], seed=5).picks


def test_leave_is_respected_including_the_night_before(engine: Engine) -> None:
    staff(engine)
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.name == "王芳")).one()
        add_leave(session=session, person=person, start=date(2026, 10, 5), end=date(2026, 10, 9), reason="年休假",
                  now=NOW, actor="test")
        session.commit()
    generate(engine, "2026-10-01", "2026-10-31")
    mine = held_by(engine, "王芳")
    assert mine
    for shift in mine:
        first, last = local(shift.starts_at).date(), local(shift.ends_at).date()
        assert last < date(2026, 10, 5) or first > date(2026, 10, 9), (shift.day, shift.name)


def test_not_enough_people_lists_every_hole(engine: Engine) -> None:
    staff(engine, officers=["王芳"], leaders=["李强"])
    draft = generate(engine, "2026-11-23", "2026-11-29")   # Mon..Sun: 5×2 + 2 全天 = 12 shifts
    assert len(draft.views) == 12
    holes = {(h.day, h.shift_name, h.role) for h in draft.unfilled}
    for view in draft.views:
        s = view.shift
        assert bool(view.officers) != ((s.day, s.name, DutyRole.officer) in holes)
        assert bool(view.leaders) != ((s.day, s.name, DutyRole.leader) in holes)
    # One person cannot take two shifts in a row, so about half the shifts stay empty.
    assert 5 <= sum(1 for h in draft.unfilled if h.role == DutyRole.officer) <= 7
    with Session(engine) as session:
        assert load_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 23),
                          end=date(2026, 11, 29)).unfilled == draft.unfilled


def test_two_officers_per_shift_from_the_pattern(engine: Engine) -> None:
    staff(engine, officers=OFFICERS[:3])
    patterns = ShiftPatterns((ShiftSpec("白班", time(8, 30), time(17, 30), 2), ShiftSpec("夜班", time(17, 30), time(8, 30))),
                             PATTERNS.restday)
    with Session(engine, expire_on_commit=False) as session:
        draft = generate_draft(session=session, calendar=CAL, patterns=patterns, start=date(2026, 11, 23),
                               end=date(2026, 11, 27), now=NOW, actor="test")
    days = [v for v in draft.views if v.shift.name == "白班"]
    assert days and all(len(v.officers) + sum(h.missing for h in draft.unfilled if h.day == v.shift.day
                                              and h.shift_name == "白班" and h.role == DutyRole.officer) == 2
                        for v in days)
    assert any(len(v.officers) == 2 for v in days)


# ---------------------------------------------------------------- periods

def test_regenerate_replaces_the_draft_and_keeps_published_shifts(engine: Engine) -> None:
    staff(engine)
    with Session(engine) as session:
        roster_days(session, start="2026-10-01", end="2026-10-02", officers=["王芳"], leaders=["李强"], now=NOW)
        session.commit()
    first = generate(engine, "2026-10-01", "2026-10-10")
    assert [(s.day, s.name) for s in first.kept] == [(date(2026, 10, 1), "全天"), (date(2026, 10, 2), "全天")]
    # 王芳 held the 10-02 全天 (to 10-03 08:30): not on 10-03, and her two count as holidays.
    assert ("王芳" not in table(engine, "2026-10-03", "2026-10-03").get((date(2026, 10, 3), "全天", "officer"), []))
    wang = next(r for r in first.fairness if r.person.name == "王芳")
    assert wang.period.holidays >= 2
    second = generate(engine, "2026-10-01", "2026-10-10", seed=3)
    assert second.replaced == sum(len(v.officers) + len(v.leaders) for v in first.views)
    with Session(engine) as session:
        rows = session.exec(select(ShiftAssignment)).all()
        shifts = session.exec(select(Shift)).all()
    assert len(rows) == 2 * len(shifts)           # one officer and one leader per shift, no leftovers
    assert len(shifts) == 2 + len(second.views)
    assert table(engine, "2026-10-01", "2026-10-02")[(date(2026, 10, 1), "全天", "officer")] == ["王芳"]
    with Session(engine) as session:
        events = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.entity_type == "roster"))]
    assert events == ["draft_generated", "draft_generated"]


def test_counts_carry_over_from_the_weeks_before(engine: Engine) -> None:
    staff(engine, officers=OFFICERS[:4], leaders=LEADERS[:2])
    # Two weeks published where only 王芳 and 陈晨 took officer shifts.
    with Session(engine) as session:
        roster_days(session, start="2026-11-09", end="2026-11-22", officers=["王芳", "陈晨"], leaders=LEADERS[:2],
                    now=NOW)
        session.commit()
    draft = generate(engine, "2026-11-23", "2026-11-29")
    period = {r.person.name: r.period.total for r in draft.fairness}
    carried = {r.person.name: r.carried.total for r in draft.fairness}
    assert carried["王芳"] > 0 and carried["刘洋"] == 0
    assert period["刘洋"] > period["王芳"] and period["赵静"] > period["陈晨"]
    # Back-to-back is checked against the published shift of 11-22 too, even when the
    # weeks before are not counted.
    assert_rested(engine, OFFICERS[:4] + LEADERS[:2])
    plain = generate(engine, "2026-11-23", "2026-11-29", lookback_days=0)
    assert all(r.carried.total == 0 for r in plain.fairness)
    assert_rested(engine, OFFICERS[:4] + LEADERS[:2])


def test_unit_limits_who_is_rostered(engine: Engine) -> None:
    staff(engine, officers=OFFICERS[:3], leaders=LEADERS[:3])
    staff(engine, officers=["钱多"], leaders=["冯远"], unit="区教育局")
    generate(engine, "2026-11-23", "2026-11-29", unit="区政府办")
    names = {n for names in table(engine, "2026-11-23", "2026-11-29").values() for n in names}
    assert names and "钱多" not in names and "冯远" not in names
    with pytest.raises(InputError, match="单位“区网信办”没有可排班的在岗人员"):
        generate(engine, "2026-11-23", "2026-11-29", unit="区网信办")


# ---------------------------------------------------------------- publishing

async def test_publish_shows_on_duty_and_tells_each_person(engine: Engine) -> None:
    staff(engine, unbound=("周婷",))
    clock = FakeClock(parse_local("2026-10-09T10:00"))
    adapter = MemoryAdapter()
    chat = MemoryChat(App(load_settings(None, env={}), clock=clock, adapter=adapter, engine=engine), adapter)
    draft = generate(engine, "2026-10-09", "2026-10-18")
    assert "当前时段尚未排班" in await chat.send("/duty", as_="王芳")
    assert "尚未排班" in await chat.send("/duty 明天", as_="王芳")
    with Session(engine, expire_on_commit=False) as session:
        done = publish_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 10, 9),
                             end=date(2026, 10, 18), now=clock.now(), actor="test")
        session.commit()
    assert len(done.shifts) == len(draft.views) and not done.unfilled
    assert [p.name for p in done.unbound] == ["周婷"]
    now_view = next(v for v in draft.views if v.shift.day == date(2026, 10, 9) and v.shift.name == "白班")
    on_duty = await chat.send("/duty", as_="王芳")
    assert f"白班 08:30–17:30｜值班员：{now_view.officers[0].name}" in on_duty
    assert f"带班领导：{now_view.leaders[0].name}" in on_duty
    assert "（工作日）" in await chat.send("/duty 10-10", as_="王芳")   # the make-up Saturday
    # One summary per person with every shift of theirs; the unbound person is not queued.
    for name in OFFICERS + LEADERS:
        got = [m for m in chat.messages(name) if m.startswith("【值班安排】")]
        if name == "周婷":
            assert not got
            continue
        assert len(got) == 1, name
        count = sum(1 for v in draft.views if name in [p.name for p in v.officers + v.leaders])
        assert f"您共有 {count} 个班" in got[0] and got[0].count("｜") >= 2 * count
    with Session(engine) as session:
        assert not session.exec(select(Shift).where(Shift.published == False)).all()  # noqa: E712
        keys = {m.event_key for m in session.exec(select(OutboxMessage)) if m.event_key.startswith("roster-")}
        assert len(keys) == 1 and next(iter(keys)).startswith("roster-publish:20261009-20261018:")
        published = session.exec(select(AuditEvent).where(AuditEvent.action == "published")).all()
        assert len(published) == len(draft.views) + 1
    with Session(engine) as session, pytest.raises(DutybotError, match="没有待发布的值班草稿"):
        publish_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 10, 9),
                      end=date(2026, 10, 18), now=clock.now(), actor="test")


# ---------------------------------------------------------------- leave

def test_leave_validation(engine: Engine) -> None:
    staff(engine, officers=["王芳"], leaders=[])
    with Session(engine) as session:
        wang = session.exec(select(Person).where(Person.name == "王芳")).one()
        with pytest.raises(InputError, match="不能早于开始日期"):
            add_leave(session=session, person=wang, start=date(2026, 11, 5), end=date(2026, 11, 4), reason="",
                      now=NOW, actor="t")
        with pytest.raises(InputError, match="最多登记 366 天"):
            add_leave(session=session, person=wang, start=date(2026, 1, 1), end=date(2027, 1, 2), reason="",
                      now=NOW, actor="t")
        with pytest.raises(InputError, match="事由最多 200 个字"):
            add_leave(session=session, person=wang, start=date(2026, 11, 4), end=date(2026, 11, 4),
                      reason="病" * 201, now=NOW, actor="t")
        add_leave(session=session, person=wang, start=date(2026, 11, 4), end=date(2026, 11, 6), reason="",
                  now=NOW, actor="t")
        with pytest.raises(InputError, match="已登记请假（编号 1）"):
            add_leave(session=session, person=wang, start=date(2026, 11, 6), end=date(2026, 11, 8), reason="",
                      now=NOW, actor="t")


@freeze_time("2026-11-20 02:00:00")
def test_cli_leave_generate_draft_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    staff(engine, officers=OFFICERS[:4], leaders=LEADERS[:3])
    monkeypatch.setenv("DUTYBOT_DATABASE_URL", f"sqlite:///{db}")
    parser = argparse.ArgumentParser(prog="dutybot")
    parser.add_argument("--config")
    add_commands(parser.add_subparsers(dest="roster_command"))

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    out = run("leave", "add", "王芳", "2026-11-25", "2026-11-27", "--reason", "年休假")
    assert "已登记 王芳 请假：2026年11月25日至11月27日，共 3 天（编号 1）" in out
    assert "编号 1｜王芳｜区政府办｜2026年11月25日至11月27日（3 天）｜年休假" in run("leave", "list")
    assert "没有请假记录" in run("leave", "list", "--from", "2026-12-01")
    with pytest.raises(InputError, match="无效的开始日期"):
        run("leave", "add", "王芳", "2026-13-01", "2026-12-01")
    with pytest.raises(NotFound, match="找不到人员“无名”"):
        run("leave", "add", "无名", "2026-12-01", "2026-12-01")

    out = run("generate", "--from", "2026-11-23", "--to", "2026-11-29", "--seed", "1")
    assert "已生成 2026年11月23日至11月29日 的值班草稿（尚未发布" in out and "12 个班次" in out
    assert "公平性统计" in out and "所有班次均已排满" in out and "王芳" in out
    out = run("draft", "--from", "2026-11-23", "--to", "2026-11-29")
    assert "2026年11月25日（星期三）" in out and "白班 08:30–17:30｜值班员：" in out
    for shift in held_by(engine, "王芳"):   # nothing touching 11-25..27, not even the night before
        assert local(shift.ends_at).date() < date(2026, 11, 25) or local(shift.starts_at).date() > date(2026, 11, 27)
    # Leave that clashes with a draft shift says so.
    clash = held_by(engine, "陈晨")[0]
    out = run("leave", "add", "陈晨", clash.day.isoformat(), clash.day.isoformat())
    assert "草稿中 陈晨 有 " in out and f"请重新生成：dutybot roster generate --from {clash.day}" in out
    out = run("publish", "--from", "2026-11-23", "--to", "2026-11-29")
    assert "已发布 2026年11月23日至11月29日 的值班表：12 个班次；已通知 " in out
    with pytest.raises(DutybotError, match="没有待发布的值班草稿"):
        run("publish", "--from", "2026-11-23", "--to", "2026-11-29")
    out = run("leave", "add", "刘洋", "2026-11-23", "2026-11-29")
    assert "已发布的值班，请安排换班或替班" in out
    out = run("leave", "remove", "3")
    assert "已删除 刘洋 的请假（编号 3" in out
    with pytest.raises(NotFound, match="没有编号为 3 的请假记录"):
        run("leave", "remove", "3")
    assert "没有未发布的值班草稿" in run("draft", "--from", "2026-11-23", "--to", "2026-11-29")
    with pytest.raises(InputError, match="结束日期不能早于开始日期"):
        run("generate", "--from", "2026-11-29", "--to", "2026-11-23")
    engine.dispose()
