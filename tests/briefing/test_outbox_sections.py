"""The briefing's outbox lines: failed deliveries are listed, messages that expired
waiting for a binding are not (the admins were told), people still waited for are one
line, and the weekly figure counts the expired apart."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.config import load_settings
from briefing.sections import undelivered_messages, waiting_messages, weekly_undelivered
from core.clock import parse_local
from core.messages import Outbound
from core.outbox import OutboxMessage, OutboxStatus, enqueue
from core.workdays import WorkdayCalendar
from people.models import Person
from tests.factories import make_person

SETTINGS = load_settings(None, env={"DUTYBOT_BRIEFING_MAX_LINES": "2"}).briefing
NOW = parse_local("2026-11-23T08:30")


def queued(session: Session, person: Person, at: str, status: OutboxStatus, *,
           expired: bool = False) -> OutboxMessage:
    row = enqueue(session=session, message=Outbound("某条提醒", person_id=person.id),
                  now=parse_local(at), event_key=f"test:{person.name}:{at}")
    assert row is not None
    row.status = status
    if status == OutboxStatus.waiting:
        row.expires_at = row.next_attempt_at = parse_local(at) + timedelta(hours=72)
    elif expired:
        row.expires_at = parse_local(at)
        row.last_error = "收件人未绑定账号，等待绑定超时"
    else:
        row.last_error = "502 Bad Gateway"
    return row


def test_expired_waits_are_not_failures_and_waiting_people_are_one_line(engine: Engine) -> None:
    with Session(engine) as session:
        p = {name: make_person(session, name, now=NOW, platform=None if name != "王芳" else "memory")
             for name in ("王芳", "赵敏", "陈晨", "孙丽")}
        queued(session, p["王芳"], "2026-11-22T09:00", OutboxStatus.dead)
        queued(session, p["赵敏"], "2026-11-21T09:00", OutboxStatus.dead, expired=True)
        queued(session, p["赵敏"], "2026-11-22T09:00", OutboxStatus.waiting)
        queued(session, p["陈晨"], "2026-11-22T10:00", OutboxStatus.waiting)
        queued(session, p["陈晨"], "2026-11-22T11:00", OutboxStatus.waiting)
        queued(session, p["孙丽"], "2026-11-22T12:00", OutboxStatus.waiting)
        session.commit()
        calendar = WorkdayCalendar()
        dead = undelivered_messages(session, NOW, calendar, SETTINGS)
        assert dead is not None
        assert dead.lines(SETTINGS.max_lines) == ["【消息未送达】近7天 1 条", "· 王芳 1 条",
                                                  "请管理员运行 dutybot outbox 查看"]
        waiting = waiting_messages(session, NOW, calendar, SETTINGS)
        assert waiting is not None and waiting.tag == "待绑定3"
        assert waiting.headline == "【消息待送达】3 人未绑定，消息等待中：赵敏、陈晨等 3 人"
        week = weekly_undelivered(session, NOW, calendar, SETTINGS)
        assert week is not None
        assert week.headline == "【消息投递】本周未送达 2 条（其中 1 条因收件人未绑定而过期）"


def test_only_expired_waits_leave_the_daily_section_out(engine: Engine) -> None:
    with Session(engine) as session:
        zhao = make_person(session, "赵敏", now=NOW, platform=None)
        queued(session, zhao, "2026-11-22T09:00", OutboxStatus.dead, expired=True)
        session.commit()
        assert undelivered_messages(session, NOW, WorkdayCalendar(), SETTINGS) is None
        assert waiting_messages(session, NOW, WorkdayCalendar(), SETTINGS) is None
