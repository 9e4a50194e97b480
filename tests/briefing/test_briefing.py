"""The daily briefing and the weekly summary: content and order for a seeded database,
the cron through a whole app (holidays, once a day, catch-up after downtime, Monday's
summary), and /brief in chat — with the clock moved, never slept."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from briefing import service
from briefing.flows import daily_briefing_job, recipients
from briefing.models import Section, Urgency
from briefing.service import build_daily, build_weekly, day_label
from core.clock import FakeClock, parse_local
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from replies.models import ReplyCategory, ReplyChannel, ReplyStatus
from replies.service import close, create_item, get_item
from tests.factories import make_person

SETTINGS = load_settings(None, env={})


class Without2027(WorkdayCalendar):
    """The package's data, except that 2027 is missing whatever the package knows."""

    def coverage(self, year: int) -> str | None:
        return None if year == 2027 else super().coverage(year)


class With2027(WorkdayCalendar):
    """The package's data, and 2027 as if an admin had filled holidays/2027.toml."""

    def coverage(self, year: int) -> str | None:
        return "override" if year == 2027 else super().coverage(year)


def people(session: Session, now: datetime) -> dict[str, Person]:
    return {
        "王芳": make_person(session, "王芳", roles=(Role.officer,), now=now),
        "陈晨": make_person(session, "陈晨", roles=(Role.officer,), now=now),
        "李强": make_person(session, "李强", roles=(Role.leader,), now=now),
        "赵敏": make_person(session, "赵敏", roles=(Role.principal, Role.leader), now=now),
        "张伟": make_person(session, "张伟", roles=(Role.admin, Role.officer), now=now),
    }


def reply(session: Session, kind: ReplyCategory, received: str, now: datetime,
          assignee: Person | None = None, summary: str = "栏目信息有误") -> str:
    item, _ = create_item(
        session=session, calendar=WorkdayCalendar(), profile=SETTINGS.profile(), category=kind,
        channel=ReplyChannel.website, summary=summary, received_at=parse_local(received),
        unit="区政府办", assignee=assignee, created_by=None, now=now, actor="test")
    return item.number


def dead_row(session: Session, person: Person | None, died: str, chat_id: str | None = None) -> None:
    row = enqueue(session=session, message=Outbound("某条提醒", person_id=person.id if person else None,
                                                     chat_id=chat_id),
                  now=parse_local(died), event_key=f"test:{died}:{chat_id}",
                  platform="memory" if chat_id else None)
    assert row is not None
    row.status, row.attempts, row.last_error = OutboxStatus.dead, 8, "收件人未绑定账号"


SEEDED = """\
【早报】11月23日（星期一）工作日
概况：超期2，今日到期1，明日到期1，未送达2，日历缺数据

【今日值班】值班表尚未启用
请管理员导入或生成值班表：dutybot roster import / generate

【超期未答复留言】2 条
· MSG-20261123-001 找错 超期4天 王芳
· MSG-20261123-004 咨询建议 超期3天 未指派
请督促办理：/reply list overdue

【今日到期留言】1 条
· MSG-20261123-002 找错 未指派
查看：/reply list due

【明日到期留言】1 条
· MSG-20261123-003 找错 陈晨

【消息未送达】近7天 2 条
· 李强 1 条
· 群聊 g-duty 1 条
请管理员运行 dutybot outbox 查看

【日历】缺少 2027 年节假日数据
相关期限暂按周末和固定节日计算（暂定）；国务院放假通知发布后，请管理员填写 holidays/2027.toml"""


def test_seeded_database_content_and_order(engine: Engine) -> None:
    seeded_at = parse_local("2026-11-23T08:00")
    with Session(engine) as session:
        p = people(session, seeded_at)
        reply(session, ReplyCategory.error_report, "2026-11-16T10:00", seeded_at, p["王芳"])  # due 11-19
        reply(session, ReplyCategory.error_report, "2026-11-18T10:00", seeded_at)           # due today
        reply(session, ReplyCategory.error_report, "2026-11-19T10:00", seeded_at, p["陈晨"])  # tomorrow
        reply(session, ReplyCategory.consultation, "2026-11-11T10:00", seeded_at)           # due 11-20
        reply(session, ReplyCategory.verification, "2026-11-20T10:00", seeded_at)           # 12-11: quiet
        done = reply(session, ReplyCategory.error_report, "2026-11-12T10:00", seeded_at)   # closed
        close(session=session, item=get_item(session=session, number=done), status=ReplyStatus.answered,
              text="已答复", by=None, now=seeded_at, actor="test")
        dead_row(session, p["李强"], "2026-11-22T09:00")
        dead_row(session, None, "2026-11-21T09:00", chat_id="g-duty")
        dead_row(session, p["赵敏"], "2026-11-10T09:00")     # older than a week: left out
        session.commit()
        built = build_daily(session=session, now=parse_local("2026-11-23T08:30"),
                            calendar=Without2027(), settings=SETTINGS.briefing)
    assert built.text() == SEEDED
    assert [s.key for s in built.sections] == ["roster.today", "replies.overdue", "replies.today",
                                               "replies.tomorrow", "outbox.dead", "calendar.missing"]


def test_long_lists_are_cut_with_the_rest_counted(engine: Engine) -> None:
    now = parse_local("2026-11-23T08:00")
    settings = load_settings(None, env={"DUTYBOT_BRIEFING_MAX_LINES": "3"}).briefing
    with Session(engine) as session:
        numbers = [reply(session, ReplyCategory.error_report, f"2026-11-{day:02d}T10:00", now)
                   for day in (9, 10, 11, 12, 13, 16, 17)]   # all overdue, oldest first
        session.commit()
        text = build_daily(session=session, now=now, calendar=With2027(), settings=settings).text()
    block = text.split("\n\n")[2].splitlines()
    assert block[0] == "【超期未答复留言】7 条"
    assert [line.split()[1] for line in block[1:4]] == numbers[:3]
    assert block[4] == "  还有 4 项"
    assert "概况：超期7" in text


def test_all_clear_and_the_missing_domains(engine: Engine) -> None:
    with Session(engine) as session:
        text = build_daily(session=session, now=parse_local("2026-06-01T08:30"),
                           calendar=With2027(), settings=SETTINGS.briefing).text()
    assert text == ("【早报】6月1日（星期一）工作日\n一切正常：暂无需要关注的事项。\n\n"
                    "【今日值班】值班表尚未启用\n请管理员导入或生成值班表：dutybot roster import / generate")


def test_next_year_is_warned_about_only_when_deadlines_can_reach_it(engine: Engine) -> None:
    with Session(engine) as session:
        def warned(at: str) -> bool:
            built = build_daily(session=session, now=parse_local(at), calendar=Without2027(),
                                settings=SETTINGS.briefing)
            return built.section("calendar.missing") is not None
        assert not warned("2026-09-01T08:30")
        assert warned("2026-10-01T08:30")


def test_title_says_working_day_holiday_or_make_up_day() -> None:
    cal = WorkdayCalendar()
    assert day_label(date(2026, 10, 1), cal) == "10月1日（星期四）国庆节"
    assert day_label(date(2026, 10, 10), cal) == "10月10日（星期六）调休上班"
    assert day_label(date(2026, 11, 28), cal) == "11月28日（星期六）休息日"
    assert day_label(date(2026, 11, 23), WorkdayCalendar(use_package=False)) == "11月23日（星期一）工作日（暂定）"


def test_domains_plug_in_and_a_failing_provider_does_not_stop_the_rest(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def duty(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section:
        return Section("roster.today", Urgency.context, "【今日值班】王芳、陈晨；带班领导 李强")

    def incidents(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section:
        return Section("incidents.open", Urgency.overdue, "【超期事件】1 起", tag="超期事件1",
                       items=("INC-20261123-001 敏感信息 超期2小时 王芳",))

    def broken(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> None:
        raise RuntimeError("boom")

    module = types.ModuleType("fake_roster_briefing")
    module.__spec__ = importlib.machinery.ModuleSpec("fake_roster_briefing", None)
    module.DAILY = (incidents, broken, duty)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_roster_briefing", module)
    monkeypatch.setattr(service, "DOMAIN_MODULES", {"fake_roster_briefing": "值班表",
                                                    "no_such_domain.briefing": "事件处置"})
    service.domain_providers.cache_clear()
    try:
        with Session(engine) as session:
            now = parse_local("2026-11-23T08:00")
            reply(session, ReplyCategory.error_report, "2026-11-16T10:00", now)
            built = build_daily(session=session, now=now, calendar=With2027(), settings=SETTINGS.briefing)
    finally:
        service.domain_providers.cache_clear()
    keys = [s.key for s in built.sections]
    assert keys[:3] == ["roster.today", "incidents.open", "replies.overdue"]
    assert keys[3].startswith("error.")
    text = built.text()
    assert "概况：超期事件1，超期1，生成出错" in text and "部分内容未能生成（错误编号" in text
    assert text.endswith("（事件处置功能尚未启用）")


def test_weekly_summary_figures(engine: Engine) -> None:
    at = parse_local("2026-11-18T12:00")
    with Session(engine) as session:
        p = people(session, at)
        on_time = reply(session, ReplyCategory.error_report, "2026-11-16T10:00", at)   # due 11-19
        reply(session, ReplyCategory.error_report, "2026-11-17T10:00", at)             # open, overdue
        reply(session, ReplyCategory.verification, "2026-11-18T10:00", at)             # open
        late = reply(session, ReplyCategory.error_report, "2026-11-09T10:00", at)      # due 11-12
        reply(session, ReplyCategory.consultation, "2026-11-23T08:00", parse_local("2026-11-23T08:00"))
        for number in (on_time, late):
            close(session=session, item=get_item(session=session, number=number),
                  status=ReplyStatus.answered, text="已答复", by=None, now=at, actor="test")
        dead_row(session, p["李强"], "2026-11-20T09:00")
        session.commit()
        text = build_weekly(session=session, now=parse_local("2026-11-23T08:30"),
                            calendar=With2027(), settings=SETTINGS.briefing).text()
    assert text == ("【周报】11月16日—11月22日\n\n【事件处置】本周无事件，目前无未结事件\n\n"
                    "【群众留言】\n收到 3 条\n"
                    "办结 2 条：按时 1，超期 1，按时率 50.0%\n目前在办 3 条，其中已超期 1 条\n\n"
                    "【消息投递】本周未送达 1 条\n请管理员运行 dutybot outbox 查看")


def test_a_fire_is_queued_once_per_recipient(engine: Engine) -> None:
    now = parse_local("2026-11-23T08:30")
    with Session(engine) as session:
        p = people(session, now)
        p["离职领导"] = make_person(session, "离职领导", roles=(Role.leader,), now=now)
        p["离职领导"].active = False
        session.commit()
        assert [x.name for x in recipients(session)] == ["李强", "赵敏"]   # 赵敏 once
        kwargs: dict[str, Any] = {"calendar": With2027(), "settings": load_settings(
            None, env={"DUTYBOT_BRIEFING_GROUP_CHAT_ID": "g-duty"}).briefing, "platform": "memory"}
        assert daily_briefing_job(session, now, now, **kwargs) == 3
        assert daily_briefing_job(session, now, now + timedelta(minutes=5), **kwargs) == 0
        rows = session.exec(select(OutboxMessage)).all()
    assert sorted(r.dedupe_key for r in rows) == [
        "brief:2026-11-23|c:memory:g-duty", f"brief:2026-11-23|p:{p['李强'].id}",
        f"brief:2026-11-23|p:{p['赵敏'].id}"]


# ---------------------------------------------------------------- through a whole app

def build_app(engine: Engine, start: str) -> tuple[MemoryChat, FakeClock]:
    clock = FakeClock(parse_local(start))
    with Session(engine) as session:
        people(session, clock.now())
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env={"DUTYBOT_BRIEFING_GROUP_CHAT_ID": "g-duty"})
    return MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter), clock


def briefings(chat: MemoryChat, where: str, kind: str = "【早报】") -> list[str]:
    return [d.text for d in chat.adapter.delivered if d.chat_id == where and d.text.startswith(kind)]


async def test_holiday_briefing_goes_out_at_0830_to_leaders_and_the_group(engine: Engine) -> None:
    chat, _ = build_app(engine, "2026-09-30T09:00")
    await chat.app.advance_to(parse_local("2026-10-01T08:29"))
    assert briefings(chat, "u-李强") == []
    await chat.app.advance_to(parse_local("2026-10-01T08:30"))
    for where in ("u-李强", "u-赵敏", "g-duty"):
        got = briefings(chat, where)
        assert len(got) == 1 and got[0].startswith("【早报】10月1日（星期四）国庆节"), where
    assert [d.is_group for d in chat.adapter.delivered if d.chat_id == "g-duty"] == [True]
    assert briefings(chat, "u-王芳") == [] and briefings(chat, "u-张伟") == []


async def test_once_a_day(engine: Engine) -> None:
    chat, _ = build_app(engine, "2026-09-30T09:00")
    await chat.app.advance_to(parse_local("2026-10-02T09:00"))
    titles = [t.splitlines()[0] for t in briefings(chat, "u-李强")]
    assert titles == ["【早报】10月1日（星期四）国庆节", "【早报】10月2日（星期五）国庆节"]
    await chat.app.advance_to(parse_local("2026-10-02T23:59"))
    assert len(briefings(chat, "g-duty")) == 2


async def test_one_catch_up_briefing_after_downtime(engine: Engine) -> None:
    chat, clock = build_app(engine, "2026-11-23T09:00")
    await chat.app.advance_to(clock.now())            # running: the cron starts counting
    clock.set(parse_local("2026-11-26T10:00"))        # down for three days
    chat.app.scheduler.catch_up()
    await chat.app.drain()
    got = briefings(chat, "u-李强")
    assert len(got) == 1
    assert got[0].startswith("【早报】11月26日（星期四）工作日\n（补发：原定 11月26日 08:30，因系统未运行而延迟）")
    await chat.app.advance_to(parse_local("2026-11-26T23:00"))
    assert len(briefings(chat, "u-李强")) == 1


async def test_weekly_summary_on_monday_after_the_briefing(engine: Engine) -> None:
    chat, _ = build_app(engine, "2026-11-22T09:00")   # Sunday
    await chat.app.advance_to(parse_local("2026-11-24T09:00"))
    texts = [d.text.splitlines()[0] for d in chat.adapter.delivered if d.chat_id == "u-赵敏"]
    assert texts == ["【早报】11月23日（星期一）工作日", "【周报】11月16日—11月22日",
                     "【早报】11月24日（星期二）工作日"]
    assert len(briefings(chat, "g-duty", "【周报】")) == 1


async def test_brief_command(engine: Engine) -> None:
    chat, _ = build_app(engine, "2026-11-23T10:00")
    with Session(engine) as session:
        reply(session, ReplyCategory.error_report, "2026-11-16T10:00", parse_local("2026-11-23T10:00"))
        make_person(session, "无角色", roles=(), now=parse_local("2026-11-23T10:00"))
        session.commit()
    text = await chat.send("/brief", as_="王芳")
    assert text.startswith("【早报】11月23日（星期一）工作日") and "【超期未答复留言】1 条" in text
    assert (await chat.send("早报", as_="李强")).startswith("【早报】")
    assert (await chat.send("/brief week", as_="张伟")).startswith("【周报】11月16日—11月22日")
    assert (await chat.send("周报", as_="赵敏")).startswith("【周报】")
    assert (await chat.send("/brief", as_="王芳", group="g-duty")).startswith("【早报】")
    assert "用法：/brief" in await chat.send("/brief 明年", as_="王芳")
    assert "需要以下角色之一" in await chat.send("/brief", as_="无角色")
    unbound = await chat.send("/brief", as_="路人甲")
    assert "还没有绑定身份" in unbound and "早报" not in unbound
    assert "/brief" in await chat.send("/help", as_="王芳")
