"""The briefing's own sections: reply deadlines, undelivered messages, calendar data
(daily), and last week's figures (weekly). Each is a provider (see ``briefing.models``).

Every daily count is one query on an index: reply items by ``(status, due_at)``, outbox
rows by ``(status, next_attempt_at)``; lists fetch only the first ``max_lines`` rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from briefing.models import BriefingConfig, Section, SectionProvider, Urgency
from core.clock import local, local_midnight
from core.db import select_row
from core.outbox import OutboxMessage, OutboxStatus
from core.workdays import WorkdayCalendar
from people.filings import DONE_HINT
from people.filings import line as filing_line
from people.models import Person, StaffFiling
from replies.models import CATEGORY_ZH, ReplyCategory, ReplyItem, ReplyStatus

# Dead outbox rows stay dead until `dutybot outbox retry`; after this long they leave the
# daily briefing (the admins were told when each one died). Rows that waited for their
# person to bind and expired (bot/waiting.py) are not listed: the admins were told once
# per person when the wait began and once when it ended; the people still waited for are
# one line instead.
DEAD_WINDOW = timedelta(days=7)
# The longest period the bot counts is REPLY-4's 3 months: a year matters once a
# deadline counted from today can reach it. Warning all year about next year's missing
# notice (published in Q4) would teach people to skip the line.
CALENDAR_HORIZON = timedelta(days=92)
_M = OutboxMessage


def week_before(now: datetime) -> tuple[date, date]:
    """The seven Asia/Shanghai days before ``now``'s day: (first, last)."""
    last = local(now).date() - timedelta(days=1)
    return last - timedelta(days=6), last


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {pid: name for pid, name in session.exec(
        select(Person.id, Person.name).where(col(Person.id).in_(ids))) if pid is not None}


def _category(value: str) -> str:
    try:
        return CATEGORY_ZH[ReplyCategory(value)]
    except ValueError:
        return value


def _clock(due_at: datetime, last_day: date) -> str:
    """'' for the usual 24:00 end, else the office cut-off ``17:30``."""
    loc = local(due_at)
    return "" if loc.date() != last_day and loc.hour == loc.minute == 0 else f"{loc:%H:%M}"


def _count(session: Session, *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(ReplyItem).where(*where)).one())


def _open_replies(session: Session, now: datetime, settings: BriefingConfig, *, key: str,
                  urgency: Urgency, title: str, tag: str, lo: datetime | None, hi: datetime,
                  hint: str = "") -> Section | None:
    """Open items with ``lo < due_at <= hi``: count, then the first by deadline."""
    where = [col(ReplyItem.status) == ReplyStatus.open, col(ReplyItem.due_at) <= hi]
    where += [col(ReplyItem.due_at) > lo] if lo is not None else []
    total = _count(session, *where)
    if not total:
        return None
    rows = session.exec(select_row(ReplyItem.number, ReplyItem.category, ReplyItem.due_at,
                                   ReplyItem.due_last_day, ReplyItem.assignee_id)
                        .where(*where).order_by(col(ReplyItem.due_at), col(ReplyItem.id))
                        .limit(settings.max_lines)).all()
    names = _names(session, {assignee for *_, assignee in rows if assignee is not None})
    today = local(now).date()
    items = []
    for number, category, due_at, last_day, assignee in rows:
        if urgency == Urgency.overdue:
            late = (today - last_day).days
            when = f"超期{late}天" if late >= 1 else "今日超期"
        else:
            when = _clock(due_at, last_day)
        who = names.get(assignee, "未指派") if assignee is not None else "未指派"
        items.append(" ".join(x for x in (number, _category(category), when, who) if x))
    return Section(key, urgency, f"【{title}】{total} 条", tag=f"{tag}{total}", items=tuple(items),
                   total_items=total, hint=hint)


# ---------------------------------------------------------------- daily providers

def overdue_replies(session: Session, now: datetime, calendar: WorkdayCalendar,
                    settings: BriefingConfig) -> Section | None:
    """Open reply items past their deadline, the longest overdue first."""
    return _open_replies(session, now, settings, key="replies.overdue", urgency=Urgency.overdue,
                         title="超期未答复留言", tag="超期", lo=None, hi=now,
                         hint="请督促办理：/reply list overdue")


def replies_due_today(session: Session, now: datetime, calendar: WorkdayCalendar,
                      settings: BriefingConfig) -> Section | None:
    """Open reply items whose deadline ends today (and has not passed)."""
    tomorrow = local(now).date() + timedelta(days=1)
    return _open_replies(session, now, settings, key="replies.today", urgency=Urgency.today,
                         title="今日到期留言", tag="今日到期", lo=now,
                         hi=local_midnight(tomorrow), hint="查看：/reply list due")


def replies_due_tomorrow(session: Session, now: datetime, calendar: WorkdayCalendar,
                         settings: BriefingConfig) -> Section | None:
    """Open reply items whose deadline ends tomorrow."""
    tomorrow = local(now).date() + timedelta(days=1)
    return _open_replies(session, now, settings, key="replies.tomorrow", urgency=Urgency.soon,
                         title="明日到期留言", tag="明日到期", lo=local_midnight(tomorrow),
                         hi=local_midnight(tomorrow + timedelta(days=1)))


def undelivered_messages(session: Session, now: datetime, calendar: WorkdayCalendar,
                         settings: BriefingConfig) -> Section | None:
    """Outbox rows of the last :data:`DEAD_WINDOW` whose delivery failed, by recipient
    (most first); not those that expired waiting for their person to bind.

    A dead row's ``next_attempt_at`` is its last attempt, i.e. when it died.
    """
    chat = case((col(_M.person_id).is_(None), _M.chat_id), else_=None)
    rows = session.exec(select(_M.person_id, chat, func.count())
                        .where(_M.status == OutboxStatus.dead,
                               col(_M.next_attempt_at) > now - DEAD_WINDOW,
                               col(_M.expires_at).is_(None))
                        .group_by(col(_M.person_id), chat)
                        .order_by(func.count().desc(), col(_M.person_id).is_(None), col(_M.person_id),
                                  chat)).all()
    total = sum(n for _, _, n in rows)
    if not total:
        return None
    names = _names(session, {pid for pid, _, _ in rows[:settings.max_lines] if pid is not None})
    items = tuple(f"{names.get(pid, f'人员#{pid}') if pid is not None else f'群聊 {chat_id}'} {n} 条"
                  for pid, chat_id, n in rows[:settings.max_lines])
    return Section("outbox.dead", Urgency.system, f"【消息未送达】近{DEAD_WINDOW.days}天 {total} 条",
                   tag=f"未送达{total}", items=items, total_items=len(rows),
                   hint="请管理员运行 dutybot outbox 查看")


def waiting_messages(session: Session, now: datetime, calendar: WorkdayCalendar,
                     settings: BriefingConfig) -> Section | None:
    """People bound on no chat platform whose messages wait for them to bind: one line."""
    rows = session.exec(select(_M.person_id, func.min(_M.id)).where(_M.status == OutboxStatus.waiting)
                        .group_by(col(_M.person_id)).order_by(func.min(_M.id))).all()
    ids = [pid for pid, _ in rows if pid is not None]
    if not ids:
        return None
    names = _names(session, set(ids[:settings.max_lines]))
    shown = "、".join(names.get(pid, f"人员#{pid}") for pid in ids[:settings.max_lines])
    more = f"等 {len(ids)} 人" if len(ids) > settings.max_lines else ""
    return Section("outbox.waiting", Urgency.system,
                   f"【消息待送达】{len(ids)} 人未绑定，消息等待中：{shown}{more}", tag=f"待绑定{len(ids)}",
                   hint="绑定后自动送达；生成绑定码：dutybot people invite 姓名")


def calendar_data(session: Session, now: datetime, calendar: WorkdayCalendar,
                  settings: BriefingConfig) -> Section | None:
    """A warning when this year, or next year within :data:`CALENDAR_HORIZON`, has no data."""
    today = local(now).date()
    years = sorted({today.year, (today + CALENDAR_HORIZON).year})
    missing = [year for year in years if calendar.coverage(year) is None]
    if not missing:
        return None
    shown = "、".join(str(year) for year in missing)
    return Section("calendar.missing", Urgency.system, f"【日历】缺少 {shown} 年节假日数据",
                   tag="日历缺数据",
                   hint=f"相关期限暂按周末和固定节日计算（暂定）；国务院放假通知发布后，"
                        f"请管理员填写 holidays/{missing[-1]}.toml")


def staff_filings(session: Session, now: datetime, calendar: WorkdayCalendar,
                  settings: BriefingConfig) -> Section | None:
    """Staff changes not yet filed with the district office (STAFF-2), oldest first; only
    recorded where the profile states the rule (``people.filings``)."""
    where = col(StaffFiling.filed_at).is_(None)
    total = int(session.exec(select(func.count()).select_from(StaffFiling).where(where)).one())
    if not total:
        return None
    rows = session.exec(select(StaffFiling).where(where).order_by(col(StaffFiling.id))
                        .limit(settings.max_lines)).all()
    return Section("people.filings", Urgency.system, f"【人员变动待备案】{total} 项", tag=f"待备案{total}",
                   items=tuple(filing_line(r) for r in rows), total_items=total, hint=f"请管理员{DONE_HINT}")


# ---------------------------------------------------------------- weekly providers

def weekly_replies(session: Session, now: datetime, calendar: WorkdayCalendar,
                   settings: BriefingConfig) -> Section | None:
    """The week's figures: items received in it, items closed in it (on time / late),
    and items open (and overdue) now."""
    first, last = week_before(now)
    lo, hi = local_midnight(first), local_midnight(last + timedelta(days=1))
    received = _count(session, col(ReplyItem.received_at) >= lo, col(ReplyItem.received_at) < hi)
    closed, on_time = session.exec(
        select(func.count(), func.sum(case((col(ReplyItem.closed_at) <= col(ReplyItem.due_at), 1),
                                           else_=0)))
        .where(col(ReplyItem.closed_at) >= lo, col(ReplyItem.closed_at) < hi)).one()
    open_now, overdue_now = session.exec(
        select(func.count(), func.sum(case((col(ReplyItem.due_at) <= now, 1), else_=0)))
        .where(ReplyItem.status == ReplyStatus.open)).one()
    closed, on_time, open_now = int(closed), int(on_time or 0), int(open_now)
    rate = f"，按时率 {on_time / closed:.1%}" if closed else ""
    return Section("replies.week", Urgency.info, "【群众留言】", figures=(
        f"收到 {received} 条",
        f"办结 {closed} 条：按时 {on_time}，超期 {closed - on_time}{rate}",
        f"目前在办 {open_now} 条，其中已超期 {int(overdue_now or 0)} 条"))


def weekly_undelivered(session: Session, now: datetime, calendar: WorkdayCalendar,
                       settings: BriefingConfig) -> Section | None:
    """Outbox rows that died last week (those that expired waiting for a binding counted
    apart)."""
    first, last = week_before(now)
    dead, expired = session.exec(
        select(func.count(), func.sum(case((col(_M.expires_at).is_not(None), 1), else_=0)))
        .select_from(_M).where(
            _M.status == OutboxStatus.dead, col(_M.next_attempt_at) >= local_midnight(first),
            col(_M.next_attempt_at) < local_midnight(last + timedelta(days=1)))).one()
    dead, expired = int(dead), int(expired or 0)
    apart = f"（其中 {expired} 条因收件人未绑定而过期）" if expired else ""
    return Section("outbox.week", Urgency.info, f"【消息投递】本周未送达 {dead} 条{apart}",
                   hint="请管理员运行 dutybot outbox 查看" if dead else "")


DAILY: tuple[SectionProvider, ...] = (overdue_replies, replies_due_today, replies_due_tomorrow,
                                      undelivered_messages, waiting_messages, calendar_data,
                                      staff_filings)
WEEKLY: tuple[SectionProvider, ...] = (weekly_replies, weekly_undelivered)
