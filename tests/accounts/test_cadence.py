"""Posting cadence (accounts/cadence.py) under each profile's own articles: 宝鸡's silence
past 14 days opens one 说明理由 duty per silence spell; 梁平's week short of 3 posts warns the
holders and the unit's leaders; 云南's working day without a post is flagged, a 国庆 or 中秋
holiday is not, a 调休 Saturday is; the original-post interval of 宝鸡 (a week) and 云南 (two
weeks); a profile that states none of it (古丈) gets nothing. The clock is moved, never slept."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from accounts import duties
from accounts.cadence import CHECK_JOB, check_cadence, register_cadence
from accounts.duties import DutyPolicy
from accounts.feeds import FETCH_JOB
from accounts.models import Account, AccountDuty, DutyStatus
from bot.scheduler import Scheduler
from core.clock import FakeClock, parse_local
from core.profiles import load_profile
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from tests.accounts.cadence_factories import make_account, post_on, texts_to
from tests.factories import make_person

CALENDAR = WorkdayCalendar()
EXPLAIN = "超过14天未发布信息：向市政务公开办公室说明理由，或及时清理关停"


def _people(session: Session) -> tuple[Person, Person, Person]:
    """The operator, a leader of the account's unit, and a leader of another unit."""
    now = parse_local("2026-09-01T09:00")
    operator = make_person(session, "王芳", roles=(Role.officer,), now=now)
    leader = make_person(session, "李强", roles=(Role.leader,), now=now)
    other = make_person(session, "赵敏", roles=(Role.leader,), now=now, unit="区教委")
    return operator, leader, other


def _check(session: Session, profile: str, at: str, *, warn: int = 2) -> int:
    now = parse_local(at)
    return check_cadence(session, now, now, profile=load_profile(profile), calendar=CALENDAR,
                         warn_days_ahead=warn, policy=DutyPolicy())


def _explains(session: Session, account: Account) -> list[AccountDuty]:
    return list(session.exec(select(AccountDuty).where(AccountDuty.account_id == account.id,
                                                       AccountDuty.kind == "explain")
                             .order_by(col(AccountDuty.id))))


def test_a_baoji_account_silent_for_15_days_must_explain_once_per_silence(engine: Engine) -> None:
    with Session(engine) as session:
        operator, leader, _ = _people(session)
        account = make_account(session, "宝鸡发布", registered=date(2026, 10, 1), operator=operator)
        post_on(session, account, "2026-11-08", original=True)
        _check(session, "baoji", "2026-11-20T09:00")          # 12 days: told ahead, nothing opened
        assert _explains(session, account) == []
        ahead = [t for t in texts_to(session, operator) if "未发布信息；超过14天" in t]
        assert len(ahead) == 1 and "请在11月22日（含）前发布" in ahead[0]
        assert "依据：宝鸡办法第十六条：“超过14天不发布信息的政务新媒体账号”" in ahead[0]
        _check(session, "baoji", "2026-11-22T09:00")          # 14 days: not yet "超过14天"
        assert _explains(session, account) == []

        _check(session, "baoji", "2026-11-23T09:00")          # 15 days
        [duty] = _explains(session, account)
        assert (duty.title, duty.rule_id, duty.citation) == (EXPLAIN, "FRESH-4", "宝鸡办法第十六条")
        assert duty.due_at is None                             # the article sets no time limit
        card = texts_to(session, operator)[-1]
        assert card.startswith(f"【账号事项】宝鸡发布：{EXPLAIN}") and "条款未规定时限" in card

        _check(session, "baoji", "2026-11-24T09:00")
        duties.complete(session=session, duty_id=duty.id or 0, now=parse_local("2026-11-24T15:00"),
                        actor="王芳", reference="已向市政务公开办公室书面说明")
        _check(session, "baoji", "2026-11-26T09:00")          # still silent, but explained: same spell
        assert len(_explains(session, account)) == 1

        post_on(session, account, "2026-11-27")               # posting ends the spell; a new one starts
        _check(session, "baoji", "2026-12-11T09:00")          # 14 days after
        assert len(_explains(session, account)) == 1
        _check(session, "baoji", "2026-12-12T09:00")
        assert [d.status for d in _explains(session, account)] == [DutyStatus.done, DutyStatus.open]
        assert not any(EXPLAIN in t for t in texts_to(session, leader))


def test_an_account_never_posting_is_silent_since_it_was_registered(engine: Engine) -> None:
    with Session(engine) as session:
        operator, _, _ = _people(session)
        account = make_account(session, "宝鸡发布", registered=date(2026, 11, 8), operator=operator)
        _check(session, "baoji", "2026-11-22T09:00")
        assert _explains(session, account) == []
        _check(session, "baoji", "2026-11-23T09:00")
        assert len(_explains(session, account)) == 1
        assert any("自11月8日登记以来未记录发布" in t for t in texts_to(session, operator))


def test_a_liangping_week_of_two_posts_warns_the_holders_and_the_units_leaders(engine: Engine) -> None:
    with Session(engine) as session:
        operator, leader, other = _people(session)
        # Registered on a Sunday: the week of 11月16日 is the first judged.
        account = make_account(session, "梁平发布", registered=date(2026, 11, 15), operator=operator)
        good = make_account(session, "梁平文旅", registered=date(2026, 11, 15), operator=operator)
        post_on(session, account, "2026-11-16", "2026-11-18")
        post_on(session, good, "2026-11-16", "2026-11-18", "2026-11-22")
        for day in range(16, 24):                               # every morning of the week, and Monday
            _check(session, "liangping", f"2026-11-{day}T09:00")
        warned = [t for t in texts_to(session, leader) if "未达到每周至少更新3次" in t]
        assert warned == [
            "【账号更新未达要求】梁平发布：上周（11月16日—11月22日）仅发布2次，未达到每周至少更新3次的要求。\n"
            "依据：梁平办法第十七条：“政务新媒体原则上每周至少更新3次”\n"
            "发布后请发送 /post 梁平发布 标题（原创加“原创”）登记；已接入订阅的账号自动登记。"]
        assert warned[0] in texts_to(session, operator)
        assert texts_to(session, other) == []                   # another unit's leader is not told
        _check(session, "liangping", "2026-11-24T09:00")         # the next morning: not again
        assert len([t for t in texts_to(session, operator) if "未达到" in t]) == 1


def test_a_liangping_week_falling_behind_is_told_before_it_ends(engine: Engine) -> None:
    with Session(engine) as session:
        operator, leader, _ = _people(session)
        account = make_account(session, "梁平发布", registered=date(2026, 11, 22), operator=operator)
        post_on(session, account, "2026-11-23")
        _check(session, "liangping", "2026-11-26T09:00")         # Thursday: 2 missing, 4 days left
        assert texts_to(session, operator) == []
        _check(session, "liangping", "2026-11-27T09:00")         # Friday: Sunday is 2 days ahead
        [ahead] = texts_to(session, operator)
        assert ahead.startswith("【账号更新提醒】梁平发布：本周（11月23日—11月29日）已发布1次，每周至少更新3次，"
                                "本周还剩3天（含今天），还需发布2次。")
        _check(session, "liangping", "2026-11-28T09:00")
        assert len(texts_to(session, operator)) == 1 and texts_to(session, leader) == []

        # With no warning ahead, only the day one post a day no longer spares anything.
        quiet = make_account(session, "梁平文旅", registered=date(2026, 11, 22), operator=operator)
        post_on(session, quiet, "2026-11-23")
        _check(session, "liangping", "2026-11-27T10:00", warn=0)
        assert not any("梁平文旅" in t for t in texts_to(session, operator))
        _check(session, "liangping", "2026-11-28T10:00", warn=0)  # 2 missing, 2 days left
        assert any(t.startswith("【账号更新提醒】梁平文旅") for t in texts_to(session, operator))


def test_a_yunnan_working_day_without_a_post_is_flagged_but_not_a_holiday(engine: Engine) -> None:
    """中秋 9月25日–27日 and 国庆 10月1日–7日 are rest days; 10月10日 (a Saturday) is a 调休 working day."""
    with Session(engine) as session:
        operator, leader, _ = _people(session)
        account = make_account(session, "云南发布", registered=date(2026, 9, 1), operator=operator)
        post_on(session, account, "2026-09-23", "2026-09-24", "2026-09-28", "2026-09-29", "2026-09-30",
                "2026-10-08", "2026-10-12", original=True)       # nothing on the holidays, nor 9日, 10日
        clock = FakeClock(parse_local("2026-09-25T09:00"))
        while clock.now() <= parse_local("2026-10-13T09:00"):
            now = clock.now()
            check_cadence(session, now, now, profile=load_profile("yunnan"), calendar=CALENDAR, warn_days_ahead=2,
                          policy=DutyPolicy())
            clock.advance(timedelta(days=1))
        flagged = [t.splitlines()[0] for t in texts_to(session, operator) if "为工作日" in t]
        assert flagged == ["【账号更新未达要求】云南发布：10月9日为工作日，当天未发布信息。",
                           "【账号更新未达要求】云南发布：10月10日为工作日，当天未发布信息。"]
        assert all("依据：云南办法第二十二条：“除节假日外，原则上每天至少更新发布1条信息”" in t
                   for t in texts_to(session, operator) if "为工作日" in t)
        assert texts_to(session, leader) == []                   # leaders read it in the briefing


def test_jiangchuan_follows_yunnan_and_says_so(engine: Engine) -> None:
    with Session(engine) as session:
        operator, _, _ = _people(session)
        account = make_account(session, "江川发布", registered=date(2026, 11, 1), operator=operator)
        post_on(session, account, "2026-11-19", original=True)
        _check(session, "jiangchuan", "2026-11-23T09:00")        # Friday 11月20日 had no post
        [text] = texts_to(session, operator)
        assert "11月20日为工作日" in text and "依据：参照《云南省政务新媒体管理办法》第二十二条" in text


@pytest.mark.parametrize(("profile", "ahead_on", "due", "breach_on", "citation", "every"), [
    ("baoji", "2026-11-14", "11月16日", "2026-11-17", "宝鸡办法第十六条", "每1周至少1条原创"),
    ("yunnan", "2026-11-21", "11月23日", "2026-11-24", "云南办法第二十三条", "每2周至少1条原创"),
])
def test_the_original_post_interval(engine: Engine, profile: str, ahead_on: str, due: str, breach_on: str,
                                    citation: str, every: str) -> None:
    with Session(engine) as session:
        operator, leader, _ = _people(session)
        account = make_account(session, "本地发布", registered=date(2026, 10, 1), operator=operator)
        post_on(session, account, "2026-11-09", original=True)
        days = [date(2026, 11, 10) + timedelta(days=n) for n in range(15)]
        post_on(session, account, *(d.isoformat() for d in days))    # plain posts every day
        _check(session, profile, f"{date.fromisoformat(ahead_on) - timedelta(days=1)}T09:00")
        assert not any("原创" in t for t in texts_to(session, operator))
        _check(session, profile, f"{ahead_on}T09:00")
        [ahead] = [t for t in texts_to(session, operator) if "原创" in t]
        assert f"最近一次原创发布为11月9日，按{every}的要求，须在{due}（含）前发布原创信息，还剩3天。" in ahead
        _check(session, profile, f"{breach_on}T09:00")
        breach = [t for t in texts_to(session, leader) if "原创" in t]
        assert len(breach) == 1 and breach[0].startswith("【账号更新未达要求】本地发布：最近一次原创发布为11月9日")
        assert f"依据：{citation}" in breach[0] and breach[0] in texts_to(session, operator)
        _check(session, profile, f"{breach_on}T18:00")              # the same day again: once
        assert len([t for t in texts_to(session, leader) if "原创" in t]) == 1


def test_guzhang_states_none_of_it_and_gets_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        operator, leader, _ = _people(session)
        account = make_account(session, "古丈发布", registered=date(2026, 9, 1), operator=operator)
        post_on(session, account, "2026-09-02")                    # then silent for months
        for day in ("2026-10-09T09:00", "2026-11-23T09:00", "2026-11-27T09:00"):
            assert _check(session, "guzhang", day) == 0
        assert texts_to(session, operator) == [] and texts_to(session, leader) == []
        assert _explains(session, account) == []


class Registry:
    def __init__(self) -> None:
        self.crons: dict[str, dict[str, object]] = {}

    def register(self, kind: str, fn: object) -> None:
        raise AssertionError("no due-item processor expected")

    def register_cron(self, name: str, fn: object, *, run_at_start: bool = False, **fields: object) -> None:
        self.crons[name] = {"run_at_start": run_at_start, **fields}


def test_the_jobs_registered_follow_the_profile_and_the_feed_setting() -> None:
    guzhang = Registry()
    register_cadence(guzhang, profile=load_profile("guzhang"), calendar=CALENDAR, check_time="09:00",
                     warn_days_ahead=2)
    assert guzhang.crons == {}
    liangping = Registry()
    register_cadence(liangping, profile=load_profile("liangping"), calendar=CALENDAR, check_time="08:45",
                     warn_days_ahead=2, feed_fetch_minutes=30)
    assert liangping.crons == {CHECK_JOB: {"run_at_start": True, "hour": 8, "minute": 45},
                               FETCH_JOB: {"run_at_start": False, "hour": "*", "minute": "*/30"}}
    hourly = Registry()
    register_cadence(hourly, profile=load_profile("guzhang"), calendar=CALENDAR, check_time="09:00",
                     warn_days_ahead=2, feed_fetch_minutes=120)
    assert hourly.crons == {FETCH_JOB: {"run_at_start": False, "hour": "*/2", "minute": "0"}}


def test_the_scheduler_checks_at_start_and_every_morning(engine: Engine) -> None:
    clock = FakeClock(parse_local("2026-11-23T07:00"))            # Monday, before check time
    with Session(engine) as session:
        operator, leader, _ = _people(session)
        account = make_account(session, "梁平发布", registered=date(2026, 11, 15), operator=operator)
        post_on(session, account, "2026-11-16", "2026-11-17")
        session.commit()
        leader_id = leader.id
    scheduler = Scheduler(engine=engine, clock=clock)
    register_cadence(scheduler, profile=load_profile("liangping"), calendar=CALENDAR, check_time="09:00",
                     warn_days_ahead=2)
    scheduler.tick()                                               # a fresh database: runs at once
    with Session(engine) as session:
        leader = session.get(Person, leader_id)
        assert leader is not None and len(texts_to(session, leader)) == 1
    scheduler.advance_to(parse_local("2026-12-01T10:00"))          # the week of 11月23日 has no post
    with Session(engine) as session:
        leader = session.get(Person, leader_id)
        assert leader is not None
        shortfalls = [t.splitlines()[0] for t in texts_to(session, leader)]
    assert shortfalls == ["【账号更新未达要求】梁平发布：上周（11月16日—11月22日）仅发布2次，未达到每周至少更新3次的要求。",
                          "【账号更新未达要求】梁平发布：上周（11月23日—11月29日）仅发布0次，未达到每周至少更新3次的要求。"]
