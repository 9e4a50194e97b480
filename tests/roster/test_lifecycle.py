"""The shift lifecycle through chat: reminders, check-in with escalation to the right
leader, a swap just before the shift, handover to the next officer — clock moved, never slept.

The roster (2026-09-30 .. 10-02): 09-30 白班 08:30–17:30 王芳/李强; 09-30 夜班 17:30–10-01 08:30
陈晨/周明 (into National Day); 10-01 全天 王芳/李强; 10-02 全天 陈晨/周明.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from core.clock import SHANGHAI, FakeClock, parse_local
from core.schedule import DueItem, DueStatus
from core.workdays import WorkdayCalendar
from incidents.models import Incident
from people.models import Person, Role
from replies.models import ReplyCategory, ReplyChannel
from replies.service import create_item
from roster.lifecycle import LifecyclePolicy
from roster.models import DutyRole, ReadingRound, RoundStatus, Shift
from roster.reminders import EVENING_MIN_GAP, plan, wanted_times
from roster.service import assign, find_shift, unassign
from tests.factories import make_person, roster_days

PHONES = {"王芳": "13800000001", "陈晨": "13800000002", "李强": "13900000003", "周明": "13900000004",
          "刘洋": "13800000005"}


def build(engine: Engine, start: str) -> tuple[MemoryChat, FakeClock]:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        for name, role in (("王芳", Role.officer), ("陈晨", Role.officer), ("李强", Role.leader),
                           ("周明", Role.leader), ("刘洋", Role.officer)):
            make_person(session, name, roles=(role,), now=clock.now(), phone=PHONES[name])
        roster_days(session, start="2026-09-30", end="2026-10-02", officers=["王芳", "陈晨"],
                    leaders=["李强", "周明"], now=clock.now())
        session.commit()
    settings = load_settings(None, env={})
    settings.roster.round_windows = []   # the rounds of these tests are written by hand
    adapter = MemoryAdapter()
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter), clock


def tagged(chat: MemoryChat, name: str, tag: str) -> list[str]:
    return [m for m in chat.messages(name) if m.startswith(tag)]


async def at(chat: MemoryChat, when: str) -> None:
    await chat.app.advance_to(parse_local(when))


def shift_of(session: Session, day: str, name: str) -> Shift:
    return find_shift(session=session, day=date.fromisoformat(day), name=name)


async def test_reminders_for_a_night_shift_into_a_holiday_and_the_holiday_shift(engine: Engine) -> None:
    chat, _ = build(engine, "2026-09-30T09:00")
    await at(chat, "2026-09-30T16:59")
    # The 09-30 shifts' evening reminders (09-29 20:00) were long past when the bot started.
    assert tagged(chat, "陈晨", "【值班提醒】") == [] and tagged(chat, "王芳", "【值班提醒】") == []
    await at(chat, "2026-09-30T17:00")
    [soon] = tagged(chat, "陈晨", "【值班提醒】")
    assert "17:30 开始（还有30分钟）" in soon and "岗位：值班员" in soon
    assert "9月30日（星期三）夜班 17:30–次日08:30" in soon and "周明 13900000004" in soon
    assert "/checkin" in soon and "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十条" in soon
    assert "岗位：带班领导" in tagged(chat, "周明", "【值班提醒】")[0]
    assert tagged(chat, "李强", "【值班提醒】") == []
    await at(chat, "2026-09-30T17:20")
    assert "已接班（按时）" in await chat.send("/checkin", as_="陈晨")
    await at(chat, "2026-09-30T19:59")
    assert tagged(chat, "王芳", "【值班提醒】") == []
    await at(chat, "2026-09-30T20:00")
    [evening] = tagged(chat, "王芳", "【值班提醒】")
    assert "您明天（10月1日）08:30 起值班" in evening and "10月1日（星期四）全天 08:30–次日08:30" in evening
    assert "李强 13900000003" in evening
    assert "您明天（10月1日）08:30 起值班" in tagged(chat, "李强", "【值班提醒】")[0]
    await at(chat, "2026-10-01T08:00")
    assert "08:30 开始（还有30分钟）" in tagged(chat, "王芳", "【值班提醒】")[-1]
    assert len(tagged(chat, "王芳", "【值班提醒】")) == 2
    # 陈晨 checked in: no check-in reminder; next the evening before 10-02.
    assert tagged(chat, "陈晨", "【接班提醒】") == [] and tagged(chat, "周明", "【未接班】") == []
    await at(chat, "2026-10-01T20:00")
    assert "您明天（10月2日）08:30 起值班" in tagged(chat, "陈晨", "【值班提醒】")[-1]
    assert len(tagged(chat, "陈晨", "【值班提醒】")) == 2


async def test_missed_checkin_reminds_then_tells_the_shifts_leader(engine: Engine) -> None:
    chat, _ = build(engine, "2026-09-30T16:00")
    await at(chat, "2026-09-30T17:59")
    assert tagged(chat, "陈晨", "【接班提醒】") == []
    await at(chat, "2026-09-30T18:00")
    [nudge] = tagged(chat, "陈晨", "【接班提醒】")
    assert "已开始30分钟，您还没有接班" in nudge and "15分钟后仍未接班，将告知带班领导 周明" in nudge
    assert ("接班", "/checkin") in chat.adapter.delivered[-1].buttons or "/checkin" in nudge
    await at(chat, "2026-09-30T18:14")
    assert tagged(chat, "周明", "【未接班】") == []
    await at(chat, "2026-09-30T18:15")
    [told] = tagged(chat, "周明", "【未接班】")
    assert "陈晨 13800000002" in told and "9月30日（星期三）夜班" in told
    assert tagged(chat, "李强", "【未接班】") == []          # the day shift's leader is not the one
    assert "您当前没有需要接班的班次" in (refused := await chat.send("/checkin", as_="王芳"))
    assert "下一班：10月1日（星期四）全天" in refused
    await at(chat, "2026-09-30T18:20")
    late = await chat.send("接班", as_="陈晨")
    assert "已接班（迟到50分钟，已记入值班日志）" in late and "已告知带班领导：周明" in late
    assert chat.last("周明").startswith("【已接班】陈晨 已于 9月30日 18:20 接班")
    assert "您已于 9月30日 18:20 接班（迟到50分钟" in await chat.send("/checkin", as_="陈晨")
    # The holiday shift: 王芳 checks in 20 minutes early; nobody is reminded or told.
    await at(chat, "2026-10-01T08:10")
    assert "已接班（按时）：10月1日（星期四）全天" in await chat.send("/checkin", as_="王芳")
    await at(chat, "2026-10-01T12:00")
    assert tagged(chat, "王芳", "【接班提醒】") == [] and tagged(chat, "李强", "【未接班】") == []
    with Session(engine) as session:
        shift = shift_of(session, "2026-10-01", "全天")
        items = session.exec(select(DueItem).where(DueItem.ref == f"shift:{shift.id}")).all()
        assert {i.key.rsplit(":", 1)[1]: i.status for i in items if "checkin" in i.key} == {
            "checkin": DueStatus.cancelled, "checkin-escalate": DueStatus.cancelled}


async def test_a_swap_before_the_shift_reminds_the_new_officer(engine: Engine) -> None:
    chat, clock = build(engine, "2026-09-30T19:00")
    await at(chat, "2026-09-30T20:00")
    assert "10月1日（星期四）全天" in tagged(chat, "王芳", "【值班提醒】")[0]
    await at(chat, "2026-09-30T21:00")
    with Session(engine) as session:     # what a swap or substitution does to the roster
        shift = shift_of(session, "2026-10-01", "全天")
        people = {p.name: p for p in session.exec(select(Person))}
        unassign(session=session, shift=shift, person=people["王芳"], role=DutyRole.officer, now=clock.now(), actor="t")
        assign(session=session, shift=shift, person=people["刘洋"], role=DutyRole.officer, source="swap",
               now=clock.now(), actor="t")
        session.commit()
    await at(chat, "2026-10-01T08:00")
    assert len(tagged(chat, "王芳", "【值班提醒】")) == 1
    [soon] = tagged(chat, "刘洋", "【值班提醒】")
    assert "08:30 开始" in soon and "值班员：刘洋 13800000005" in soon and "王芳" not in soon
    assert "您当前没有需要接班的班次" in await chat.send("/checkin", as_="王芳")
    await at(chat, "2026-10-01T09:00")
    assert tagged(chat, "刘洋", "【接班提醒】") and tagged(chat, "王芳", "【接班提醒】") == []
    await at(chat, "2026-10-01T09:15")
    assert "刘洋 13800000005" in tagged(chat, "李强", "【未接班】")[0]


async def test_handover_reaches_the_next_officer_with_rounds_incidents_and_replies(engine: Engine) -> None:
    chat, clock = build(engine, "2026-09-30T17:00")
    await at(chat, "2026-09-30T17:40")
    assert "已接班（按时）" in await chat.send("/checkin", as_="陈晨")
    await at(chat, "2026-09-30T22:10")
    await chat.send("/incident new 无法访问 www.example.gov.cn 首页无法打开", as_="陈晨")
    with Session(engine) as session:
        number = session.exec(select(Incident.number)).one()
        night = shift_of(session, "2026-09-30", "夜班")
        people = {p.name: p for p in session.exec(select(Person))}

        def local(text: str) -> datetime:
            return parse_local(text).astimezone(UTC)

        session.add_all([
            ReadingRound(shift_id=night.id, seq=1, prompt_at=local("2026-09-30T20:30"), due_at=local("2026-09-30T21:00"),
                         status=RoundStatus.ok, answered_at=local("2026-09-30T20:41"), answered_by_id=people["陈晨"].id),
            ReadingRound(shift_id=night.id, seq=2, prompt_at=local("2026-09-30T22:00"), due_at=local("2026-09-30T22:30"),
                         status=RoundStatus.anomaly, answered_at=local("2026-09-30T22:10"),
                         answered_by_id=people["陈晨"].id, note="首页无法打开", incident_number=number),
            ReadingRound(shift_id=night.id, seq=3, prompt_at=local("2026-10-01T06:50"), due_at=local("2026-10-01T07:20"),
                         status=RoundStatus.missed)])
        # A 找错 report received 09-25 was due 09-30 24:00 and is still open.
        create_item(session=session, calendar=WorkdayCalendar.from_dir(None), profile=chat.app.profile,
                    category=ReplyCategory.error_report, channel=ReplyChannel.error_portal, summary="政策栏目链接失效",
                    received_at=local("2026-09-25T10:00"), unit="区政府办", assignee=people["王芳"],
                    created_by=people["王芳"], now=clock.now(), actor="t")
        session.commit()
    await at(chat, "2026-10-01T08:20")
    assert "您不是当前班次" in await chat.send("/handover 无", as_="李强")
    reply = await chat.send("/handover 首页已报修，等待技术公司回复", as_="陈晨")
    assert reply.startswith("已交班：9月30日（星期三）夜班 17:30–次日08:30")
    assert "已发送给下一班值班员：王芳" in reply and "已抄送带班领导：周明、李强" in reply
    [handover] = tagged(chat, "王芳", "【交班】")
    assert "接班：10月1日（星期四）全天 08:30–次日08:30" in handover and "交班人：陈晨 13800000002" in handover
    assert "读网：3 次：正常 1，发现异常 1，未按时完成 1" in handover
    assert f"第2次 22:10 发现异常：首页无法打开（{number}）" in handover and "第3次 06:50 未按时完成" in handover
    assert f"本班新发事件：1 件\n  {number}｜无法访问" in handover
    assert "在办事件：1 件" in handover and "下一步：" in handover and "（截止 " in handover
    assert "留言答复：已超期 1 件，24小时内到期 0 件" in handover and "【超期】MSG-" in handover
    assert "政策栏目链接失效" in handover and "备注：首页已报修，等待技术公司回复" in handover
    assert "/checkin" in handover and "依据：参照《重庆市梁平区政府网站和政务新媒体管理办法》第二十条" in handover
    assert tagged(chat, "周明", "【交班·抄送】") and tagged(chat, "李强", "【交班·抄送】")
    # A second handover replaces the first and says so.
    await at(chat, "2026-10-01T08:25")
    again = await chat.send("交班 补充：首页已恢复", as_="陈晨")
    assert "已更新交班记录（替换 10月1日 08:20 的上一份，备注已更新）" in again
    assert "首页已恢复" in tagged(chat, "王芳", "【交班·更新】")[0]
    assert len(tagged(chat, "王芳", "【交班】")) == 1
    # The day after: the duty log shows who held each shift, check-ins, rounds and handover.
    await at(chat, "2026-10-01T09:00")
    log = await chat.send("/duty log 昨天", as_="李强")
    assert log.startswith("值班日志：2026年9月30日（星期三）")
    assert "白班 08:30–17:30" in log and "王芳 未接班" in log    # the bot started after that shift began
    assert "值班员：陈晨 按时接班 17:40" in log and "带班领导：周明" in log
    assert "读网：3 次：正常 1，发现异常 1，未按时完成 1" in log and f"（{number}）" in log
    assert "交班：10月1日 08:25 陈晨，备注：补充：首页已恢复" in log
    today = await chat.send("/duty log", as_="王芳")
    assert "10月1日（星期四）全天" in today and "王芳 待接班" in today
    week = await chat.send("/duty log week", as_="王芳")
    assert "9月30日（星期三）夜班" in week and "已交班 08:25 陈晨" in week and "读网 3（正常1 异常1 未按时1）" in week
    assert "合计：3 个班次；接班 按时 1，迟到 0，未接班 1" in week


async def test_planner_is_idempotent_and_follows_the_roster(engine: Engine) -> None:
    chat, clock = build(engine, "2026-09-30T09:00")
    policy = LifecyclePolicy()
    with Session(engine) as session:
        now = clock.now()
        assert plan(session=session, now=now, policy=policy) > 0
        assert plan(session=session, now=now, policy=policy) == 0
        night = shift_of(session, "2026-09-30", "夜班")
        night.published = False      # withdrawn as a draft: its reminder and check-in items go
        session.add(night)
        assert plan(session=session, now=now, policy=policy) == 3   # its evening (09-29 20:00) had passed
        night.published = True
        session.add(night)
        assert plan(session=session, now=now, policy=policy) == 3
        session.commit()
    await at(chat, "2026-09-30T17:00")
    with Session(engine) as session:
        # A reminder that fired is never sent again, whatever the planner sees later.
        assert plan(session=session, now=clock.now(), policy=policy) == 0
    assert len(tagged(chat, "陈晨", "【值班提醒】")) == 1


def test_early_morning_shift_gets_no_evening_reminder_next_to_the_other() -> None:
    policy = LifecyclePolicy(evening_time=parse_local("2026-01-01T23:00").time())
    now = parse_local("2026-10-01T12:00").astimezone(UTC)
    early = Shift(day=date(2026, 10, 2), name="凌晨", pattern="restday",
                  starts_at=datetime(2026, 10, 2, 0, 30, tzinfo=SHANGHAI), ends_at=datetime(2026, 10, 2, 8, 30, tzinfo=SHANGHAI),
                  created_at=now)
    times = wanted_times(early, policy=policy, now=now, missing=True)
    assert "remind-evening" not in times and times["remind-soon"] == datetime(2026, 10, 2, 0, 0, tzinfo=SHANGHAI)
    assert times["checkin"] - early.starts_at == timedelta(minutes=30)
    late = Shift(day=date(2026, 10, 2), name="早班", pattern="restday",
                 starts_at=datetime(2026, 10, 2, 6, 0, tzinfo=SHANGHAI), ends_at=datetime(2026, 10, 2, 8, 30, tzinfo=SHANGHAI),
                 created_at=now)
    times = wanted_times(late, policy=policy, now=now, missing=False)
    assert times["remind-soon"] - times["remind-evening"] >= EVENING_MIN_GAP and "checkin" not in times
    # remind_before_minutes = 0 turns the shortly-before reminder off; the evening one stays.
    times = wanted_times(late, policy=LifecyclePolicy(remind_before=timedelta(0)), now=now, missing=False)
    assert list(times) == ["remind-evening"]

