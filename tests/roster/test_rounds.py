"""Reading rounds (读网, DUTY-1 不定时): planned at seeded random minutes inside the windows,
prompted, answered, reminded, escalated, and anomalies handed to incident reporting —
with the clock moved, never slept."""

from __future__ import annotations

from datetime import UTC, date, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import FakeClock, local, parse_local
from incidents.models import Incident
from people.models import Role
from roster.models import ReadingRound, RoundStatus, Shift
from roster.rounds import RoundPolicy, plan_rounds, planned_rounds
from roster.sites import add_site, validate
from tests.factories import make_person, roster_days

SETTINGS = load_settings(None, env={})
POLICY = RoundPolicy(windows=tuple(SETTINGS.roster.windows()), seed=SETTINGS.roster.round_seed,
                     answer=timedelta(minutes=SETTINGS.roster.round_answer_minutes))


def build(engine: Engine, start: str) -> MemoryChat:
    """Mon 11-23 .. Thu 11-26 (working days): 白班 王芳/李强, 夜班 陈晨/周明."""
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, roles in (("王芳", (Role.officer,)), ("陈晨", (Role.officer,)), ("李强", (Role.leader,)),
                            ("周明", (Role.leader,)), ("张伟", (Role.admin,))):
            make_person(session, name, roles=roles, now=clock.now(), unit="区政府办", phone="13800000001")
        roster_days(session, start="2026-11-23", end="2026-11-26", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=clock.now())
        for name, kind, url, unit in (("门户网站", "网站", "https://www.example.gov.cn", "区政府办"),
                                      ("区政府办公众号", "微信公众号", "qzfb_wx", "区政府办"),
                                      ("区教育局网站", "网站", "https://edu.example.gov.cn", "区教育局")):
            add_site(session=session, new=validate(name, kind, url, unit), now=clock.now(), actor="test")
        session.commit()
    adapter = MemoryAdapter()
    return MemoryChat(App(SETTINGS, clock=clock, adapter=adapter, engine=engine), adapter)


def shift_of(engine: Engine, day: str, name: str) -> Shift:
    with Session(engine) as session:
        return session.exec(select(Shift).where(Shift.day == date.fromisoformat(day), Shift.name == name)).one()


def rounds_of(engine: Engine, day: str, name: str) -> list[ReadingRound]:
    shift = shift_of(engine, day, name)
    with Session(engine) as session:
        return list(session.exec(select(ReadingRound).where(ReadingRound.shift_id == shift.id)
                                 .order_by(col(ReadingRound.prompt_at))))


def tagged(chat: MemoryChat, name: str, tag: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith(tag)]


def test_prompt_times_are_reproducible_and_inside_the_windows(engine: Engine) -> None:
    build(engine, "2026-11-23T07:00")
    day, night = shift_of(engine, "2026-11-23", "白班"), shift_of(engine, "2026-11-23", "夜班")
    planned_day = planned_rounds(day, POLICY)
    assert [p.window for p in planned_day] == ["09:00-11:30", "14:30-17:00"]
    # The night shift 17:30–08:30 gets the evening window and the next early morning's.
    planned_night = planned_rounds(night, POLICY)
    assert [p.window for p in planned_night] == ["20:00-22:30", "06:30-08:00"]
    for plan in planned_day + planned_night:
        opens, closes = plan.window.split("-")
        at = local(plan.prompt_at)
        assert opens <= f"{at:%H:%M}" < closes
        assert plan.earliest <= plan.prompt_at < plan.latest
    assert local(planned_night[1].prompt_at).date() == date(2026, 11, 24)
    # Same seed, same minutes; another seed moves them; no global RNG involved.
    assert planned_rounds(day, POLICY) == planned_day
    other = RoundPolicy(windows=POLICY.windows, seed="another-seed", answer=POLICY.answer)
    assert [p.prompt_at for p in planned_rounds(day, other)] != [p.prompt_at for p in planned_day]
    # Days differ from each other (irregular, not the same minute every day).
    next_day = planned_rounds(shift_of(engine, "2026-11-24", "白班"), POLICY)
    assert [f"{local(p.prompt_at):%H:%M}" for p in next_day] != [f"{local(p.prompt_at):%H:%M}" for p in planned_day]


async def test_planner_is_idempotent_and_replaces_future_rounds_when_windows_change(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T07:00")
    await chat.app.advance_to(parse_local("2026-11-23T07:15"))   # the planner's first fire
    stored = rounds_of(engine, "2026-11-23", "白班")
    assert [r.prompt_at for r in stored] == [p.prompt_at for p in planned_rounds(shift_of(engine, "2026-11-23", "白班"), POLICY)]
    assert [r.seq for r in stored] == [1, 2]
    assert all(r.due_at == r.prompt_at + timedelta(minutes=30) for r in stored)
    # Shifts starting within 48 hours are planned; later ones are not yet.
    assert len(rounds_of(engine, "2026-11-24", "夜班")) == 2
    assert rounds_of(engine, "2026-11-26", "白班") == []
    with Session(engine) as session:
        total = len(session.exec(select(ReadingRound)).all())
        report = plan_rounds(session=session, policy=POLICY, now=parse_local("2026-11-23T07:20").astimezone(UTC))
        session.commit()
    assert report.created == [] and report.dropped == 0
    await chat.app.advance_to(parse_local("2026-11-23T08:00"))
    with Session(engine) as session:
        assert len(session.exec(select(ReadingRound)).all()) == total
        # New windows: the future rounds that no longer fit are dropped and new ones added.
        narrow = RoundPolicy(windows=((parse_local("2026-01-01T10:00").time(), parse_local("2026-01-01T10:30").time()),),
                             seed=POLICY.seed, answer=POLICY.answer)
        report = plan_rounds(session=session, policy=narrow, now=parse_local("2026-11-23T08:00").astimezone(UTC))
        session.commit()
    assert report.dropped == total
    changed = rounds_of(engine, "2026-11-23", "白班")
    assert len(changed) == 1 and "10:00" <= f"{local(changed[0].prompt_at):%H:%M}" < "10:30"
    assert rounds_of(engine, "2026-11-23", "夜班") == []


async def test_round_prompt_lists_the_units_sites_and_ok_answers_it(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T07:00")
    await chat.app.advance_to(parse_local("2026-11-23T07:15"))
    first = rounds_of(engine, "2026-11-23", "白班")[0]
    assert "没有待回复的读网提醒" in await chat.send("/read ok", as_="王芳")
    await chat.app.advance_to(first.prompt_at)
    prompt = tagged(chat, "王芳", "【读网提醒】")
    assert len(prompt) == 1
    assert "第1次读网" in prompt[0] and "门户网站（网站） https://www.example.gov.cn" in prompt[0]
    assert "区政府办公众号（微信公众号）" in prompt[0] and "区教育局网站" not in prompt[0]
    assert f"{local(first.due_at):%H:%M} 前回复" in prompt[0] and "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十条" in prompt[0]
    assert tagged(chat, "陈晨", "【读网提醒】") == []       # the night officer is not on duty
    chat.app.clock.advance(timedelta(minutes=7))           # type: ignore[attr-defined]
    reply = await chat.send("读网 正常 首页和公众号均正常", as_="王芳")
    assert "第1次读网正常，用时7分钟" in reply
    answered = rounds_of(engine, "2026-11-23", "白班")[0]
    assert answered.status == RoundStatus.ok and answered.note == "首页和公众号均正常"
    await chat.app.advance_to(first.prompt_at + timedelta(hours=2))
    assert tagged(chat, "王芳", "【读网超时】") == [] and tagged(chat, "李强", "【读网超时") == []
    status = await chat.send("/read", as_="王芳")
    assert "第1次" in status and "正常（王芳" in status and "本班还将不定时提醒 1 次" in status


async def test_missed_round_reminds_then_escalates_to_the_shifts_leader(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T07:00")
    await chat.app.advance_to(parse_local("2026-11-23T07:15"))
    first = rounds_of(engine, "2026-11-23", "白班")[0]
    await chat.app.advance_to(first.due_at - timedelta(minutes=1))
    assert tagged(chat, "王芳", "【读网超时】") == []
    await chat.app.advance_to(first.due_at)
    late = tagged(chat, "王芳", "【读网超时】")
    assert len(late) == 1 and "将报告带班领导" in late[0]
    assert tagged(chat, "李强", "【读网超时") == []
    await chat.app.advance_to(first.due_at + timedelta(minutes=30))
    told = tagged(chat, "李强", "【读网超时·带班领导】")
    assert len(told) == 1 and "值班员：王芳" in told[0] and "第1次读网" in told[0]
    assert tagged(chat, "周明", "【读网超时") == []       # the night leader is not this shift's
    assert rounds_of(engine, "2026-11-23", "白班")[0].status == RoundStatus.missed
    # A late answer is recorded; the round stays missed and the leader hears of it.
    reply = await chat.send("/read ok 补读", as_="王芳")
    assert "已超时" in reply
    assert "【读网补读】王芳" in chat.last("李强")
    missed = rounds_of(engine, "2026-11-23", "白班")[0]
    assert missed.status == RoundStatus.missed and missed.answered_at is not None


async def test_answer_after_the_reminder_stops_the_escalation_on_a_night_shift(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T16:00")
    await chat.app.advance_to(parse_local("2026-11-23T16:15"))
    evening, morning = rounds_of(engine, "2026-11-23", "夜班")
    await chat.app.advance_to(evening.prompt_at)
    assert len(tagged(chat, "陈晨", "【读网提醒】")) == 1
    assert not any("夜班" in m for m in tagged(chat, "王芳", "【读网提醒】"))
    await chat.app.advance_to(evening.due_at)
    assert len(tagged(chat, "陈晨", "【读网超时】")) == 1
    assert "第1次读网正常" in await chat.send("/read ok", as_="陈晨")
    await chat.app.advance_to(morning.prompt_at)
    assert tagged(chat, "周明", "【读网超时") == []
    assert len(tagged(chat, "陈晨", "【读网提醒】")) == 2   # the early-morning round after midnight
    assert local(morning.prompt_at).date() == date(2026, 11, 24)
    assert "第2次读网正常" in await chat.send("/read ok", as_="陈晨")


async def test_anomaly_opens_an_incident_and_the_leader_on_duty_hears_per_the_ladder(engine: Engine) -> None:
    chat = build(engine, "2026-11-23T07:00")
    await chat.app.advance_to(parse_local("2026-11-23T07:15"))
    first = rounds_of(engine, "2026-11-23", "白班")[0]
    await chat.app.advance_to(first.prompt_at + timedelta(minutes=3))
    assert "站点名称" in await chat.send("/read 异常 门户网站", as_="王芳")   # usage: a description is needed
    reply = await chat.send("/read 异常 无法访问 门户网站 首页返回502错误", as_="王芳")
    number = reply.split("登记事件 ")[1].split("（")[0]
    assert number.startswith("INC-") and "第1次读网发现异常" in reply and "无法访问" in reply
    with Session(engine) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        assert (incident.type, incident.site, incident.url) == ("site_down", "门户网站", "https://www.example.gov.cn")
        assert incident.description == "首页返回502错误" and incident.unit == "区政府办"
    rnd = rounds_of(engine, "2026-11-23", "白班")[0]
    assert rnd.status == RoundStatus.anomaly and rnd.incident_number == number
    assert rnd.note == "门户网站：首页返回502错误"
    # Nobody acknowledges: the general ladder pings the leader on duty (李强, from the roster) at +15 min.
    await chat.app.advance_to(first.prompt_at + timedelta(minutes=3 + 15))
    pinged = [m for m in chat.messages("李强") if m.startswith("【事件升级·带班领导】")]
    assert len(pinged) == 1 and number in pinged[0]
    assert not any(number in m for m in chat.messages("周明"))
    # The round is answered: no reading-round reminder follows.
    await chat.app.advance_to(first.due_at + timedelta(minutes=31))
    assert tagged(chat, "王芳", "【读网超时】") == []
    # Without a type word the anomaly is a content error; outside a round it is still registered.
    other = await chat.send("/read 异常 区政府办公众号 昨日推文日期写错", as_="王芳")
    assert "内容错误" in other and "当前没有待回复的读网提醒" in other
