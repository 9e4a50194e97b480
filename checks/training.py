"""Training sessions and who attended (STAFF-3 annual training; STAFF-1 training before duty).

Where the profile states ``STAFF-3.annual_training`` as a standing duty (宝鸡办法第二十六条
各级主管主办单位每年至少要组织一次业务培训; 江川制度第二十七条 区政府办公室每年组织各单位进行
培训), the admins are reminded from ``[checks] training_remind_from`` (11月1日) onwards,
once a week at the office's opening time, while no 业务培训 is recorded for the year. The
articles say only "every year": the reminder's start and cadence are the office's working
practice, and the reminder says so.

A 岗前培训 (pre-duty) attendance also records the person's training day (``Person.trained_on``,
which the roster checks for STAFF-1 先培训后上岗, :mod:`roster.training`) when none is
recorded or the recorded one is later — through :func:`people.service.record_training`, so
the audit log has it.

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from sqlmodel import Session, col, select

from checks.models import TRAINING_KIND_ZH, TrainingAttendance, TrainingKind, TrainingSession
from checks.service import TRAINING_RULE, CheckPolicy, admins, annual_training
from core import audit
from core.clock import local
from core.errors import InputError
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import CronRegistry
from core.text import check_name
from people.models import Person
from people.service import find_person, record_training

log = logging.getLogger(__name__)

REMIND_JOB = "checks.training_remind"
ADD_HINT = "在管理端登记：dutybot checks training add 日期 标题（参训人员见 dutybot checks training add -h）"
MAX_PEOPLE = 500
_SPLIT = re.compile(r"[,，、;；\s]+")


def cadence(policy: CheckPolicy) -> str:
    """``自11月1日起每周提醒一次，直至登记；提醒日期和频次为工作要求，非条款规定``."""
    return f"自{policy.training_from_zh()}起每周提醒一次，直至登记；提醒日期和频次为工作要求，非条款规定"


def parse_names(text: str) -> list[str]:
    """``张三,李四、王五`` → names, each once, in order.

    Raises:
        InputError: more than :data:`MAX_PEOPLE` names.
    """
    names = list(dict.fromkeys(n for n in _SPLIT.split(text.strip()) if n))
    if len(names) > MAX_PEOPLE:
        raise InputError(f"一次最多登记 {MAX_PEOPLE} 人。")
    return names


@dataclass(frozen=True)
class Recorded:
    """A training recorded, who attended, and whose training day it set (pre-duty)."""

    session: TrainingSession
    people: list[Person]
    trained: list[Person]


def add_training(*, session: Session, day: date, title: str, names: Sequence[str], now: datetime, actor: str,
                 pre_duty: bool = False, organiser: str = "") -> Recorded:
    """Record a training held on ``day`` and its attendance.

    Raises:
        PersonNotFound: a name is not an active person.
        InputError: a day still to come, a bad title, or a pre-duty training without people.
    """
    if day > local(now).date():
        raise InputError(f"培训日期 {day.isoformat()} 尚未到来：请在培训完成后登记。")
    title = check_name(title, "培训名称")
    organiser = check_name(organiser, "组织单位")
    if not title:
        raise InputError("请写明培训名称。")
    if len(title) > 100 or len(organiser) > 100:
        raise InputError("培训名称或组织单位过长（最多 100 字）。")
    if pre_duty and not names:
        raise InputError("岗前培训须写明参训人员：--people 姓名,姓名")
    people = [find_person(session=session, name=n) for n in dict.fromkeys(names)]
    kind = TrainingKind.pre_duty if pre_duty else TrainingKind.annual
    row = TrainingSession(day=day, title=title, kind=kind, organiser=organiser, created_by=actor[:100],
                          created_at=now)
    session.add(row)
    session.flush()
    assert row.id is not None
    trained: list[Person] = []
    for person in people:
        assert person.id is not None
        session.add(TrainingAttendance(session_id=row.id, person_id=person.id))
        if pre_duty and (person.trained_on is None or person.trained_on > day):
            record_training(session=session, person=person, day=day, now=now, actor=actor)
            trained.append(person)
    audit.record(session=session, at=now, entity_type="training_session", entity_id=row.id, action="recorded",
                 actor=actor, zh=f"登记{TRAINING_KIND_ZH[kind]}：{day.isoformat()} {title}（{len(people)} 人）",
                 kind=kind.value, people=[p.name for p in people])
    return Recorded(row, people, trained)


def sessions(*, session: Session, year: int | None = None) -> list[tuple[TrainingSession, list[Person]]]:
    """Trainings (of ``year``), newest first, each with its attendees."""
    stmt = select(TrainingSession)
    if year is not None:
        stmt = stmt.where(col(TrainingSession.day) >= date(year, 1, 1), col(TrainingSession.day) <= date(year, 12, 31))
    out = []
    for row in session.exec(stmt.order_by(col(TrainingSession.day).desc(), col(TrainingSession.id).desc())):
        people = list(session.exec(select(Person).join(TrainingAttendance, col(TrainingAttendance.person_id) == Person.id)
                                   .where(TrainingAttendance.session_id == row.id).order_by(col(Person.name))))
        out.append((row, people))
    return out


def line(row: TrainingSession, people: Sequence[Person]) -> str:
    """``2026-11-20｜业务培训｜政务新媒体信息发布培训｜区政府办｜3 人：张三、李四、王五``."""
    names = "、".join(p.name for p in people)
    who = f"{len(people)} 人：{names}" if people else "未登记参训人员"
    return (f"{row.day.isoformat()}｜{TRAINING_KIND_ZH[TrainingKind(row.kind)]}｜{row.title}"
            f"｜{row.organiser or '—'}｜{who}")


def has_annual(*, session: Session, year: int) -> bool:
    """Whether a 业务培训 is recorded in ``year``."""
    return session.exec(select(TrainingSession.id).where(
        TrainingSession.kind == TrainingKind.annual, col(TrainingSession.day) >= date(year, 1, 1),
        col(TrainingSession.day) <= date(year, 12, 31))).first() is not None


def remind_annual_training(session: Session, fire_time: datetime, now: datetime, *, profile: Profile,
                           policy: CheckPolicy) -> int:
    """The daily job at the office's opening time: from the configured day of the year, on a
    working day inside office hours, remind the admins once a week while no 业务培训 is
    recorded this year.

    Returns:
        How many messages were newly queued.
    """
    if annual_training(profile) is None or not policy.is_open(now):
        return 0
    today = local(now).date()
    if today < date(today.year, *policy.training_from) or has_annual(session=session, year=today.year):
        return 0
    iso = today.isocalendar()
    text = (f"【年度培训】{today.year}年尚未登记业务培训，{profile.basis(TRAINING_RULE)}。"
            f"培训后请{ADD_HINT}\n（{cadence(policy)}）")
    queued = sum(enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                         event_key=f"checks:training:{today.year}:{iso.year}-w{iso.week}") is not None
                 for admin in admins(session=session))
    if queued:
        log.info("annual training reminder queued for %d admin(s)", queued)
    return queued


def register_training(scheduler: CronRegistry, *, profile: Profile, policy: CheckPolicy) -> None:
    """Register the reminder at the office's opening time, only where the profile states it.

    Raises:
        ValueError: the job is already registered.
    """
    if annual_training(profile) is None:
        return
    job = partial(remind_annual_training, profile=profile, policy=policy)
    scheduler.register_cron(REMIND_JOB, job, hour=policy.remind_time.hour, minute=policy.remind_time.minute)
