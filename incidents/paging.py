"""Phone paging (电话/短信提醒): which ladder pings also page by SMS or voice call, and what
the timeline says about each page.

The escalation (``incidents.escalation``) calls :func:`page_ping` beside every chat ping
of a rung, in the same transaction: the pages are ``page`` rows (``incidents.paging_models``)
that commit with the escalation or not at all, and a worker in the chat layer sends them
(``bot/paging/sender.py``), reporting back through :func:`mark_sent`, :func:`mark_retry`,
:func:`mark_failed` and :func:`cancel`. Who pages is the policy's rule
(:func:`channels_for`): the configured grades from ``min_rung`` up, and at night from
``night_min_rung`` up; then each person's quiet rule (:func:`apply_quiet`). A person
without a mobile number is not paged, and the timeline says so. Answers to pages
(an SMS reply, a key pressed) are in ``incidents.paging_ack``.

Every function works in the caller's transaction and never commits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from core.clock import local
from core.messages import Outbound
from core.outbox import enqueue
from incidents.models import Grade, Incident
from incidents.paging_models import (
    CHANNEL_ZH,
    GRADE_RANK,
    Page,
    PageChannel,
    PageStatus,
    PagingPolicy,
    QuietRule,
)
from incidents.service import IncidentPolicy, record
from people.models import Person, Role
from people.service import people_with_role

#: The runs whose pages are moot once the incident is acknowledged (a step's breach is not).
ACK_RUNS = ("ack", "graded", "manual")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
MAX_ERROR = 480


def normalize_phone(text: str) -> str | None:
    """The 11-digit mainland mobile number in ``text`` (``+86 138-0000-0000`` → ``13800000000``);
    None for anything else (a landline cannot take an SMS)."""
    digits = re.sub(r"[\s\-()（）]", "", text or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _MAINLAND_MOBILE.match(digits) else None


def in_window(start: time, end: time, at: datetime) -> bool:
    """Whether ``at`` (office time, Asia/Shanghai) is inside ``start``–``end``; a window
    whose end is not after its start crosses midnight (22:00–07:00)."""
    now = local(at).time().replace(tzinfo=None)
    if start < end:
        return start <= now < end
    return now >= start or now < end


def is_night(policy: PagingPolicy, at: datetime) -> bool:
    return in_window(policy.night_start, policy.night_end, at)


def channels_for(policy: PagingPolicy, incident: Incident, level: int, at: datetime) -> tuple[PageChannel, ...]:
    """How a ping of rung ``level`` about ``incident`` at ``at`` pages (empty: it does not)."""
    grade = Grade(incident.grade)
    if grade not in policy.grades:
        return ()
    lowest = policy.night_min_rung if is_night(policy, at) else policy.min_rung
    if level < lowest:
        return ()
    return policy.channels.get(grade) or (PageChannel.sms,)


def apply_quiet(rule: QuietRule | None, grade: Grade, channels: tuple[PageChannel, ...],
                at: datetime) -> tuple[tuple[PageChannel, ...], str]:
    """The channels left by a person's quiet rule at ``at``, and the note saying why (``""``)."""
    if rule is None or not in_window(rule.start, rule.end, at):
        return channels, ""
    window = f"{rule.start:%H:%M}–{rule.end:%H:%M}"
    if rule.min_grade is not None and GRADE_RANK[grade] < GRADE_RANK[rule.min_grade]:
        return (), f"免打扰时段 {window}"
    if rule.sms_only and PageChannel.voice in channels:
        kept = tuple(c for c in channels if c != PageChannel.voice)
        return kept, f"免打扰时段 {window} 仅短信"
    return channels, ""


def _zh(channels: Iterable[str]) -> str:
    return "、".join(CHANNEL_ZH[PageChannel(c)] for c in channels)


def _rung_label(incident: Incident, level: int) -> str:
    rungs = incident.ladder_rungs()
    return str(rungs[level]["label"]) if 0 <= level < len(rungs) else f"第{level + 1}级"


def page_ping(session: Session, incident: Incident, people: Iterable[Person], *, policy: IncidentPolicy,
              run: str, level: int, event: str, now: datetime, repeat: bool = False) -> list[Page]:
    """Queue the pages of one ladder ping (``event``: its outbox event key) to ``people``.

    Args:
        run: ``ack``, ``step``, ``manual`` or ``graded``: which ladder run pinged (``step``
            pages only with the policy's ``steps``).
        level: the rung that pinged (what the policy's rung rule reads).
        repeat: a repeat after the top rung (pages only when the policy says so).

    Returns:
        The new page rows; none when the ping does not page or paged already.
    """
    paging = policy.paging
    if paging is None or (repeat and not paging.repeats) or (run == "step" and not paging.steps):
        return []
    channels = channels_for(paging, incident, level, now)
    if not channels:
        return []
    assert incident.id is not None
    grade = Grade(incident.grade)
    queued: list[Page] = []
    lines: list[str] = []
    missing: list[str] = []
    held: list[str] = []
    for person in {p.id: p for p in people}.values():
        assert person.id is not None
        phone = normalize_phone(person.phone)
        if phone is None:
            missing.append(person.name)
            continue
        chosen, note = apply_quiet(paging.quiet.get(person.name), grade, channels, now)
        if not chosen:
            held.append(f"{person.name}（{note}）")
            continue
        fresh = []
        for channel in chosen:
            key = f"{event}|p:{person.id}|{channel.value}"[:300]
            if session.exec(select(Page.id).where(Page.dedupe_key == key)).first() is not None:
                continue
            page = Page(dedupe_key=key, incident_id=incident.id, person_id=person.id, phone=phone,
                        channel=channel.value, run=run, level=level, created_at=now, next_attempt_at=now)
            session.add(page)
            queued.append(page)
            fresh.append(channel)
        if fresh:
            lines.append(f"{person.name}（{_zh(fresh)}" + (f"，{note}" if note else "") + "）")
    if not (lines or missing or held):
        return queued
    head = (f"电话/短信提醒（{incident.grade_label}·{_rung_label(incident, level)}"
            + ("·夜间" if is_night(paging, now) else "") + "）")
    parts = [f"已排队：{'、'.join(lines)}"] if lines else []
    if held:
        parts.append(f"按本人免打扰设置未提醒：{'、'.join(held)}")
    if missing:
        parts.append(f"{'、'.join(missing)} 未登记手机号码（或登记的不是手机号），未能电话/短信提醒"
                     "（管理员可用 /people phone 姓名 手机号 补登）")
    session.flush()
    record(session, incident, now, "page_queued", f"{head}：" + "；".join(parts), person=None, actor="system",
           pages=[p.id for p in queued], level=level, run=run)
    return queued


# -- what the worker reports back -------------------------------------------------------


def _who(session: Session, page: Page) -> str:
    person = session.get(Person, page.person_id)
    return person.name if person is not None else f"#{page.person_id}"


def _incident(session: Session, page: Page) -> Incident:
    incident = session.get(Incident, page.incident_id)
    assert incident is not None
    return incident


#: A page not sent within this time after it was queued (paging switched off and on again,
#: the provider down for hours) is cancelled, not sent: a call at 09:00 about the night's
#: 02:00 rung wakes nobody in time and only confuses.
STALE_AFTER = timedelta(hours=2)


def moot(session: Session, page: Page, now: datetime) -> str | None:
    """Why ``page`` need not go out any more (None: it must): the incident ended, an
    acknowledgement-run page after someone acknowledged, or it waited past
    :data:`STALE_AFTER`."""
    incident = _incident(session, page)
    if not incident.is_open:
        return "事件已结束"
    if page.run in ACK_RUNS and incident.acknowledged_at is not None:
        return "事件已有人确认"
    if now - page.created_at > STALE_AFTER:
        return f"排队超过 {STALE_AFTER.seconds // 3600} 小时仍未发出，已过时"
    return None


def mark_sent(session: Session, page: Page, *, provider: str, ref: str | None, now: datetime) -> None:
    """The provider accepted ``page``: keep its id and say so on the timeline."""
    page.status, page.provider, page.provider_ref = PageStatus.sent, provider, (ref or "")[:100] or None
    page.sent_at, page.claimed_until, page.attempts = now, None, page.attempts + 1
    session.add(page)
    what = "语音电话已拨出" if page.channel == PageChannel.voice else "短信已发出"
    record(session, _incident(session, page), now, "page_sent", f"{what}：{_who(session, page)}",
           person=None, actor="system", page=page.id, provider=provider)


def mark_retry(session: Session, page: Page, *, error: str, next_at: datetime) -> None:
    """A transient failure: try again at ``next_at`` (the timeline waits for the outcome)."""
    page.attempts += 1
    page.last_error, page.next_attempt_at, page.claimed_until = error[:MAX_ERROR], next_at, None
    session.add(page)


def mark_failed(session: Session, page: Page, *, error: str, reason: str, now: datetime) -> None:
    """Give ``page`` up (``error``: for the record, ``reason``: the Chinese line people read):
    the timeline says so, and the admins are told in chat (the chat pings of the ladder went
    out regardless)."""
    page.status, page.attempts = PageStatus.failed, page.attempts + 1
    page.last_error, page.claimed_until = error[:MAX_ERROR], None
    session.add(page)
    incident, name = _incident(session, page), _who(session, page)
    channel = CHANNEL_ZH[PageChannel(page.channel)]
    reason = reason[:120]
    record(session, incident, now, "page_failed",
           f"{channel}提醒未能发出：{name}——{reason}；聊天提醒照常进行", person=None, actor="system",
           page=page.id)
    text = (f"【电话/短信提醒失败】{incident.number}（{incident.grade_label}）给 {name} 的{channel}未能发出："
            f"{reason}。\n请电话联系 {name}，并检查 [paging] 配置（见管理员手册“电话/短信提醒”）。")
    for admin in people_with_role(session=session, role=Role.admin):
        enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                event_key=f"page-failed:{page.id}")


def cancel(session: Session, page: Page, *, reason: str, now: datetime) -> None:
    """``page`` is not sent: ``reason`` (:func:`moot`) goes on the timeline."""
    page.status, page.claimed_until = PageStatus.cancelled, None
    session.add(page)
    record(session, _incident(session, page), now, "page_cancelled",
           f"{reason}，不再发送{CHANNEL_ZH[PageChannel(page.channel)]}：{_who(session, page)}",
           person=None, actor="system", page=page.id)
