"""The daily briefing (早报) and the weekly summary (周报): text built from the database.

Pure: it reads and never writes or sends (``briefing.flows`` queues the text). The
shapes (sections, urgency, provider) are in ``briefing.models``; the briefing's own
sections (replies, outbox, calendar) in ``briefing.sections``.

Each domain's sections plug in as a module named in :data:`DOMAIN_MODULES`
(``briefing.roster_sections``, ``briefing.incident_sections``) that, when it exists,
exposes ``DAILY`` and ``WEEKLY``, sequences of providers. They run before the providers
here, so today's duty and incidents outrank reply deadlines of the same urgency. Until a domain
exists the briefing ends with ``（值班表、事件处置功能尚未启用）``: without that line,
"一切正常" could be read as "no incidents".
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from functools import cache

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from briefing.account_sections import profile_sections
from briefing.models import Briefing, BriefingConfig, Section, SectionProvider, Urgency
from briefing.sections import DAILY, WEEKLY, week_before
from core.clock import WEEKDAYS_ZH, local
from core.profiles import Profile
from core.workdays import WorkdayCalendar

__all__ = ["ALL_CLEAR", "DOMAIN_MODULES", "Briefing", "Section", "SectionProvider", "Urgency",
           "build_daily", "build_weekly", "collect", "day_label", "domain_providers"]

log = logging.getLogger(__name__)

DOMAIN_MODULES = {"briefing.roster_sections": "值班表", "briefing.incident_sections": "事件处置",
                  "briefing.account_sections": "政务新媒体账号", "briefing.watch_sections": "网站巡检"}
ALL_CLEAR = "一切正常：暂无需要关注的事项。"


def day_label(day: date, calendar: WorkdayCalendar) -> str:
    """``11月23日（星期一）工作日``, ``10月1日（星期四）国庆节``, ``10月10日（星期六）调休上班``."""
    info = calendar.day(day)
    kind = ("调休上班" if info.is_makeup else "工作日") if info.is_workday else (info.name or "休息日")
    return (f"{day.month}月{day.day}日（{WEEKDAYS_ZH[day.weekday()]}）{kind}"
            + ("（暂定）" if info.provisional else ""))


# ---------------------------------------------------------------- building

@cache
def domain_providers(attr: str) -> tuple[tuple[SectionProvider, ...], tuple[str, ...]]:
    """The ``attr`` (``DAILY``/``WEEKLY``) providers of the domains that exist, and the
    Chinese names of those that do not yet."""
    found: list[SectionProvider] = []
    missing: list[str] = []
    for name, label in DOMAIN_MODULES.items():
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            missing.append(label)
        else:
            found += getattr(importlib.import_module(name), attr, ())
    return tuple(found), tuple(missing)


def collect(session: Session, now: datetime, calendar: WorkdayCalendar, settings: BriefingConfig,
            providers: Sequence[SectionProvider]) -> tuple[Section, ...]:
    """Run each provider in a savepoint; one that fails becomes a line with an error id
    (a bug in one domain must not cost the leaders the whole briefing).

    Raises:
        sqlalchemy.exc.OperationalError: the database failed; nothing is half-built.
    """
    sections: list[Section] = []
    for provider in providers:
        try:
            with session.begin_nested():
                section = provider(session, now, calendar, settings)
        except OperationalError:
            raise   # the database itself (gone, locked): the whole job retries, not one line
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("briefing provider %s failed (error %s)",
                          getattr(provider, "__name__", provider), error_id)
            section = Section(f"error.{error_id}", Urgency.system,
                              f"【提示】部分内容未能生成（错误编号 {error_id}），请管理员查看日志",
                              tag="生成出错")
        if section is not None:
            sections.append(section)
    return tuple(sorted(sections, key=lambda s: s.urgency))


def _build(attr: str, core: Sequence[SectionProvider], providers: Sequence[SectionProvider] | None,
           session: Session, now: datetime, calendar: WorkdayCalendar,
           settings: BriefingConfig, with_profile: Sequence[SectionProvider] = ()) -> tuple[tuple[Section, ...], str]:
    footer = ""
    if providers is None:
        extra, missing = domain_providers(attr)
        providers = (*extra, *with_profile, *core)
        footer = f"（{'、'.join(missing)}功能尚未启用）" if missing else ""
    return collect(session, now, calendar, settings, providers), footer


def build_daily(*, session: Session, now: datetime, calendar: WorkdayCalendar,
                settings: BriefingConfig,
                providers: Sequence[SectionProvider] | None = None,
                profile: Profile | None = None) -> Briefing:
    """Today's briefing as of ``now``.

    Args:
        session: read only.
        now: the instant the briefing describes; its Asia/Shanghai date is "today".
        calendar: for the title (working day or holiday) and the calendar warning.
        settings: ``[briefing]``; ``max_lines`` cuts the lists.
        providers: instead of the domains' and ``briefing.sections.DAILY`` (tests).
        profile: the active rule profile, for the sections that need it (the accounts
            behind their posting cadence); without it they are left out.

    Returns:
        The briefing; ``.text()`` is the message.

    Raises:
        sqlalchemy.exc.OperationalError: the database failed (any other error of a
            provider does not raise: its section becomes a line with an error id).
    """
    sections, footer = _build("DAILY", DAILY, providers, session, now, calendar, settings,
                              profile_sections(profile) if profile is not None else ())
    return Briefing(f"【早报】{day_label(local(now).date(), calendar)}", sections,
                    settings.max_lines, footer, ALL_CLEAR)


def build_weekly(*, session: Session, now: datetime, calendar: WorkdayCalendar,
                 settings: BriefingConfig,
                 providers: Sequence[SectionProvider] | None = None) -> Briefing:
    """The summary of the seven days before ``now``'s day (:func:`week_before`).

    Args:
        session: read only.
        now: figures such as "open now" are as of this instant.
        calendar: passed to the providers.
        settings: ``[briefing]``.
        providers: instead of the domains' and ``briefing.sections.WEEKLY`` (tests).

    Returns:
        The summary; ``.text()`` is the message.

    Raises:
        sqlalchemy.exc.OperationalError: the database failed.
    """
    first, last = week_before(now)
    sections, footer = _build("WEEKLY", WEEKLY, providers, session, now, calendar, settings)
    return Briefing(f"【周报】{first.month}月{first.day}日—{last.month}月{last.day}日", sections,
                    settings.max_lines, footer)
