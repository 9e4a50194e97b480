"""The accounts in the daily briefing: the accounts behind their posting cadence under the
active profile and the open account duties, in short lines; nothing when there is nothing,
and no cadence under a profile that states none."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session

from accounts import duties
from accounts.duties import DutyPolicy
from bot.config import load_settings
from briefing.models import Briefing
from briefing.service import build_daily
from core.clock import parse_local
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from tests.accounts.cadence_factories import make_account, post_on

SETTINGS = load_settings(None, env={})
CALENDAR = WorkdayCalendar()


def _brief(session: Session, at: str, profile: str | None) -> Briefing:
    return build_daily(session=session, now=parse_local(at), calendar=CALENDAR, settings=SETTINGS.briefing,
                       profile=load_profile(profile) if profile else None)


def test_nothing_is_said_when_every_account_keeps_its_cadence(engine: Engine) -> None:
    with Session(engine) as session:
        assert _brief(session, "2026-11-23T08:30", "liangping").section("accounts.cadence") is None
        account = make_account(session, "梁平发布", registered=date(2026, 11, 1))
        post_on(session, account, *(f"2026-11-{d:02d}" for d in range(2, 23, 2)))   # 3 or 4 a week
        built = _brief(session, "2026-11-23T08:30", "liangping")
    assert built.section("accounts.cadence") is None and built.section("accounts.duties") is None
    assert "账号" not in built.text()


def test_a_liangping_shortfall_is_listed_on_monday_and_the_danger_late_in_the_week(engine: Engine) -> None:
    with Session(engine) as session:
        account = make_account(session, "梁平发布", registered=date(2026, 11, 1))
        post_on(session, account, "2026-11-16", "2026-11-18", "2026-11-23")
        monday = _brief(session, "2026-11-23T08:30", "liangping")
        tuesday = _brief(session, "2026-11-24T08:30", "liangping")
        saturday = _brief(session, "2026-11-28T08:30", "liangping")
    section = monday.section("accounts.cadence")
    assert section is not None and section.lines(5) == [
        "【账号更新未达要求】1 个账号", "· 梁平发布：上周仅发布2次（每周至少3次）",
        "依据：梁平办法第十七条。发布后发送 /post 名称 标题 登记；查看：/post 名称"]
    assert "更新滞后1" in monday.text()
    assert tuesday.section("accounts.cadence") is None            # last week is Monday's news
    late = saturday.section("accounts.cadence")                    # 2 missing, 2 days left
    assert late is not None and late.items == ("梁平发布：本周已发布1次，还需2次，剩2天",)


def test_a_yunnan_working_day_without_a_post_is_listed_the_next_morning(engine: Engine) -> None:
    with Session(engine) as session:
        account = make_account(session, "云南发布", registered=date(2026, 9, 1))
        post_on(session, account, "2026-09-30", "2026-10-08", original=True)
        holiday = _brief(session, "2026-10-05T08:30", "yunnan")     # 国庆: 9月30日 had its post
        friday = _brief(session, "2026-10-09T08:30", "yunnan")
        saturday = _brief(session, "2026-10-10T08:30", "yunnan")
        none_at_all = _brief(session, "2026-10-10T08:30", "guzhang")
        without_profile = _brief(session, "2026-10-10T08:30", None)
    assert holiday.section("accounts.cadence") is None and friday.section("accounts.cadence") is None
    section = saturday.section("accounts.cadence")
    assert section is not None and section.items == ("云南发布：10月9日（工作日）未发布",)
    assert section.hint.startswith("依据：云南办法第二十二条。")
    assert none_at_all.section("accounts.cadence") is None
    assert without_profile.section("accounts.cadence") is None


def test_open_account_duties_are_listed_overdue_first_and_those_without_a_limit_last(engine: Engine) -> None:
    now = parse_local("2026-11-23T08:30")
    with Session(engine) as session:
        account = make_account(session, "宝鸡发布", registered=date(2026, 10, 1))
        duties.open_duty(session=session, account=account, kind="explain", rule_id="FRESH-4", citation="宝鸡办法第十六条",
                         title="超过14天未发布信息：向市政务公开办公室说明理由，或及时清理关停", now=now, actor="system",
                         calendar=CALENDAR, policy=DutyPolicy())
        duties.open_duty(session=session, account=account, kind="filing", rule_id="LIFE-1", citation="宝鸡办法第八条",
                         title="变更后备案", now=now, actor="张伟", calendar=CALENDAR, policy=DutyPolicy(),
                         deadline=CALENDAR.add_workdays(parse_local("2026-11-16T10:00"), 5))
        built = _brief(session, "2026-11-24T08:30", "baoji")
    section = built.section("accounts.duties")
    assert section is not None and section.lines(5) == [
        "【账号待办事项】2 项，其中超期 1 项",
        "· 编号2 宝鸡发布：变更后备案｜已超期8小时30分钟（昨天 24:00）",
        "· 编号1 宝鸡发布：超过14天未发布信息：向市政务公开办公室说明理由，或及时清理关停｜未规定时限",
        duties.DONE_HINT]
    assert "账号待办2（超期1）" in built.text()
