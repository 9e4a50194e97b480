"""Posting cadence of the active accounts under the active rule profile (FRESH-2/3/4).

What is checked, each only where the profile (or a document it names as its basis, or the
config) states it; a profile stating none of them gets nothing, and no limit is invented:

``FRESH-2.posts_per_week``  posts in the current natural week (Monday–Sunday, Asia/Shanghai)
    against the minimum (梁平第十七条: 原则上每周至少更新3次).
``FRESH-2.post_interval``   every working day needs a post (云南第二十二条: 除节假日外，原则上
    每天至少更新发布1条). *Interpretation*: 节假日 are read as the working-day calendar's rest
    days — weekends and public holidays, a 调休 make-up working day being a working day
    (``core.workdays``). A value of N days means N working days in a row without a post.
    A day the calendar does not know is counted provisionally and said so.
``FRESH-3.original_interval`` days since the last original post against the interval
    (宝鸡第十六条: 每周至少1条, read as 7 days; 云南第二十三条: 每2周至少1条, 14 days).
``FRESH-4.silence``         days since the last post (宝鸡第十六条: 超过14天不发布信息的账号应向
    市政务公开办公室说明理由): past it, an account duty ``explain`` is opened (no deadline:
    the article sets none), once per silence spell.

Counting starts when the bot knows the account: the day it was registered (or became
active), or its earliest recorded post if that is older. A week that began before that is
not judged, and an account with no post recorded is silent since its registration.

Warnings (to the account's holders, :func:`accounts.duties.holders`):

* ahead: ``warn_days_ahead`` days before the last day of a limit (the week's Sunday, the
  day the next original or any post is due); and, for the weekly minimum, as soon as the
  days left in the week (today included) are no more than the posts missing — from then
  on one post a day is not enough to spare. ``warn_days_ahead = 0`` turns off the first kind.
  The daily rule has no warning ahead: a working day without a post is reported the next
  morning (a warning every morning would be noise).
* after a breach: a week that ended short, and an original post overdue, go to the holders
  and the leaders (带班领导) of the account's unit; a working day without a post goes to
  the holders (the leaders read it in the daily briefing). Each says its article.

Every warning carries an event key per account, rule and period, so a re-run, a restart or
another worker never says it twice. Functions work in the caller's transaction and never
commit. The posts counted are recorded by :mod:`accounts.posts` and :mod:`accounts.feeds`;
what ``/post`` and the briefing show is :mod:`accounts.cadence_view`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial

from sqlalchemy import func
from sqlmodel import Session, col, select

from accounts import duties
from accounts.duties import DutyPolicy, account_name, holders, unit_of
from accounts.feeds import FETCH_JOB, fetch_feeds_job
from accounts.models import Account, AccountDuty, AccountPost, AccountState
from core import audit
from core.clock import from_db, local, local_midnight
from core.fetcher import GuardedFetcher
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile, RuleValue
from core.schedule import CronRegistry
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role

log = logging.getLogger(__name__)

CHECK_JOB = "accounts.cadence_check"
EVENT = "account-cadence"
#: Days of posts loaded per account: two weeks, and a streak of working days back.
WINDOW_DAYS = 45
EXPLAIN_KIND = "explain"
POST_HINT = "发布后请发送 /post {name} 标题（原创加“原创”）登记；已接入订阅的账号自动登记。"


@dataclass(frozen=True)
class CadenceRules:
    """The cadence values the profile states (None: not required)."""

    per_week: RuleValue | None = None
    every_workday: RuleValue | None = None
    original: RuleValue | None = None
    silence: RuleValue | None = None

    @classmethod
    def of(cls, profile: Profile) -> CadenceRules:
        return cls(profile.find("FRESH-2", "posts_per_week"), profile.find("FRESH-2", "post_interval"),
                   profile.find("FRESH-3", "original_interval"), profile.find("FRESH-4", "silence"))

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.per_week, self.every_workday, self.original, self.silence))


def days_of(value: RuleValue) -> int:
    """An interval in days (``2 weeks`` → 14)."""
    q = value.quantity
    return q.amount * 7 if q.unit == "weeks" else q.amount


def basis(value: RuleValue) -> str:
    """``依据：梁平办法第十七条：“政务新媒体原则上每周至少更新3次”``."""
    return f"依据：{value.citation}" + (f"：“{value.quote}”" if value.quote else "")


def md(day: date) -> str:
    """``11月23日``."""
    return f"{day.month}月{day.day}日"


def registered_on(account: Account) -> date:
    """The day the bot began tracking the account: registered, or became active if later."""
    return max(local(account.created_at).date(), account.state_since)


@dataclass(frozen=True)
class Facts:
    """What the recorded posts say about one account."""

    registered: date
    first_post: date | None = None
    last_post: datetime | None = None
    last_original: datetime | None = None
    per_day: Mapping[date, int] = field(default_factory=dict)   # the last WINDOW_DAYS

    @property
    def since(self) -> date:
        """The first day the records can be judged on."""
        start = self.registered + timedelta(days=1)
        return min(start, self.first_post) if self.first_post else start

    def count(self, first: date, last: date) -> int:
        """Posts on ``first``..``last``."""
        return sum(n for day, n in self.per_day.items() if first <= day <= last)


def load_facts(*, session: Session, accounts: Sequence[Account], now: datetime) -> dict[int, Facts]:
    """The facts of each account, in three queries whatever their number."""
    ids = [a.id for a in accounts if a.id is not None]
    if not ids:
        return {}
    span = select(AccountPost.account_id, func.min(AccountPost.posted_at), func.max(AccountPost.posted_at)).where(
        col(AccountPost.account_id).in_(ids), col(AccountPost.posted_at) <= now).group_by(col(AccountPost.account_id))
    spans = {aid: (from_db(lo), from_db(hi)) for aid, lo, hi in session.exec(span)}
    last_original = select(AccountPost.account_id, func.max(AccountPost.posted_at)).where(
        col(AccountPost.account_id).in_(ids), col(AccountPost.original).is_(True),
        col(AccountPost.posted_at) <= now).group_by(col(AccountPost.account_id))
    originals = {aid: from_db(at) for aid, at in session.exec(last_original)}
    lo = local_midnight(local(now).date() - timedelta(days=WINDOW_DAYS))
    days: dict[int, Counter[date]] = {aid: Counter() for aid in ids}
    for aid, at in session.exec(select(AccountPost.account_id, AccountPost.posted_at).where(
            col(AccountPost.account_id).in_(ids), col(AccountPost.posted_at) >= lo,
            col(AccountPost.posted_at) <= now)):
        days[aid][local(at).date()] += 1
    out: dict[int, Facts] = {}
    for account in accounts:
        if account.id is None:
            continue
        first, last = spans.get(account.id, (None, None))
        out[account.id] = Facts(registered=registered_on(account), first_post=local(first).date() if first else None,
                                last_post=last, last_original=originals.get(account.id),
                                per_day=dict(days[account.id]))
    return out


# ---------------------------------------------------------------- findings

@dataclass(frozen=True)
class Finding:
    """One thing to say about an account's cadence."""

    value: RuleValue
    stage: str              # "ahead" (before the limit) or "breach"
    period: str             # names the week, day or spell: the event key's last part
    short: str              # for a list line
    detail: str             # the sentence of a message
    behind: bool            # the account is behind now (listed in the briefing)
    leaders: bool = False   # the unit's leaders are told as well

    def event_key(self, account_id: int) -> str:
        return f"{EVENT}:{account_id}:{self.value.rule_id}.{self.value.key}:{self.stage}:{self.period}"


def _weekly(value: RuleValue, facts: Facts, today: date, warn: int, briefing: bool) -> list[Finding]:
    need = value.quantity.amount
    monday = today - timedelta(days=today.weekday())
    sunday = monday + timedelta(days=6)
    found: list[Finding] = []
    if facts.since <= monday:
        count = facts.count(monday, today)
        left, missing = (sunday - today).days + 1, need - count
        if missing > 0 and (missing >= left or (warn > 0 and left - 1 <= warn)):
            found.append(Finding(value, "ahead", monday.isoformat(),
                                 f"本周已发布{count}次，还需{missing}次，剩{left}天",
                                 f"本周（{md(monday)}—{md(sunday)}）已发布{count}次，每周至少更新{need}次，"
                                 f"本周还剩{left}天（含今天），还需发布{missing}次。", behind=missing >= left))
    last_monday = monday - timedelta(days=7)
    if facts.since <= last_monday and (not briefing or today == monday):
        count = facts.count(last_monday, monday - timedelta(days=1))
        if count < need:
            found.append(Finding(value, "breach", last_monday.isoformat(), f"上周仅发布{count}次（每周至少{need}次）",
                                 f"上周（{md(last_monday)}—{md(monday - timedelta(days=1))}）仅发布{count}次，"
                                 f"未达到每周至少更新{need}次的要求。", behind=True, leaders=True))
    return found


def _previous_workday(day: date, calendar: WorkdayCalendar) -> date | None:
    for back in range(1, 31):
        if calendar.is_workday(day - timedelta(days=back)):
            return day - timedelta(days=back)
    return None


def _workdays(value: RuleValue, facts: Facts, today: date, calendar: WorkdayCalendar) -> list[Finding]:
    need = days_of(value)
    last = _previous_workday(today, calendar)
    if last is None or last < facts.since:
        return []
    empty: list[date] = []
    day = last
    while len(empty) < need and day >= facts.since and (today - day).days <= WINDOW_DAYS:
        if calendar.is_workday(day):
            if facts.per_day.get(day):
                return []
            empty.append(day)
        day -= timedelta(days=1)
    if len(empty) < need:
        return []
    guess = "（该年度节假日安排尚未发布，工作日为暂定）" if any(calendar.is_provisional(d) for d in empty) else ""
    if need == 1:
        short, detail = f"{md(last)}（工作日）未发布", f"{md(last)}为工作日，当天未发布信息。"
    else:
        short = f"连续{need}个工作日未发布（至{md(last)}）"
        detail = f"{md(empty[-1])}至{md(last)}连续{need}个工作日未发布信息。"
    return [Finding(value, "breach", last.isoformat(), short, detail + guess, behind=True)]


def _original(value: RuleValue, facts: Facts, today: date, warn: int) -> list[Finding]:
    days = days_of(value)
    ref = local(facts.last_original).date() if facts.last_original else facts.registered
    since = f"最近一次原创发布为{md(ref)}" if facts.last_original else f"自{md(ref)}登记以来未记录原创发布"
    due = ref + timedelta(days=days)
    left = (due - today).days
    every = value.quantity.zh()
    if left < 0:
        rounds = (-left - 1) // days
        return [Finding(value, "breach", f"{ref.isoformat()}+{rounds}", f"{(today - ref).days}天未发布原创（每{every}至少1条）",
                        f"{since}，已{(today - ref).days}天未发布原创信息，超过每{every}至少1条原创的要求。",
                        behind=True, leaders=True)]
    if warn > 0 and left <= warn:
        return [Finding(value, "ahead", ref.isoformat(), f"原创须在{md(due)}前发布",
                        f"{since}，按每{every}至少1条原创的要求，须在{md(due)}（含）前发布原创信息，还剩{left + 1}天。",
                        behind=False)]
    return []


def _silence(value: RuleValue, facts: Facts, today: date, warn: int) -> list[Finding]:
    days = days_of(value)
    ref = local(facts.last_post).date() if facts.last_post else facts.registered
    since = f"最近一次发布为{md(ref)}" if facts.last_post else f"自{md(ref)}登记以来未记录发布"
    silent = (today - ref).days
    last_ok = ref + timedelta(days=days)
    if silent > days:
        return [Finding(value, "breach", ref.isoformat(), f"已{silent}天未发布（超过{days}天）",
                        f"{since}，已{silent}天未发布信息，超过{days}天。", behind=True)]
    if warn > 0 and (last_ok - today).days <= warn:
        return [Finding(value, "ahead", ref.isoformat(), f"已{silent}天未发布",
                        f"{since}，已{silent}天未发布信息；超过{days}天不发布须说明理由，请在{md(last_ok)}（含）前发布。",
                        behind=False)]
    return []


def findings(*, facts: Facts, rules: CadenceRules, today: date, calendar: WorkdayCalendar,
             warn_days_ahead: int, briefing: bool = False) -> list[Finding]:
    """Everything to say about one account today (see the module docstring).

    Args:
        briefing: for the daily briefing: last week's shortfall only on Monday.
    """
    found: list[Finding] = []
    if rules.per_week is not None:
        found += _weekly(rules.per_week, facts, today, warn_days_ahead, briefing)
    if rules.every_workday is not None:
        found += _workdays(rules.every_workday, facts, today, calendar)
    if rules.original is not None:
        found += _original(rules.original, facts, today, warn_days_ahead)
    if rules.silence is not None:
        found += _silence(rules.silence, facts, today, warn_days_ahead)
    return found


def active_accounts(session: Session) -> list[Account]:
    """Accounts in use (在用), by id."""
    return list(session.exec(select(Account).where(Account.state == AccountState.active).order_by(col(Account.id))))


# ---------------------------------------------------------------- the daily check

def leaders_of(session: Session, account: Account) -> list[Person]:
    """The leaders (带班领导) of the account's unit (all leaders if the unit has none)."""
    unit = unit_of(session, account)
    people = people_with_role(session=session, role=Role.leader)
    return [p for p in people if unit and p.unit == unit] or people


def explain_title(profile: Profile, days: int) -> str:
    """What the unit must do after a silence past the limit."""
    if profile.rule("FRESH-4").regulated:
        return f"超过{days}天未发布信息：向市政务公开办公室说明理由，或及时清理关停"
    return f"超过{days}天未发布信息：请说明理由"


def _warn(session: Session, account: Account, finding: Finding, now: datetime) -> int:
    name = account_name(session, account)
    head = "【账号更新提醒】" if finding.stage == "ahead" else "【账号更新未达要求】"
    text = "\n".join([f"{head}{name}：{finding.detail}", basis(finding.value), POST_HINT.format(name=name)])
    people = list(holders(session, account))
    if finding.leaders:
        people += [p for p in leaders_of(session, account) if p.id not in {h.id for h in people}]
    assert account.id is not None
    key = finding.event_key(account.id)
    queued = sum(enqueue(session=session, message=Outbound(text, person_id=p.id), now=now, event_key=key) is not None
                 for p in people)
    if not people:
        log.warning("cadence %s of account %s: nobody to tell", key, account.id)
    if queued and finding.stage == "breach":
        audit.record(session=session, at=now, entity_type="account", entity_id=account.id, action="cadence_breach",
                     rule=f"{finding.value.rule_id}.{finding.value.key}", period=finding.period,
                     citation=finding.value.citation, zh=f"{name}：{finding.detail}")
    return queued


def _explain(session: Session, account: Account, finding: Finding, facts: Facts, now: datetime, *,
             profile: Profile, calendar: WorkdayCalendar, policy: DutyPolicy) -> int:
    """Open the 说明理由 duty, unless this silence spell already had one."""
    assert account.id is not None
    spell_start = facts.last_post or local_midnight(facts.registered)
    earlier = session.exec(select(AccountDuty.id).where(
        AccountDuty.account_id == account.id, AccountDuty.kind == EXPLAIN_KIND,
        AccountDuty.rule_id == finding.value.rule_id, col(AccountDuty.opened_at) > spell_start)).first()
    if earlier is not None:
        return 0
    duties.open_duty(session=session, account=account, kind=EXPLAIN_KIND, rule_id=finding.value.rule_id,
                     citation=finding.value.citation, title=explain_title(profile, days_of(finding.value)),
                     now=now, actor="system", calendar=calendar, policy=policy)
    return 1


def check_cadence(session: Session, fire_time: datetime, now: datetime, *, profile: Profile,
                  calendar: WorkdayCalendar, warn_days_ahead: int, policy: DutyPolicy) -> int:
    """The daily cron job: every active account's findings, said once each.

    Returns:
        How many messages were queued and duties opened.
    """
    rules = CadenceRules.of(profile)
    if not rules.any:
        return 0
    accounts = active_accounts(session)
    facts = load_facts(session=session, accounts=accounts, now=now)
    today = local(now).date()
    done = 0
    for account in accounts:
        known = facts[account.id or 0]
        for finding in findings(facts=known, rules=rules, today=today, calendar=calendar,
                                warn_days_ahead=warn_days_ahead):
            if finding.value is rules.silence and finding.stage == "breach":
                done += _explain(session, account, finding, known, now, profile=profile, calendar=calendar,
                                 policy=policy)
            else:
                done += _warn(session, account, finding, now)
    log.info("cadence check: %d account(s), %d message(s) or duties", len(accounts), done)
    return done


def feed_cron_fields(minutes: int) -> tuple[str, str]:
    """Cron ``(hour, minute)`` for "every ``minutes``": within an hour ``*/N`` minutes;
    from an hour on, every whole number of hours (rounded)."""
    if minutes < 60:
        return "*", f"*/{minutes}"
    return f"*/{max(1, round(minutes / 60))}", "0"


def register_cadence(scheduler: CronRegistry, *, profile: Profile, calendar: WorkdayCalendar,
                     check_time: str | time, warn_days_ahead: int, policy: DutyPolicy | None = None,
                     feed_fetch_minutes: int = 0, fetcher: GuardedFetcher | None = None) -> None:
    """Register the daily check at ``check_time`` (Asia/Shanghai; also at the first start),
    only where the profile states a cadence rule; and, with ``feed_fetch_minutes`` > 0, the
    feed reading (whatever the profile: the posts also show in the account status).

    Raises:
        ValueError: a job is already registered.
    """
    at = check_time if isinstance(check_time, time) else time.fromisoformat(check_time)
    if CadenceRules.of(profile).any:
        job = partial(check_cadence, profile=profile, calendar=calendar, warn_days_ahead=warn_days_ahead,
                      policy=policy or DutyPolicy())
        scheduler.register_cron(CHECK_JOB, job, run_at_start=True, hour=at.hour, minute=at.minute)
    if feed_fetch_minutes > 0:
        hour, minute = feed_cron_fields(feed_fetch_minutes)
        scheduler.register_cron(FETCH_JOB, partial(fetch_feeds_job, fetcher=fetcher or GuardedFetcher()),
                                hour=hour, minute=minute)
