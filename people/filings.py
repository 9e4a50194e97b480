"""Staff changes filed with the district office (STAFF-2, 人员变动备案).

Where the rule profile states STAFF-2 (梁平办法第六条: 人员变动应及时将姓名、手机号码等相关信息报
区政府办公室备案), adding a person with a duty role (值班员, 带班领导), deactivating or
reactivating one, or changing their phone, roles (also when a duty role is given up) or
unit records an open ``staff_filing`` item and tells the admins at once, citing the article. An admin reports the change and marks it done (``/people filed 编号``,
``dutybot people filed 编号``). Where the profile does not state STAFF-2 nothing is recorded.

The article says 及时, which is not a number: no deadline is set. Open items are repeated to
the admins at most once a working day, at the start of office hours (``[calendar]
office_hours``), until they are filed; that cadence is the office's working practice
(工作要求), not the article's, and the reminder says so. The daily briefing lists them too
(``briefing.sections.staff_filings``).

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial

from sqlmodel import Session, col, select

from core import audit
from core.clock import local, local_midnight
from core.errors import InputError, NotFound
from core.messages import Outbound
from core.office_hours import OfficeHours
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import CronRegistry
from people.models import ROLE_ZH, STAFF_CHANGE_ZH, Person, Role, StaffChange, StaffFiling
from people.service import people_with_role

log = logging.getLogger(__name__)

RULE = "STAFF-2"
#: Whose changes are filed: the people who hold duty (值班员, 带班领导).
FILING_ROLES = frozenset({Role.officer, Role.leader})
REMIND_JOB = "people.filing_remind"
CADENCE = "每个工作日上班时提醒一次，直至办结；此频次为工作要求，条款未规定时限"
DONE_HINT = "报备后请发送 /people filed 编号（或 dutybot people filed 编号）"
MAX_LINES = 30


class FilingNotFound(NotFound):
    """No staff filing has this number."""

    def __init__(self, filing_id: int) -> None:
        super().__init__(f"找不到人员变动备案事项 {filing_id}。可用 /people filings 查看待备案事项。")
        self.filing_id = filing_id


def required(profile: Profile) -> bool:
    """Whether the profile states that staff changes are filed (STAFF-2)."""
    return profile.flag(RULE, "file_changes")


def concerns(person: Person, change: StaffChange | None = None, old: str = "") -> bool:
    """Whether ``person``'s changes are filed: they hold a duty role (for a roles change:
    held one before it, ``old`` being the former roles in Chinese)."""
    if FILING_ROLES & person.role_set():
        return True
    return change == StaffChange.roles and any(ROLE_ZH[r] in old.split("、") for r in FILING_ROLES)


def ask(profile: Profile) -> str:
    """``请将人员变动报区政府办公室备案（依据：梁平办法第六条）``."""
    entry = profile.rule(RULE)
    return f"请将{entry.brief}（依据：{entry.citation}）"


def describe(person: Person, change: StaffChange, old_phone: str = "") -> str:
    """What is filed: name with roles, unit and phone; or the old and the new value
    (``old_phone`` holds the old value of a phone, roles or unit change)."""
    if change == StaffChange.phone:
        return f"{person.name}：{old_phone or '（无）'} → {person.phone or '（无）'}"
    if change == StaffChange.roles:
        return f"{person.name}：{old_phone or '无'} → {person.roles_zh()}"
    if change == StaffChange.unit:
        return f"{person.name}：{old_phone or '—'} → {person.unit or '—'}"
    return f"{person.name}（{person.roles_zh()}｜{person.unit or '—'}｜{person.phone or '无电话'}）"


def line(row: StaffFiling) -> str:
    """``编号 3｜11月20日 新增：张三（值班员｜区政府办｜13800000000）``."""
    when = local(row.created_at)
    return f"编号 {row.id}｜{when.month}月{when.day}日 {STAFF_CHANGE_ZH[StaffChange(row.change)]}：{row.detail}"


def record_changes(*, session: Session, profile: Profile,
                   changes: Sequence[tuple[Person, StaffChange, str]], now: datetime, actor: str,
                   skip: Person | None = None) -> list[StaffFiling]:
    """Record the changes of people with a duty role and tell the admins (but ``skip``,
    who made the change and reads it in the reply) in one message.

    Args:
        changes: (person, change, old value — the old phone, roles (in Chinese) or unit
            of such a change, else '').

    Returns:
        The open items recorded ([] where the profile does not state STAFF-2, or nobody
        concerned changed).
    """
    if not required(profile):
        return []
    rows: list[StaffFiling] = []
    for person, change, old_phone in changes:
        if not concerns(person, change, old_phone):
            continue
        assert person.id is not None
        row = StaffFiling(person_id=person.id, change=change.value, detail=describe(person, change, old_phone)[:300],
                          created_at=now, created_by=actor[:100])
        session.add(row)
        session.flush()
        audit.record(session=session, at=now, entity_type="staff_filing", entity_id=row.id or 0,
                     action="opened", actor=actor, to_state="open",
                     zh=f"人员变动待备案：{STAFF_CHANGE_ZH[change]} {row.detail}", person=person.name,
                     change=change.value)
        rows.append(row)
    if rows:
        text = "\n".join([f"【人员变动备案】{ask(profile)}：", *(f"· {line(r)}" for r in rows), f"{DONE_HINT}。"])
        event = f"staff-filing:{rows[0].id}"
        for admin in people_with_role(session=session, role=Role.admin):
            if skip is None or admin.id != skip.id:
                enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now, event_key=event)
    return rows


def reply_note(profile: Profile, rows: Sequence[StaffFiling]) -> str:
    """The line added to the reply of the admin who made the change ('' when none)."""
    if not rows:
        return ""
    numbers = "、".join(str(r.id) for r in rows)
    return f"{ask(profile)}：编号 {numbers}。{DONE_HINT}。"


def open_filings(*, session: Session) -> list[StaffFiling]:
    """Items not yet filed, oldest first."""
    return list(session.exec(select(StaffFiling).where(col(StaffFiling.filed_at).is_(None))
                             .order_by(col(StaffFiling.id))))


def mark_filed(*, session: Session, filing_id: int, now: datetime, actor: str) -> StaffFiling:
    """An admin reported the change to the district office.

    Raises:
        FilingNotFound: no such item.
        InputError: it was already marked filed.
    """
    row = session.get(StaffFiling, filing_id)
    if row is None:
        raise FilingNotFound(filing_id)
    if row.filed_at is not None:
        raise InputError(f"编号 {filing_id} 已于 {local(row.filed_at):%Y-%m-%d %H:%M} 由 {row.filed_by} 登记为已备案。")
    row.filed_at, row.filed_by = now, actor[:100]
    session.add(row)
    audit.record(session=session, at=now, entity_type="staff_filing", entity_id=filing_id, action="filed",
                 actor=actor, from_state="open", to_state="filed", zh=f"人员变动已备案：{line(row)}")
    return row


# ---------------------------------------------------------------- the working-day reminder

def remind_open_filings(session: Session, fire_time: datetime, now: datetime, *, profile: Profile,
                        office_hours: OfficeHours) -> int:
    """The daily cron job: on a working day, inside office hours, remind the admins of the
    items still open from before today (items of today were just announced). A catch-up
    run outside office hours sends nothing: the next working day's run will.

    Returns:
        How many messages were newly queued.
    """
    if not required(profile) or not office_hours.is_open(now):
        return 0
    today = local(now).date()
    rows = [r for r in open_filings(session=session) if r.created_at < local_midnight(today)]
    if not rows:
        return 0
    lines = [f"【人员变动待备案】以下 {len(rows)} 项人员变动尚未登记已备案，{ask(profile)}：",
             *(f"· {line(r)}" for r in rows[:MAX_LINES])]
    if len(rows) > MAX_LINES:
        lines.append(f"  ……另有 {len(rows) - MAX_LINES} 项，/people filings 查看全部")
    lines += [f"{DONE_HINT}。", f"（{CADENCE}）"]
    text = "\n".join(lines)
    queued = sum(enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                         event_key=f"staff-filing:remind:{today.isoformat()}") is not None
                 for admin in people_with_role(session=session, role=Role.admin))
    log.info("staff filing reminder: %d open item(s), queued for %d admin(s)", len(rows), queued)
    return queued


def register_filing_reminders(scheduler: CronRegistry, *, profile: Profile, office_hours: OfficeHours) -> None:
    """Register the reminder at the start of office hours (Asia/Shanghai), only where the
    profile states STAFF-2.

    Raises:
        ValueError: the job is already registered.
    """
    if not required(profile):
        return
    job = partial(remind_open_filings, profile=profile, office_hours=office_hours)
    scheduler.register_cron(REMIND_JOB, job, hour=office_hours.start.hour, minute=office_hours.start.minute)
