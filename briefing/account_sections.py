"""The new-media accounts in the daily briefing: the open account duties (备案, 公告,
说明理由 …, ``accounts.duties``) and the accounts behind their posting cadence under the
active rule profile (``accounts.cadence``). Short lines for a phone; nothing when there is
nothing.

The duties section is a plain provider (:data:`DAILY`). The cadence section needs the rule
profile, which providers are not given: :func:`profile_sections` makes it for one profile,
and ``briefing.service.build_daily`` adds it when it is given the profile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from accounts.cadence_view import behind
from accounts.duties import DONE_HINT, account_name, open_duties
from accounts.models import Account
from briefing.models import Section, SectionProvider, Urgency
from core.profiles import Profile
from core.words_zh import by_when_zh
from core.workdays import WorkdayCalendar

#: How the cadence section reads an account's problems: "梁平发布：本周已发布1次，…".
CADENCE_HINT = "发布后发送 /post 名称 标题 登记；查看：/post 名称"


def account_duties(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section | None:
    """Open account duties, the nearest deadline first, those without one last."""
    rows = open_duties(session=session)
    if not rows:
        return None
    overdue = sum(1 for d in rows if d.due_at is not None and d.due_at <= now)
    items = []
    for duty in rows[:settings.max_lines]:
        account = session.get(Account, duty.account_id)
        name = account_name(session, account) if account is not None else f"账号{duty.account_id}"
        when = by_when_zh(duty.due_at, now) if duty.due_at is not None else "未规定时限"
        items.append(f"编号{duty.id} {name}：{duty.title}｜{when}")
    tag = f"账号待办{len(rows)}" + (f"（超期{overdue}）" if overdue else "")
    return Section("accounts.duties", Urgency.overdue if overdue else Urgency.soon,
                   f"【账号待办事项】{len(rows)} 项" + (f"，其中超期 {overdue} 项" if overdue else ""),
                   tag=tag, items=tuple(items), total_items=len(rows), hint=DONE_HINT)


def cadence_provider(profile: Profile) -> SectionProvider:
    """The provider of the accounts behind their cadence under ``profile``."""

    def accounts_behind(session: Session, now: datetime, calendar: WorkdayCalendar, settings: Any) -> Section | None:
        rows = behind(session=session, now=now, calendar=calendar, profile=profile)
        if not rows:
            return None
        items = tuple(f"{account_name(session, account)}：{'；'.join(f.short for f in found)}"
                      for account, found in rows[:settings.max_lines])
        citations = list(dict.fromkeys(f.value.citation for _, found in rows for f in found))
        return Section("accounts.cadence", Urgency.today, f"【账号更新未达要求】{len(rows)} 个账号",
                       tag=f"更新滞后{len(rows)}", items=items, total_items=len(rows),
                       hint=f"依据：{'；'.join(citations)}。{CADENCE_HINT}")

    return accounts_behind


def profile_sections(profile: Profile) -> tuple[SectionProvider, ...]:
    """The daily providers that need the rule profile."""
    return (cadence_provider(profile),)


DAILY: tuple[SectionProvider, ...] = (account_duties,)
WEEKLY: tuple[SectionProvider, ...] = ()
