"""Reading rounds (读网): prompts at irregular times during each shift (DUTY-1, DUTY-5).

The planner (a cron job every 15 minutes, caught up at start-up) gives each published
shift that runs within the next 48 hours one round per ``[roster] round_windows`` window
that overlaps it, at a pseudo-random minute inside window ∩ shift. The minute comes from
``random.Random("<round_seed>|<duty day>|<shift name>|<window>")``, so it is the same on
every run and every worker, and cannot be guessed without the seed. Planning is
idempotent: a round is identified by its shift and prompt time; when the windows or the
seed change, the future rounds that no longer fit are dropped and the new ones added.

Each round is one due item (``round:<id>``) that moves through three stages:

``prompt``    at ``prompt_at`` → the shift's officers, with their unit's sites
``late``      at ``due_at`` (``prompt_at`` + ``round_answer_minutes``) → officers again
``escalate``  ``round_answer_minutes`` later → the shift's leader(s); status ``missed``

Answering (``/read ok`` or ``/read 异常 …``) cancels what is left. Every change is in
the audit log (entity ``reading_round``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any, Protocol

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from core import audit, schedule
from core.clock import SHANGHAI, ensure_utc, fmt_short_zh, local
from core.messages import Button, Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.schedule import DueItem
from people.models import Person, Role
from people.service import people_with_role
from roster.models import (
    ROUND_STATUS_ZH,
    DutyRole,
    ReadingRound,
    RoundStatus,
    Shift,
    ShiftAssignment,
)
from roster.service import label, views
from roster.sites import site_line, sites_for

KIND = "roster.round"
PLAN_JOB = "roster.rounds.plan"
HORIZON = timedelta(hours=48)
SITES_SHOWN = 10
MAX_NOTE = 1000
LATE_ANSWER_WINDOW = timedelta(hours=24)   # a missed round may still be answered this long


@dataclass(frozen=True)
class RoundPolicy:
    """What rounds need from ``[roster]`` in the config."""

    windows: tuple[tuple[time, time], ...]
    answer: timedelta = timedelta(minutes=30)
    seed: str = "dutybot"
    horizon: timedelta = HORIZON


@dataclass(frozen=True)
class PlannedRound:
    """A round a shift should have: its window and the chosen prompt time."""

    window: str
    prompt_at: datetime      # UTC
    earliest: datetime       # window ∩ shift, UTC
    latest: datetime


@dataclass
class PlanReport:
    created: list[ReadingRound] = field(default_factory=list)
    dropped: int = 0


class CronRegistry(Protocol):
    """The part of ``bot.scheduler.Scheduler`` used here."""

    def register(self, kind: str, fn: Any) -> None: ...
    def register_cron(self, name: str, fn: Any, **cron_fields: object) -> None: ...


def ref_of(rnd: ReadingRound) -> str:
    return f"round:{rnd.id}"


def window_text(window: tuple[time, time]) -> str:
    """``09:00-11:30``."""
    return f"{window[0]:%H:%M}-{window[1]:%H:%M}"


# -- planning ------------------------------------------------------------------------


def planned_rounds(shift: Shift, policy: RoundPolicy) -> list[PlannedRound]:
    """The rounds ``shift`` should have under ``policy``, by prompt time (pure)."""
    starts, ends = ensure_utc(shift.starts_at), ensure_utc(shift.ends_at)
    first, last = local(starts).date() - timedelta(days=1), local(ends).date()
    out: list[PlannedRound] = []
    for window in policy.windows:
        name, instance, day = window_text(window), 0, first
        while day <= last:
            opens = datetime.combine(day, window[0], tzinfo=SHANGHAI)
            closes = datetime.combine(day, window[1], tzinfo=SHANGHAI)
            if closes <= opens:                 # a window across midnight (or 24 hours)
                closes += timedelta(days=1)
            lo, hi = max(ensure_utc(opens), starts), min(ensure_utc(closes), ends)
            minutes = int((hi - lo).total_seconds() // 60)
            if minutes >= 1:
                key = f"{policy.seed}|{shift.day.isoformat()}|{shift.name}|{name}" + (f"|{instance}" if instance else "")
                offset = random.Random(key).randrange(minutes)
                out.append(PlannedRound(name, lo + timedelta(minutes=offset), lo, hi))
                instance += 1
            day += timedelta(days=1)
    return sorted(out, key=lambda p: p.prompt_at)


def rounds_of(session: Session, shift: Shift) -> list[ReadingRound]:
    return list(session.exec(select(ReadingRound).where(ReadingRound.shift_id == shift.id)
                             .order_by(col(ReadingRound.prompt_at), col(ReadingRound.id))))


def _drop(session: Session, rnd: ReadingRound, now: datetime, why: str) -> None:
    schedule.cancel_for(session=session, ref=ref_of(rnd))
    audit.record(session=session, at=now, entity_type="reading_round", entity_id=rnd.id or 0, action="dropped",
                 zh=f"取消尚未提醒的第{rnd.seq}次读网（原定 {fmt_short_zh(rnd.prompt_at)}）：{why}",
                 shift_id=rnd.shift_id, prompt_at=rnd.prompt_at.isoformat())
    session.delete(rnd)


def _sync_shift(session: Session, shift: Shift, policy: RoundPolicy, now: datetime,
                report: PlanReport) -> None:
    assert shift.id is not None
    wanted = {p.prompt_at: p for p in planned_rounds(shift, policy) if p.prompt_at > now}
    rounds = rounds_of(session, shift)
    kept = []
    for rnd in rounds:
        future = rnd.status == RoundStatus.pending and ensure_utc(rnd.prompt_at) > now
        if future and ensure_utc(rnd.prompt_at) not in wanted:
            _drop(session, rnd, now, "读网时段或随机种子已变更")
            report.dropped += 1
        else:
            kept.append(rnd)
    have = {ensure_utc(r.prompt_at) for r in kept}
    for at, plan in wanted.items():
        if at in have:
            continue
        rnd = ReadingRound(shift_id=shift.id, seq=0, prompt_at=at, due_at=at + policy.answer,
                           status=RoundStatus.pending)
        session.add(rnd)
        session.flush()
        schedule.schedule(session=session, key=ref_of(rnd), kind=KIND, ref=ref_of(rnd), due_at=at, now=now,
                          payload={"stage": "prompt"})
        audit.record(session=session, at=now, entity_type="reading_round", entity_id=rnd.id or 0,
                     action="planned", zh=f"安排读网：{label(shift)}，时段 {plan.window}",
                     shift_id=shift.id, window=plan.window, prompt_at=at.isoformat())
        kept.append(rnd)
        report.created.append(rnd)
    for seq, rnd in enumerate(sorted(kept, key=lambda r: (ensure_utc(r.prompt_at), r.id or 0)), start=1):
        if rnd.seq != seq:
            rnd.seq = seq
            session.add(rnd)


def plan_rounds(*, session: Session, policy: RoundPolicy, now: datetime) -> PlanReport:
    """Create the rounds of published shifts running within ``policy.horizon``; drop the
    future rounds that no longer fit (changed windows or seed, unpublished shift).

    Idempotent; does not commit.
    """
    report = PlanReport()
    shifts = session.exec(select(Shift).where(
        Shift.published == True, col(Shift.ends_at) > now,  # noqa: E712
        col(Shift.starts_at) < now + policy.horizon).order_by(col(Shift.starts_at))).all()
    for shift in shifts:
        _sync_shift(session, shift, policy, now, report)
    stale = session.exec(select(ReadingRound).join(Shift, col(Shift.id) == ReadingRound.shift_id).where(
        ReadingRound.status == RoundStatus.pending, col(ReadingRound.prompt_at) > now,
        Shift.published == False)).all()  # noqa: E712
    for rnd in stale:
        _drop(session, rnd, now, "班次已撤回发布")
        report.dropped += 1
    session.flush()
    return report


def plan_job(session: Session, fire_time: datetime, now: datetime, *, policy: RoundPolicy) -> PlanReport:
    """The planner cron job."""
    return plan_rounds(session=session, policy=policy, now=now)


# -- messages ------------------------------------------------------------------------


def _basis(profile: Profile) -> str:
    return profile.basis("DUTY-1", "DUTY-5")


def _title(rnd: ReadingRound, shift: Shift) -> str:
    return f"第{rnd.seq}次读网（{label(shift).split(' ')[0]}）"


def _send(session: Session, people: Sequence[Person], text: str | dict[int, str], *, event: str,
          now: datetime, buttons: tuple[Button, ...] = ()) -> list[Person]:
    for person in people:
        body = text if isinstance(text, str) else text[person.id or 0]
        enqueue(session=session, message=Outbound(body, person_id=person.id, buttons=buttons),
                now=now, event_key=event)
    return list(people)


def site_list_zh(session: Session, unit: str) -> str:
    """The numbered lines of what an officer of ``unit`` reads (cut after SITES_SHOWN)."""
    sites = sites_for(session=session, unit=unit)
    if not sites:
        return "  （本单位尚未登记网站和账号：请管理员用 dutybot sites add 或 dutybot sites import 登记）"
    lines = [f"  {n}. {site_line(s)}" for n, s in enumerate(sites[:SITES_SHOWN], start=1)]
    if len(sites) > SITES_SHOWN:
        lines.append(f"  ……另有 {len(sites) - SITES_SHOWN} 个，发送 /sites 查看全部")
    return "\n".join(lines)


ANSWER_HINT = ("正常：/read ok [备注]\n"
               "发现异常：/read 异常 [类型] 站点名称 描述（自动登记事件并通知处置人员）")


def _leaders(session: Session, shift: Shift) -> list[Person]:
    """The shift's leader(s); without one, the admins."""
    view = views(session, [shift])[0]
    return [p for p in view.leaders if p.active] or people_with_role(session=session, role=Role.admin)


def _officers(session: Session, shift: Shift) -> list[Person]:
    """The shift's officers; without one, its leaders (someone must read)."""
    view = views(session, [shift])[0]
    return [p for p in view.officers if p.active] or [p for p in view.leaders if p.active]


class RoundProcessor:
    """The ``roster.round`` due-item processor (see the module docstring)."""

    def __init__(self, profile: Profile, policy: RoundPolicy) -> None:
        self.profile, self.policy = profile, policy

    def __call__(self, session: Session, due: DueItem, now: datetime) -> None:
        rnd = session.get(ReadingRound, int(due.ref.removeprefix("round:")))
        if rnd is None or rnd.status != RoundStatus.pending:
            return
        shift = session.get(Shift, rnd.shift_id)
        assert shift is not None
        if not shift.published:
            _drop(session, rnd, now, "班次已撤回发布")
            return
        stage = due.data().get("stage", "prompt")
        getattr(self, f"_{stage}")(session, rnd, shift, now)

    def _prompt(self, session: Session, rnd: ReadingRound, shift: Shift, now: datetime) -> None:
        if now >= ensure_utc(shift.ends_at):
            _drop(session, rnd, now, "系统未运行，错过提醒时间且班次已结束")
            return
        if now >= ensure_utc(rnd.due_at):   # prompted late (the bot was down): a full answer window
            rnd.due_at = now + self.policy.answer
            session.add(rnd)
        officers = _officers(session, shift)
        texts = {p.id or 0: (f"【读网提醒】请现在读网：{_title(rnd, shift)}\n"
                             f"请浏览以下网站和账号，查看能否打开、内容有无错误、栏目是否按时更新：\n"
                             f"{site_list_zh(session, p.unit)}\n"
                             f"请在 {local(rnd.due_at):%H:%M} 前回复：\n{ANSWER_HINT}\n{_basis(self.profile)}")
                 for p in officers}
        _send(session, officers, texts, event=f"{ref_of(rnd)}:prompt", now=now,
              buttons=(Button("读网正常", "/read ok"),))
        audit.record(session=session, at=now, entity_type="reading_round", entity_id=rnd.id or 0,
                     action="prompted", zh=f"发出读网提醒：{_title(rnd, shift)}，通知 "
                     + ("、".join(p.name for p in officers) or "无人（本班次未排人）"))
        schedule.schedule(session=session, key=ref_of(rnd), kind=KIND, ref=ref_of(rnd), due_at=max(rnd.due_at, now),
                          now=now, payload={"stage": "late"})

    def _late(self, session: Session, rnd: ReadingRound, shift: Shift, now: datetime) -> None:
        escalate_at = ensure_utc(rnd.due_at) + self.policy.answer
        _send(session, _officers(session, shift),
              f"【读网超时】{_title(rnd, shift)}：{fmt_short_zh(rnd.prompt_at)} 提醒，应在 "
              f"{local(rnd.due_at):%H:%M} 前完成，尚未回复。\n请立即读网并回复：\n{ANSWER_HINT}\n"
              f"{local(escalate_at):%H:%M} 前仍未回复将报告带班领导。",
              event=f"{ref_of(rnd)}:late", now=now, buttons=(Button("读网正常", "/read ok"),))
        rnd.escalation_level = max(rnd.escalation_level, 1)
        session.add(rnd)
        audit.record(session=session, at=now, entity_type="reading_round", entity_id=rnd.id or 0,
                     action="late", zh=f"{_title(rnd, shift)}超时未回复，已提醒值班员")
        schedule.schedule(session=session, key=ref_of(rnd), kind=KIND, ref=ref_of(rnd),
                          due_at=max(escalate_at, now), now=now, payload={"stage": "escalate"})

    def _escalate(self, session: Session, rnd: ReadingRound, shift: Shift, now: datetime) -> None:
        officers = [p for p in views(session, [shift])[0].officers if p.active]
        names = "、".join(f"{p.name} {p.phone}".rstrip() for p in officers) or "（本班次未排值班员）"
        leaders = _leaders(session, shift)
        _send(session, leaders,
              f"【读网超时·带班领导】{_title(rnd, shift)}未按时完成\n"
              f"提醒时间：{fmt_short_zh(rnd.prompt_at)}；应完成：{fmt_short_zh(rnd.due_at)}\n"
              f"值班员：{names}\n请督促值班员立即读网。{_basis(self.profile)}",
              event=f"{ref_of(rnd)}:escalate", now=now)
        rnd.status, rnd.escalation_level = RoundStatus.missed, max(rnd.escalation_level, 2)
        session.add(rnd)
        audit.record(session=session, at=now, entity_type="reading_round", entity_id=rnd.id or 0,
                     action="missed", from_state=RoundStatus.pending, to_state=RoundStatus.missed,
                     zh=f"{_title(rnd, shift)}未按时完成，已报告带班领导 "
                     + ("、".join(p.name for p in leaders) or "（无）"))


def register_rounds(scheduler: CronRegistry, *, profile: Profile, policy: RoundPolicy) -> None:
    """Register the round processor and the planner (every 15 minutes, Asia/Shanghai)."""
    scheduler.register(KIND, RoundProcessor(profile, policy))
    scheduler.register_cron(PLAN_JOB, partial(plan_job, policy=policy), run_at_start=True, minute="*/15")


# -- answering -----------------------------------------------------------------------


def _mine(person: Person) -> Select[ReadingRound, Shift]:
    return (select(ReadingRound, Shift)
            .join(Shift, col(Shift.id) == ReadingRound.shift_id)
            .join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id)
            .where(ShiftAssignment.person_id == person.id, ShiftAssignment.role == DutyRole.officer.value))


def round_to_answer(*, session: Session, person: Person, now: datetime) -> ReadingRound | None:
    """The person's oldest round that was prompted and is still open; else their newest
    missed round of the last day that nobody answered (a late answer)."""
    found = session.exec(_mine(person).where(ReadingRound.status == RoundStatus.pending,
                                             col(ReadingRound.prompt_at) <= now)
                         .order_by(col(ReadingRound.prompt_at), col(ReadingRound.id))).first()
    if found is not None:
        return found[0]
    late = session.exec(_mine(person).where(ReadingRound.status == RoundStatus.missed,
                                            col(ReadingRound.answered_at).is_(None),
                                            col(ReadingRound.prompt_at) > now - LATE_ANSWER_WINDOW)
                        .order_by(col(ReadingRound.prompt_at).desc())).first()
    return late[0] if late is not None else None


def answer(*, session: Session, rnd: ReadingRound, person: Person, ok: bool, note: str, now: datetime,
           actor: str, incident_number: str | None = None) -> ReadingRound:
    """Record the answer to ``rnd`` (``ok``, or an anomaly with its incident) and stop
    its reminders. A missed round stays ``missed`` but records the late answer, and the
    leader who was told hears of it."""
    note = note.strip()[:MAX_NOTE]
    shift = session.get(Shift, rnd.shift_id)
    assert shift is not None
    before = RoundStatus(rnd.status)
    if before == RoundStatus.pending:
        rnd.status = RoundStatus.ok if ok else RoundStatus.anomaly
    rnd.answered_at, rnd.answered_by_id, rnd.note = now, person.id, note
    if incident_number:
        rnd.incident_number = incident_number
    session.add(rnd)
    schedule.cancel_for(session=session, ref=ref_of(rnd))
    result = "正常" if ok else f"发现异常（{incident_number or '已记录'}）"
    late = "（超时后补读）" if before == RoundStatus.missed else ""
    audit.record(session=session, at=now, entity_type="reading_round", entity_id=rnd.id or 0,
                 action="answered", actor=actor, actor_id=person.id, from_state=before, to_state=rnd.status,
                 zh=f"{_title(rnd, shift)}：{person.name} 回复{result}{late}" + (f"，备注：{note[:100]}" if note else ""),
                 incident=incident_number)
    if rnd.escalation_level >= 2:
        _send(session, _leaders(session, shift),
              f"【读网补读】{person.name} 已于 {local(now):%H:%M} 补做{_title(rnd, shift)}：{result}",
              event=f"{ref_of(rnd)}:answered-late", now=now)
    return rnd


def minutes_taken(rnd: ReadingRound) -> int:
    assert rnd.answered_at is not None
    return max(0, int((ensure_utc(rnd.answered_at) - ensure_utc(rnd.prompt_at)).total_seconds() // 60))


def shift_now_of(*, session: Session, person: Person, now: datetime) -> Shift | None:
    """The published shift ``person`` is an officer of at ``now``."""
    return session.exec(select(Shift).join(ShiftAssignment, col(ShiftAssignment.shift_id) == Shift.id).where(
        ShiftAssignment.person_id == person.id, ShiftAssignment.role == DutyRole.officer.value,
        col(Shift.starts_at) <= now, col(Shift.ends_at) > now, Shift.published == True)).first()  # noqa: E712


def status_lines(*, session: Session, shift: Shift, now: datetime) -> list[str]:
    """This shift's rounds so far (future prompt times stay unannounced: 不定时)."""
    rounds = rounds_of(session, shift)
    shown = [r for r in rounds if ensure_utc(r.prompt_at) <= now]
    lines = []
    for rnd in shown:
        state = ROUND_STATUS_ZH[RoundStatus(rnd.status)]
        if rnd.answered_at is not None:
            who = session.get(Person, rnd.answered_by_id) if rnd.answered_by_id else None
            state += f"（{who.name if who else '—'} {local(rnd.answered_at):%H:%M}"
            state += f"，{rnd.incident_number}）" if rnd.incident_number else "）"
        elif rnd.status == RoundStatus.pending:
            state += f"（{local(rnd.due_at):%H:%M} 前回复）"
        lines.append(f"  第{rnd.seq}次 {local(rnd.prompt_at):%H:%M} 提醒｜{state}")
    left = len(rounds) - len(shown)
    if left:
        lines.append(f"  本班还将不定时提醒 {left} 次。")
    return lines or ["  本班尚无读网安排。"]
