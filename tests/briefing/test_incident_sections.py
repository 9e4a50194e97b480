"""Incidents in the daily briefing and the weekly summary: content and order for a
database seeded through the real service, the cut lists, yesterday's and last week's
figures, and the briefing through chat while the escalation ladder runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.adapters.memory import MemoryAdapter, MemoryChat
from bot.app import App
from bot.config import load_settings
from briefing import incident_sections as incident_briefing
from briefing import sections as briefing_sections
from briefing.service import build_daily, build_weekly
from core.clock import FakeClock, parse_local
from core.messages import Attachment
from core.workdays import WorkdayCalendar
from incidents import actions
from incidents import service as svc
from incidents.evidence import store_attachment
from incidents.models import Grade, Incident, IncidentType, Source
from incidents.service import IncidentPolicy
from people.models import Person, Role
from replies.models import ReplyCategory, ReplyChannel
from replies.service import create_item
from tests.factories import make_person

SETTINGS = load_settings(None, env={})
POLICY = IncidentPolicy()
TARGET = {IncidentType.site_down: "https://www.example.gov.cn", IncidentType.content_error:
          "https://www.example.gov.cn/zwgk/1.html", IncidentType.hack: "微信公众号“某某发布”",
          IncidentType.opinion: "微博@某街道", IncidentType.sensitive: "https://www.example.gov.cn/tzgg/2.html"}


class With2027(WorkdayCalendar):
    """The package's data, and 2027 as if an admin had filled holidays/2027.toml."""

    def coverage(self, year: int) -> str | None:
        return "override" if year == 2027 else super().coverage(year)


CALENDAR = With2027()
# The incidents' and the briefing's own providers, whatever other domains exist.
PROVIDERS = (*incident_briefing.DAILY, *briefing_sections.DAILY)


def people(session: Session, now: datetime) -> dict[str, Person]:
    return {
        "王芳": make_person(session, "王芳", roles=(Role.officer,), now=now),
        "李强": make_person(session, "李强", roles=(Role.leader,), now=now),
        "赵敏": make_person(session, "赵敏", roles=(Role.principal,), now=now),
    }


def report(session: Session, who: Person, type_: IncidentType, at: str,
           grade: Grade = Grade.general) -> Incident:
    return actions.open_incident(
        session=session, calendar=CALENDAR, profile=SETTINGS.profile(), policy=POLICY, type_=type_,
        target=TARGET[type_], description="首页无法打开", reporter=who, unit="区政府办",
        source=Source.self_found, grade=grade, now=parse_local(at), actor="test")


def ack(session: Session, incident: Incident, who: Person, at: str) -> None:
    assert actions.acknowledge(session=session, incident=incident, person=who, now=parse_local(at), actor="test")


def done(session: Session, incident: Incident, who: Person, seq: int, at: str) -> None:
    step = svc.find_step(session=session, incident=incident, ref=str(seq))
    actions.complete_step(session=session, calendar=CALENDAR, profile=SETTINGS.profile(), policy=POLICY,
                      incident=incident, step=step, person=who, now=parse_local(at), actor="test",
                      note="电话 区网信办张科长" if step.external
                      else "审：王芳、李强、赵敏 校：王芳、孙丽、李强" if step.signoff_required else "")


def close(session: Session, incident: Incident, who: Person, at: str) -> None:
    actions.close(session=session, incident=incident, person=who, conclusion="已恢复", now=parse_local(at),
              actor="test", policy=POLICY)


def cancel(session: Session, incident: Incident, who: Person, at: str) -> None:
    actions.withdraw(session=session, incident=incident, person=who, reason="重复报告", false_alarm=False,
                 now=parse_local(at), actor="test", policy=POLICY)


def reply(session: Session, received: str, now: datetime) -> str:
    item, _ = create_item(
        session=session, calendar=CALENDAR, profile=SETTINGS.profile(),
        category=ReplyCategory.error_report, channel=ReplyChannel.website, summary="栏目信息有误",
        received_at=parse_local(received), unit="区政府办", assignee=None, created_by=None, now=now,
        actor="test")
    return item.number


def blocks(text: str) -> dict[str, list[str]]:
    """The briefing's blocks by their headline's 【title】."""
    out = {}
    for block in text.split("\n\n")[1:]:
        lines = block.splitlines()
        out[lines[0].split("】")[0] + "】"] = lines
    return out


DAILY = """\
【早报】11月23日（星期一）工作日
概况：超期事件1，未确认事件1，超期1，在办事件1，今日到期1

【超期事件】1 起
· INC-20261122-002 无法访问 重大 步骤1“立即通知技术保障人员处理” 截止 11月22日 20:30，已超期12小时（另有 1 步超期），无人确认
请督促处置：/incident list overdue

【未确认事件】1 起
· INC-20261123-001 内容错误 一般 11月23日 08:10 报告，20分钟无人确认
请尽快确认：/incident ack 编号；接手处置：/incident take 编号

【超期未答复留言】1 条
· MSG-20261123-001 找错 超期4天 未指派
请督促办理：/reply list overdue

【在办事件】1 起
· INC-20261120-001 内容错误 一般 处置中 下一步：步骤2“更正内容，按规定审核校对后重新发布” 截止 11月23日 24:00
查看：/incident list

【今日到期留言】1 条
· MSG-20261123-002 找错 未指派
查看：/reply list due

【昨日事件】新增 2 起，结案 2 起，撤销或误报 1 起
重大、特级事件：
· INC-20261122-001 无法访问 特级 新增（已结案）
· INC-20261122-002 无法访问 重大 新增（待确认）
· INC-20261121-001 舆情 重大 已结案"""


def test_daily_briefing_content_and_order(engine: Engine) -> None:
    now = parse_local("2026-11-23T08:30")
    with Session(engine) as session:
        p = people(session, parse_local("2026-11-01T09:00"))
        wang, li = p["王芳"], p["李强"]
        # Friday's content error: step 1 done, step 2 due at the end of Monday.
        friday = report(session, wang, IncidentType.content_error, "2026-11-20T10:00")
        done(session, friday, wang, 1, "2026-11-20T10:05")
        # Saturday's major opinion incident, closed yesterday after every step.
        opinion = report(session, wang, IncidentType.opinion, "2026-11-21T10:00", Grade.major)
        for seq in (1, 2, 3, 4, 5):
            done(session, opinion, li, seq, "2026-11-22T09:00")
        close(session, opinion, li, "2026-11-22T09:30")
        # Saturday's hack report, withdrawn yesterday.
        cancel(session, report(session, wang, IncidentType.hack, "2026-11-21T11:00"), wang,
               "2026-11-22T10:00")
        # Yesterday's special outage, handled and closed the same day.
        special = report(session, wang, IncidentType.site_down, "2026-11-22T09:00", Grade.special)
        done(session, special, wang, 1, "2026-11-22T09:10")
        done(session, special, wang, 2, "2026-11-22T10:00")
        close(session, special, li, "2026-11-22T11:00")
        # Yesterday evening's major outage nobody has acknowledged: both steps overdue.
        report(session, wang, IncidentType.site_down, "2026-11-22T20:00", Grade.major)
        # This morning's content error, not yet acknowledged, its first deadline at 08:40.
        report(session, li, IncidentType.content_error, "2026-11-23T08:10")
        reply(session, "2026-11-16T10:00", now)   # overdue since 11-19
        reply(session, "2026-11-18T10:00", now)   # due today
        session.commit()
        built = build_daily(session=session, now=now, calendar=CALENDAR, settings=SETTINGS.briefing,
                            providers=PROVIDERS)
    assert built.text() == DAILY
    # Each urgency keeps its place: incidents before reply items of the same urgency.
    assert [s.key for s in built.sections] == [
        "incidents.overdue", "incidents.unacknowledged", "replies.overdue", "incidents.open",
        "replies.today", "incidents.yesterday"]


def test_long_lists_are_cut_with_the_rest_counted(engine: Engine) -> None:
    settings = load_settings(None, env={"DUTYBOT_BRIEFING_MAX_LINES": "2"}).briefing
    with Session(engine) as session:
        wang = people(session, parse_local("2026-11-01T09:00"))["王芳"]
        waiting = [report(session, wang, IncidentType.content_error, f"2026-11-23T08:{m:02d}").number
                   for m in (1, 2, 3, 4, 5)]
        late = [report(session, wang, IncidentType.site_down, f"2026-11-23T0{h}:00").number
                for h in (3, 2, 1)]
        session.commit()
        text = build_daily(session=session, now=parse_local("2026-11-23T08:30"), calendar=CALENDAR,
                           settings=settings).text()
    got = blocks(text)
    overdue, unacked = got["【超期事件】"], got["【未确认事件】"]
    assert overdue[0] == "【超期事件】3 起"
    assert [line.split()[1] for line in overdue[1:3]] == [late[2], late[1]]   # the longest overdue first
    assert overdue[3] == "  还有 1 项"
    assert unacked[0] == "【未确认事件】5 起"
    assert [line.split()[1] for line in unacked[1:3]] == waiting[:2]          # the longest waiting first
    assert unacked[3] == "  还有 3 项"
    assert "概况：超期事件3，未确认事件5" in text
    assert "【昨日事件】" not in text


def test_yesterday_is_the_shanghai_day_before_and_notable_ones_are_cut(engine: Engine) -> None:
    settings = load_settings(None, env={"DUTYBOT_BRIEFING_MAX_LINES": "2"}).briefing
    with Session(engine) as session:
        p = people(session, parse_local("2026-11-01T09:00"))
        wang, li = p["王芳"], p["李强"]
        report(session, wang, IncidentType.site_down, "2026-11-21T23:59", Grade.special)  # the day before
        first = report(session, wang, IncidentType.site_down, "2026-11-22T00:00", Grade.major).number
        report(session, wang, IncidentType.content_error, "2026-11-22T12:00")
        report(session, wang, IncidentType.site_down, "2026-11-22T23:59", Grade.special)
        report(session, wang, IncidentType.hack, "2026-11-23T00:00", Grade.special)        # today
        old = report(session, wang, IncidentType.site_down, "2026-11-20T09:00", Grade.major)
        for seq in (1, 2):
            done(session, old, wang, seq, "2026-11-20T10:00")
        close(session, old, li, "2026-11-22T23:59")
        session.commit()
        built = build_daily(session=session, now=parse_local("2026-11-23T08:30"), calendar=CALENDAR,
                            settings=settings)
    section = built.section("incidents.yesterday")
    assert section is not None
    assert section.lines(settings.max_lines) == [
        "【昨日事件】新增 3 起，结案 1 起", "重大、特级事件：",
        f"· {first} 无法访问 重大 新增（待确认）",
        "· INC-20261122-003 无法访问 特级 新增（待确认）",
        "  还有 1 项"]   # the major one closed yesterday
    assert not section.needs_attention


def test_an_optional_step_past_its_deadline_is_not_overdue(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session:
        wang = people(session, parse_local("2026-11-01T09:00"))["王芳"]
        hack = report(session, wang, IncidentType.hack, "2026-11-19T09:00")
        # Logs and screenshots are kept before the attack is cut off (evidence first).
        store_attachment(session=session, incident=hack, attachment=Attachment("log.png", b"\x89PNG", "image/png"),
                         evidence_dir=tmp_path, person=wang, actor="test", now=parse_local("2026-11-19T09:05"))
        for seq, at in ((1, "09:10"), (2, "09:20"), (3, "10:00")):
            done(session, hack, wang, seq, f"2026-11-19T{at}")
        number = hack.number
        session.commit()
        built = build_daily(session=session, now=parse_local("2026-11-23T08:30"), calendar=CALENDAR,
                            settings=SETTINGS.briefing)
    assert built.section("incidents.overdue") is None
    section = built.section("incidents.open")
    assert section is not None and section.items == (
        f"{number} 攻击/盗号 一般 已处置 下一步：步骤4“发布更正或补充说明，消除不当信息影响”（可选） "
        "截止 11月20日 24:00",)


def test_weekly_figures(engine: Engine) -> None:
    with Session(engine) as session:
        p = people(session, parse_local("2026-11-01T09:00"))
        wang, li = p["王芳"], p["李强"]
        # Reported the week before, its step finished late in the week: resolved in it.
        before = report(session, wang, IncidentType.sensitive, "2026-11-13T10:00")
        ack(session, before, wang, "2026-11-13T10:05")
        done(session, before, wang, 1, "2026-11-17T09:00")
        # Acknowledged after 12 minutes; step 2 finished an hour late; resolved after 5 hours.
        outage = report(session, wang, IncidentType.site_down, "2026-11-16T09:00")
        ack(session, outage, wang, "2026-11-16T09:12")
        done(session, outage, wang, 1, "2026-11-16T09:20")
        done(session, outage, wang, 2, "2026-11-16T14:00")
        close(session, outage, li, "2026-11-17T09:00")
        # Acknowledged by doing step 1, 10 minutes late, after 40 minutes; resolved after 23 hours.
        error = report(session, wang, IncidentType.content_error, "2026-11-18T10:00")
        done(session, error, wang, 1, "2026-11-18T10:40")
        done(session, error, wang, 2, "2026-11-19T09:00")
        close(session, error, li, "2026-11-19T10:00")
        cancel(session, report(session, wang, IncidentType.hack, "2026-11-20T09:00"), wang,
               "2026-11-20T09:30")
        report(session, wang, IncidentType.opinion, "2026-11-22T20:00", Grade.major)   # open, overdue
        report(session, wang, IncidentType.content_error, "2026-11-23T08:20")           # this week
        session.commit()
        text = build_weekly(session=session, now=parse_local("2026-11-23T08:30"), calendar=CALENDAR,
                            settings=SETTINGS.briefing).text()
    assert blocks(text)["【事件处置】"] == [
        "【事件处置】",
        "新增 4 起：无法访问 1，内容错误 1，舆情 1，攻击/盗号 1",
        "结案 2 起，撤销或误报 1 起",
        "确认用时中位数 26分钟（2 起）",
        "处置用时中位数 23小时（3 起）",
        "超期完成步骤 3 个",
        "目前未结 3 起，其中有超期步骤 1 起"]
    assert text.index("【事件处置】") < text.index("【群众留言】")


def test_a_quiet_week_and_a_quiet_day(engine: Engine) -> None:
    with Session(engine) as session:
        now = parse_local("2026-11-23T08:30")
        weekly = build_weekly(session=session, now=now, calendar=CALENDAR, settings=SETTINGS.briefing)
        daily = build_daily(session=session, now=now, calendar=CALENDAR, settings=SETTINGS.briefing)
        quiet = build_daily(session=session, now=now, calendar=CALENDAR, settings=SETTINGS.briefing,
                            providers=PROVIDERS)
    assert blocks(weekly.text())["【事件处置】"] == ["【事件处置】本周无事件，目前无未结事件"]
    # The domain is found: the briefing no longer says incidents are not in use.
    assert not [s for s in daily.sections if s.key.startswith("incidents.")]
    assert "事件处置" not in daily.footer
    assert quiet.text() == "【早报】11月23日（星期一）工作日\n一切正常：暂无需要关注的事项。"


# ---------------------------------------------------------------- through a whole app

async def test_briefing_follows_the_ladder_through_chat(engine: Engine) -> None:
    clock = FakeClock(parse_local("2026-11-23T07:50"))
    with Session(engine) as session:
        people(session, clock.now())
        make_person(session, "刘洋", roles=(Role.officer,), now=clock.now(), unit="区政府办公室")
        session.commit()
    adapter = MemoryAdapter()
    settings = load_settings(None, env={"DUTYBOT_INCIDENTS_DISTRICT_OFFICE": "刘洋"})
    chat = MemoryChat(App(settings, clock=clock, adapter=adapter, engine=engine), adapter)
    reply_text = await chat.send("/incident new 无法访问 @区政府办 https://www.example.gov.cn 首页502", as_="刘洋")
    number = reply_text.split("已登记 ")[1].split("（")[0]
    await chat.app.advance_to(parse_local("2026-11-23T08:10"))
    assert "【事件升级·带班领导】" in chat.last("李强")
    brief = await chat.send("/brief", as_="李强")
    assert (f"【未确认事件】1 起\n· {number} 无法访问 一般 11月23日 07:50 报告，20分钟无人确认，"
            "已提醒带班领导") in brief
    await chat.app.advance_to(parse_local("2026-11-23T08:30"))
    morning = [m for m in chat.messages("李强") if m.startswith("【早报】")][-1]   # the 08:30 one
    assert (f"【超期事件】1 起\n· {number} 无法访问 一般 步骤1“立即通知技术保障人员处理” "
            "截止 11月23日 08:20，已超期10分钟，无人确认") in morning
    assert "【未确认事件】" not in morning
    await chat.send(f"/incident done {number} 1", as_="王芳")
    later = await chat.send("/brief", as_="李强")
    assert (f"【在办事件】1 起\n· {number} 无法访问 一般 处置中 下一步：步骤2“确认恢复访问” "
            "截止 11月23日 11:50") in later
    assert "【超期事件】" not in later and "【未确认事件】" not in later
