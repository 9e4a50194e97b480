"""Read-only views of posting cadence: what ``/post 名称`` shows of one account
(:func:`status_lines`), the accounts behind now for the daily briefing (:func:`behind`), and
each requirement in words (:func:`requirement_zh`). The rules and their reading are in
:mod:`accounts.cadence`; nothing here writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from accounts.cadence import (
    CadenceRules,
    Finding,
    active_accounts,
    days_of,
    findings,
    load_facts,
    md,
)
from accounts.duties import account_name
from accounts.models import Account, AccountState
from accounts.posts import when_zh
from core.clock import local
from core.profiles import NOT_REQUIRED, Profile, RuleValue
from core.workdays import WorkdayCalendar


def behind(*, session: Session, now: datetime, calendar: WorkdayCalendar,
           profile: Profile) -> list[tuple[Account, list[Finding]]]:
    """The active accounts behind their cadence now, with what they are behind on."""
    rules = CadenceRules.of(profile)
    if not rules.any:
        return []
    accounts = active_accounts(session)
    facts = load_facts(session=session, accounts=accounts, now=now)
    today = local(now).date()
    out = []
    for account in accounts:
        late = [f for f in findings(facts=facts[account.id or 0], rules=rules, today=today, calendar=calendar,
                                    warn_days_ahead=0, briefing=True) if f.behind]
        if late:
            out.append((account, late))
    return out



def requirement_zh(value: RuleValue) -> str:
    """The requirement in words: ``每周至少更新3次``, ``除节假日外每天至少发布1条``, …"""
    ref = f"{value.rule_id}.{value.key}"
    if ref == "FRESH-2.posts_per_week":
        return f"每周至少更新{value.quantity.amount}次"
    if ref == "FRESH-2.post_interval":
        days = days_of(value)
        return "除节假日外每天至少发布1条" if days == 1 else f"不得连续{days}个工作日未发布"
    if ref == "FRESH-3.original_interval":
        return f"每{value.quantity.zh()}至少发布1条原创"
    return f"超过{days_of(value)}天未发布须说明理由"


def _required(value: RuleValue | None, what: str) -> str:
    return f"{requirement_zh(value)}（{value.citation}）" if value is not None else f"{what}：{NOT_REQUIRED}"


def status_lines(*, session: Session, account: Account, now: datetime, calendar: WorkdayCalendar,
                 profile: Profile, warn_days_ahead: int) -> list[str]:
    """The account's cadence as ``/post 名称`` shows it: this week's count against the
    minimum, today, the last post and the last original, each with its article (or
    本地规定未作要求), then what it is behind on or close to."""
    assert account.id is not None
    rules = CadenceRules.of(profile)
    facts = load_facts(session=session, accounts=[account], now=now)[account.id]
    today = local(now).date()
    monday = today - timedelta(days=today.weekday())
    count = facts.count(monday, today)
    week = f"本周（{md(monday)}—{md(monday + timedelta(days=6))}）已发布 {count} 次；"
    if rules.per_week is not None:
        need = rules.per_week.quantity.amount
        week += _required(rules.per_week, "") + (f"，还需 {need - count} 次" if count < need else "，已达到")
    else:
        week += _required(None, "每周发布次数")
    info = calendar.day(today)
    kind = ("工作日" if info.is_workday else "休息日") + ("（暂定）" if info.provisional else "")
    lines = [f"{account_name(session, account)} 发布情况：", week,
             f"今天（{kind}）已发布 {facts.per_day.get(today, 0)} 条；" + _required(rules.every_workday, "每日发布")]
    last = f"最近发布：{when_zh(facts.last_post, now)}" if facts.last_post else "最近发布：无记录"
    lines.append(f"{last}；" + _required(rules.silence, "停更时限"))
    original = f"最近原创：{when_zh(facts.last_original, now)}" if facts.last_original else "最近原创：无记录"
    lines.append(f"{original}；" + _required(rules.original, "原创发布"))
    if account.state != AccountState.active:
        lines.append("该账号不在用，不检查发布频次。")
        return lines
    lines += [("未达要求：" if f.stage == "breach" else "提醒：") + f.short
              for f in findings(facts=facts, rules=rules, today=today, calendar=calendar,
                                warn_days_ahead=warn_days_ahead)]
    return lines
