"""Rest rules (``[roster] max_continuous_hours``, ``min_rest_hours``; the office's own
setting): back-to-back shifts are one stretch; swaps, substitutions and generation keep
the rules; an admin may break one with a reason, which the audit log and the roster log
keep. Clock moved, never slept."""

from __future__ import annotations

import argparse
import itertools
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.cli.roster_log import cmd_roster_log
from bot.config import load_settings
from core.audit import AuditEvent
from core.clock import FakeClock, parse_local
from core.errors import ConfigError
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from roster.drafts import generate_draft
from roster.models import DutyRole, Shift, ShiftAssignment
from roster.rest import CONTINUOUS, REST, RestRules, violations
from roster.rotation import Candidate, Slot, rotate
from roster.service import ensure_shifts, find_shift, unassign
from tests.factories import make_person, roster_days

CAL = WorkdayCalendar.from_dir(None)
PATTERNS = load_settings(None, env={}).roster.patterns()
START = "2026-11-23T10:00"    # a Monday


def staff(session: Session, now: datetime) -> dict[str, Person]:
    for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("孙丽", (Role.officer,)),
                        ("刘洋", (Role.officer,)), ("李强", (Role.leader,)), ("赵敏", (Role.principal,)),
                        ("张伟", (Role.admin,))):
        make_person(session, name, roles=roles, now=now)
    return {p.name: p for p in session.exec(select(Person))}


def chat_for(engine: Engine, env: dict[str, str] | None = None) -> MemoryChat:
    adapter = MemoryAdapter()
    clock = FakeClock(parse_local(START))
    return MemoryChat(App(load_settings(None, env=env or {}), clock=clock, adapter=adapter, engine=engine), adapter)


def shift(session: Session, day: str, name: str) -> Shift:
    return find_shift(session=session, day=date.fromisoformat(day), name=name)


def holders(engine: Engine, day: str, name: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Person.name).join(ShiftAssignment, ShiftAssignment.person_id == Person.id)
                                 .where(ShiftAssignment.shift_id == shift(session, day, name).id,
                                        ShiftAssignment.role == DutyRole.officer.value)))


def overrides(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "rest_override")))


# ---------------------------------------------------------------- the rule itself

def test_back_to_back_shifts_are_one_stretch(engine: Engine) -> None:
    now = parse_local(START)
    rules = RestRules(timedelta(hours=24), timedelta(hours=8))
    with Session(engine) as session:
        people = staff(session, now)
        # 11-23 白班 王芳, 夜班 陈晨; 11-24 白班 孙丽, 夜班 陈晨.
        roster_days(session, start="2026-11-23", end="2026-11-24", officers=["王芳", "陈晨", "孙丽", "陈晨"],
                    leaders=[], now=now)
        wang = people["王芳"]
        night1, day2, night2 = (shift(session, "2026-11-23", "夜班"), shift(session, "2026-11-24", "白班"),
                                shift(session, "2026-11-24", "夜班"))
        # 11-23 白班 then 夜班: 08:30 to 08:30, 24 hours: allowed.
        assert violations(session, person=wang, adding=[night1], rules=rules) == []
        [found] = violations(session, person=wang, adding=[night1, day2], rules=rules)
        assert found.kind == CONTINUOUS and found.end - found.start == timedelta(hours=33)
        assert found.zh() == "王芳将连续值班33小时（11月23日08:30至11月24日17:30），超过本单位规定的24小时"
        [found] = violations(session, person=wang, adding=[night1, day2, night2], rules=rules)
        assert found.zh() == "王芳将连续值班48小时（11月23日08:30至11月25日08:30），超过本单位规定的24小时"
        # Giving 11-23 白班 away for both nights: each 15 hours, 9 hours apart.
        mine = shift(session, "2026-11-23", "白班")
        assert violations(session, person=wang, adding=[night1, night2], removing={mine.id}, rules=rules) == []
        [rest] = violations(session, person=wang, adding=[night1, night2], removing={mine.id},
                            rules=RestRules(timedelta(hours=24), timedelta(hours=12)))
        assert rest.kind == REST
        assert rest.zh() == "王芳两班之间只能休息9小时（11月24日08:30至11月24日17:30），少于本单位规定的12小时"
        # Switched off: nothing.
        assert violations(session, person=wang, adding=[night1, day2, night2], rules=RestRules(None, None)) == []


def test_a_broken_roster_does_not_block_an_unrelated_change(engine: Engine) -> None:
    now = parse_local(START)
    with Session(engine) as session:
        people = staff(session, now)
        roster_days(session, start="2026-11-28", end="2026-11-29", officers=["王芳"], leaders=[], now=now)
        roster_days(session, start="2026-11-23", end="2026-11-23", officers=["陈晨"], leaders=[], now=now)
        # 王芳 already holds 48 hours (11-28, 11-29); 11-23 白班 is days away from it.
        assert violations(session, person=people["王芳"], adding=[shift(session, "2026-11-23", "白班")],
                          rules=RestRules()) == []


def test_config_refuses_a_limit_shorter_than_a_shift() -> None:
    with pytest.raises(ConfigError, match="max_continuous_hours"):
        load_settings(None, env={"DUTYBOT_ROSTER_MAX_CONTINUOUS_HOURS": "12"})
    assert load_settings(None, env={"DUTYBOT_ROSTER_MAX_CONTINUOUS_HOURS": "0"}).roster.max_continuous_hours == 0


# ---------------------------------------------------------------- swaps

async def test_a_swap_giving_48_hours_is_refused_and_an_admin_override_is_recorded(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    now = parse_local(START)
    with Session(engine) as session:
        staff(session, now)
        # 11-28 全天 王芳, 11-29 全天 陈晨 (Saturday and Sunday, 24 hours each), leader 李强.
        roster_days(session, start="2026-11-28", end="2026-11-29", officers=["王芳", "陈晨"], leaders=["李强"],
                    now=now)
        session.commit()
    chat = chat_for(engine)
    asked = await chat.send("/swap 11-29 王芳 家里有事", as_="陈晨")
    rule = "王芳将连续值班48小时（11月28日08:30至11月30日08:30），超过本单位规定的24小时"
    assert "#1" in asked and rule in asked and "须由管理员说明理由后批准" in asked
    assert rule in chat.last("王芳")
    # Before: the target accepted, the leader approved, and 王芳 had 48 hours without a word.
    accepted = await chat.send("/swap accept 1", as_="王芳")
    assert "等待 李强、张伟 审批" in accepted
    card = chat.last("李强")
    assert card.startswith("【换班待审批】") and rule in card and "/swap approve 1 理由：" in card
    refused = await chat.send("/swap approve 1", as_="李强")
    assert f"不能安排：{rule}。" in refused and "/swap approve 1 理由：" in refused
    assert holders(engine, "2026-11-29", "全天") == ["陈晨"]
    # A leader's reason is not enough: only an admin may break the rule.
    assert "只能由管理员说明理由后放行" in await chat.send("/swap approve 1 理由：人手不足", as_="李强")
    assert overrides(engine) == []
    done = await chat.send("/swap approve 1 理由：人手不足", as_="张伟")
    assert "换班 #1 已生效" in done and "已记录放行理由：人手不足" in done and rule in done
    assert holders(engine, "2026-11-29", "全天") == ["王芳"]
    [event] = overrides(engine)
    with Session(engine) as session:
        assert event.entity_type == "shift" and event.entity_id == str(shift(session, "2026-11-29", "全天").id)
    assert event.actor == "张伟" and event.details()["reason"] == "人手不足" and event.details()["person"] == "王芳"
    assert rule in event.details()["zh"] and "换班 #1" in event.details()["zh"]
    # The roster log shows it.
    if engine.url.get_backend_name() == "sqlite":
        monkeypatch.setenv("DUTYBOT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
        assert cmd_roster_log(argparse.Namespace(config=None, from_="2026-11-28", to="2026-11-29", xlsx=None)) == 0
        out = capsys.readouterr().out
        assert "休息规定例外（管理员说明理由后放行）：" in out and "张伟：11月29日（星期日）全天" in out
        assert rule in out and "人手不足" in out


async def test_a_swap_without_approval_still_waits_for_an_admin_when_it_breaks_a_rule(engine: Engine) -> None:
    now = parse_local(START)
    with Session(engine) as session:
        staff(session, now)
        roster_days(session, start="2026-11-28", end="2026-11-29", officers=["王芳", "陈晨"], leaders=["李强"],
                    now=now)
        session.commit()
    chat = chat_for(engine, {"DUTYBOT_ROSTER_SWAP_NEEDS_APPROVAL": "false"})
    await chat.send("/swap 11-29 王芳", as_="陈晨")
    assert "等待 李强、张伟 审批" in await chat.send("/swap accept 1", as_="王芳")
    assert holders(engine, "2026-11-29", "全天") == ["陈晨"]
    # A swap within the rules is applied at once, as before.
    assert "#2" in await chat.send("/swap 11-28 孙丽", as_="王芳")
    assert "已生效" in await chat.send("/swap accept 2", as_="孙丽")


# ---------------------------------------------------------------- substitutions

async def test_a_substitution_too_soon_after_a_shift_is_refused_unless_an_admin_gives_a_reason(
        engine: Engine) -> None:
    now = parse_local(START)
    with Session(engine) as session:
        staff(session, now)
        roster_days(session, start="2026-11-23", end="2026-11-24", officers=["王芳", "孙丽", "王芳", "陈晨"],
                    leaders=["李强"], now=now)
        session.commit()
    # 11-23 夜班 孙丽 (until 11-24 08:30); 11-24 夜班 陈晨 from 17:30: 9 hours in between.
    chat = chat_for(engine, {"DUTYBOT_ROSTER_MIN_REST_HOURS": "12"})
    refused = await chat.send("/substitute 11-24 夜班 陈晨 孙丽 陈晨发烧", as_="张伟")
    assert "孙丽两班之间只能休息9小时（11月24日08:30至11月24日17:30），少于本单位规定的12小时" in refused
    assert "/substitute 11-24 夜班 陈晨 孙丽 陈晨发烧 理由：…" in refused
    assert holders(engine, "2026-11-24", "夜班") == ["陈晨"] and overrides(engine) == []
    done = await chat.send("/substitute 11-24 夜班 陈晨 孙丽 理由：陈晨发烧，无人可替", as_="张伟")
    assert "已替班" in done and "已记录放行理由：陈晨发烧，无人可替" in done
    assert holders(engine, "2026-11-24", "夜班") == ["孙丽"]
    [event] = overrides(engine)
    assert event.details()["reason"] == "陈晨发烧，无人可替" and event.details()["rule"] == REST
    # Someone rested enough is substituted without a word.
    assert "已替班" in await chat.send("/substitute 11-24 夜班 孙丽 刘洋", as_="张伟")
    assert len(overrides(engine)) == 1


# ---------------------------------------------------------------- generation

def test_rotate_keeps_the_minimum_rest() -> None:
    def slot(key: int, start: str, hours: int) -> Slot:
        at = parse_local(start)
        return Slot(key, at.date(), "夜班", at, at + timedelta(hours=hours), 1, True, False, False)
    # Two nights 9 hours apart and one officer.
    slots = [slot(1, "2026-11-23T17:30", 15), slot(2, "2026-11-24T17:30", 15)]
    officers = [Candidate(1, "王芳")]
    def holes(min_rest: timedelta | None) -> list[date]:
        done = rotate(slots=slots, officers=officers, leaders=[], min_rest=min_rest)
        return [u.day for u in done.unfilled if u.role == DutyRole.officer]
    assert holes(None) == []
    assert holes(timedelta(hours=12)) == [date(2026, 11, 24)]


def test_generation_respects_the_rest_rules(engine: Engine) -> None:
    now = parse_local("2026-11-20T10:00")
    rules = RestRules(timedelta(hours=24), timedelta(hours=12))
    with Session(engine) as session:
        staff(session, now)
        for name in ("周明", "吴刚"):
            make_person(session, name, roles=(Role.officer,), now=now)
        # Published the week before: 孙丽 holds the Sunday before until Monday 08:30.
        roster_days(session, start="2026-11-22", end="2026-11-22", officers=["孙丽"], leaders=["李强"], now=now)
        draft = generate_draft(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 23),
                               end=date(2026, 12, 6), now=now, actor="test", seed=3, rest=rules)
        assert not [u for u in draft.unfilled if u.role == DutyRole.officer]
        mine: dict[str, list[Shift]] = {}
        for view in draft.views:
            for person in view.officers:
                mine.setdefault(person.name, []).append(view.shift)
        for name, shifts in mine.items():
            shifts.sort(key=lambda s: s.starts_at)
            for a, b in itertools.pairwise(shifts):
                assert b.starts_at - a.ends_at >= timedelta(hours=12), (name, a.day, a.name, b.day, b.name)
        # Nothing a generated roster holds breaks a rule, the published shift before included.
        for view in draft.views:
            for person in (*view.officers, *view.leaders):
                assert violations(session, person=person, adding=[view.shift], rules=rules) == [], person.name
        monday = next(v for v in draft.views if v.shift.day == date(2026, 11, 23) and v.shift.name == "白班")
        assert "孙丽" not in [p.name for p in monday.officers]   # 0 hours after her Sunday


def test_a_shift_given_away_no_longer_counts(engine: Engine) -> None:
    now = parse_local(START)
    with Session(engine) as session:
        people = staff(session, now)
        shifts = ensure_shifts(session=session, calendar=CAL, patterns=PATTERNS, start=date(2026, 11, 28),
                               end=date(2026, 11, 29), now=now)
        roster_days(session, start="2026-11-28", end="2026-11-29", officers=["王芳"], leaders=[], now=now)
        unassign(session=session, shift=shifts[1], person=people["王芳"], role=DutyRole.officer, now=now, actor="t")
        assert violations(session, person=people["王芳"], adding=[shifts[1]], rules=RestRules())[0].kind == CONTINUOUS
        assert violations(session, person=people["王芳"], adding=[shifts[1]], removing={shifts[0].id},
                          rules=RestRules()) == []
