"""The briefing's cron jobs: build the text, queue it for the leaders and the duty group.

Every day at ``[briefing] time`` (Asia/Shanghai, holidays included) the daily briefing
goes to each active leader (带班领导) and principal (主要负责人), and to the duty group
when ``group_chat_id`` is set; on ``weekly_day`` at the same time, the weekly summary
follows it. The event key carries the local date of the fire (``brief:2026-11-23``), so
the outbox's (event, recipient) key delivers one fire once per recipient, whatever
retries or workers do. After downtime the scheduler runs only the latest missed fire:
one catch-up briefing, built as of now and marked as late.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlmodel import Session

from briefing.service import Briefing, build_daily, build_weekly
from core.clock import fmt_short_zh, local
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from people.models import Person, Role
from people.service import people_with_role

log = logging.getLogger(__name__)

DAILY_JOB = "briefing.daily"
WEEKLY_JOB = "briefing.weekly"
LATE_AFTER = timedelta(hours=1)   # a fire run later than this says it is a catch-up


class BriefingSchedule(Protocol):
    """What :func:`register_briefing` reads from ``[briefing]``."""

    @property
    def time(self) -> str: ...
    @property
    def weekly_day(self) -> str: ...
    @property
    def group_chat_id(self) -> str: ...
    @property
    def max_lines(self) -> int: ...


class CronRegistry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register_cron(self, name: str, fn: Any, **cron_fields: object) -> None: ...


def recipients(session: Session) -> list[Person]:
    """Active leaders and principals, each once, in id order."""
    people = {p.id: p for role in (Role.leader, Role.principal)
              for p in people_with_role(session=session, role=role)}
    return [people[pid] for pid in sorted(people, key=lambda pid: pid or 0)]


def deliver(*, session: Session, text: str, event_key: str, now: datetime,
            settings: BriefingSchedule, platform: str) -> int:
    """Queue ``text`` for every recipient and the duty group, in the caller's transaction.

    Args:
        session: the cron job's session; not committed here.
        text: the message.
        event_key: the fire (``brief:2026-11-23``); a recipient already holding it is skipped.
        now: when the messages become deliverable.
        settings: ``[briefing]`` (``group_chat_id``).
        platform: the active platform, which the group chat id belongs to.

    Returns:
        How many messages were newly queued.
    """
    queued = 0
    for person in recipients(session):
        queued += enqueue(session=session, message=Outbound(text, person_id=person.id),
                          now=now, event_key=event_key) is not None
    if settings.group_chat_id:
        queued += enqueue(session=session, message=Outbound(text, chat_id=settings.group_chat_id),
                          now=now, event_key=event_key, platform=platform) is not None
    return queued


def _late_note(fire_time: datetime, now: datetime) -> str:
    return f"（补发：原定 {fmt_short_zh(fire_time)}，因系统未运行而延迟）" if now - fire_time > LATE_AFTER else ""


def _send(built: Briefing, kind: str, session: Session, fire_time: datetime, now: datetime,
          settings: BriefingSchedule, platform: str) -> int:
    key = f"{kind}:{local(fire_time).date().isoformat()}"
    queued = deliver(session=session, text=built.text(_late_note(fire_time, now)), event_key=key,
                     now=now, settings=settings, platform=platform)
    log.info("%s queued for %d recipient(s)", key, queued)
    return queued


def daily_briefing_job(session: Session, fire_time: datetime, now: datetime, *,
                       calendar: WorkdayCalendar, settings: BriefingSchedule,
                       platform: str, profile: Profile | None = None) -> int:
    """The daily cron job: build today's briefing as of ``now`` and queue it (with
    ``profile``, also the sections that need the rule profile).

    Returns:
        How many messages were newly queued (0 when this fire was already delivered).
    """
    built = build_daily(session=session, now=now, calendar=calendar, settings=settings, profile=profile)
    return _send(built, "brief", session, fire_time, now, settings, platform)


def weekly_summary_job(session: Session, fire_time: datetime, now: datetime, *,
                       calendar: WorkdayCalendar, settings: BriefingSchedule,
                       platform: str) -> int:
    """The weekly cron job: the summary of the seven days before today, queued.

    Returns:
        How many messages were newly queued.
    """
    built = build_weekly(session=session, now=now, calendar=calendar, settings=settings)
    return _send(built, "brief-week", session, fire_time, now, settings, platform)


def register_briefing(scheduler: CronRegistry, *, calendar: WorkdayCalendar,
                      settings: BriefingSchedule, platform: str, profile: Profile | None = None) -> None:
    """Register the daily briefing at ``settings.time`` and the weekly summary on
    ``settings.weekly_day`` at the same time (daily first), in Asia/Shanghai; ``profile``
    is the active rule profile (the daily briefing's accounts-behind-cadence section).

    Raises:
        ValueError: the jobs are already registered, or the settings are not valid times.
    """
    hour, minute = (int(part) for part in settings.time.split(":"))
    daily = partial(daily_briefing_job, calendar=calendar, settings=settings, platform=platform, profile=profile)
    weekly = partial(weekly_summary_job, calendar=calendar, settings=settings, platform=platform)
    scheduler.register_cron(DAILY_JOB, daily, hour=hour, minute=minute)
    scheduler.register_cron(WEEKLY_JOB, weekly, day_of_week=settings.weekly_day, hour=hour, minute=minute)
