"""Deactivating a person completely: their shifts become announced gaps, their open work
goes to a named person (issue 15, "people over their whole working life").

Shared by ``/people deactivate 姓名 交接 接收人`` and ``dutybot people deactivate 姓名 --to
接收人``; it composes the domains (roster, incidents, replies, people), which is why it
lives above them. In one transaction (the caller's):

1. Refuse when the person still has open work (incidents they own, public-reply items
   assigned to them) and no receiver is named — the refusal lists the work — or when
   the receiver cannot take it (the same person, inactive, an external contact). The last
   admin is refused by ``people.service.deactivate_person``.
2. Deactivate (audited; binding codes stop working).
3. Take them off every shift starting after now (``roster.departure``); the published
   shifts left short are announced at once to the admins and leaders in one message
   (``roster.gaps.announce_gaps``, with the hint to fill them with ``/assign``).
4. Cancel their open swap requests (the others involved are told); hand their sites'
   技术保障 to the receiver when the receiver is one, else clear it.
5. Hand each open incident and reply item to the receiver (audited on each), and tell the
   receiver in one message what they received.
6. File the change where STAFF-2 applies (``people.filings``).

The admin's reply (:func:`render`) gives the counts and the new gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from core import audit
from core.clock import local
from core.errors import InputError
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from incidents import departure as incidents_departure
from incidents.models import Incident
from people import filings
from people.models import Person, Role, StaffChange, StaffFiling
from people.service import deactivate_person, reachable
from replies import departure as replies_departure
from replies.models import ReplyItem
from roster import departure as roster_departure
from roster.gaps import FILL_HINT, announce_gaps, gap_line
from roster.models import Shift, Site, SwapRequest
from roster.patterns import ShiftPatterns
from roster.service import Gap, label

#: Words between the leaving person and the receiver: ``/people deactivate 王芳 交接 李强``.
HANDOVER_WORDS = ("交接", "交接给", "交给", "移交", "移交给", "to", "->", "→")
MAX_LINES = 20


def usage(name: str = "姓名") -> str:
    """How to name the receiver, in chat and on the command line."""
    return (f"/people deactivate {name} 交接 接收人（命令行：dutybot people deactivate {name} --to 接收人）")


@dataclass
class OpenWork:
    """What a leaving person still has to do."""

    incidents: list[Incident] = field(default_factory=list)
    replies: list[ReplyItem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.incidents) + len(self.replies)

    def lines(self) -> list[str]:
        """``· 事件 INC-…｜…`` and ``· 留言 MSG-…｜…``, at most :data:`MAX_LINES`."""
        out = [*(f"· 事件 {incidents_departure.line(i)}" for i in self.incidents),
               *(f"· 留言 {replies_departure.line(r)}" for r in self.replies)]
        return out[:MAX_LINES] + ([f"  ……另有 {len(out) - MAX_LINES} 项"] if len(out) > MAX_LINES else [])

    def counts(self) -> str:
        """``事件 1 项、留言 2 项``."""
        parts = [f"事件 {len(self.incidents)} 项" if self.incidents else "",
                 f"留言 {len(self.replies)} 项" if self.replies else ""]
        return "、".join(p for p in parts if p)


def open_work(*, session: Session, person: Person) -> OpenWork:
    """The open incidents ``person`` owns and the open reply items assigned to them."""
    return OpenWork(incidents_departure.owned_open(session=session, person=person),
                    replies_departure.assigned_open(session=session, person=person))


@dataclass
class Departure:
    """What deactivating one person did."""

    person: Person
    receiver: Person | None
    work: OpenWork
    removed: list[roster_departure.Removed]
    gaps: list[Gap]
    running: list[Shift]
    swaps: list[SwapRequest]
    sites: list[Site]
    sites_to_receiver: bool
    filed: list[StaffFiling]
    receiver_told: bool


def check_receiver(person: Person, receiver: Person) -> None:
    """Refuse a receiver who cannot take the work.

    Raises:
        InputError: the same person, someone inactive, or an external contact.
    """
    if receiver.id == person.id:
        raise InputError(f"交接人不能是 {person.name} 本人。用法：{usage(person.name)}")
    if not receiver.active:
        raise InputError(f"“{receiver.name}”已停用，不能接收交接。")
    if Role.external in receiver.role_set():
        raise InputError(f"“{receiver.name}”是外部联系人，不使用机器人，不能接收交接。")


def _tell_receiver(session: Session, dep: Departure, now: datetime) -> bool:
    receiver = dep.receiver
    if receiver is None or not (dep.work or dep.sites_to_receiver):
        return False
    lines = [f"【工作交接】{dep.person.name} 已停用，以下事项交由您办理："]
    lines += dep.work.lines()
    if dep.sites_to_receiver:
        lines.append(f"· 技术保障：{'、'.join(s.name for s in dep.sites)}（网站异常时由您接收通知）")
    if dep.work.incidents:
        lines.append("查看事件：/incident show 编号")
    if dep.work.replies:
        lines.append("查看留言：/reply show 编号")
    enqueue(session=session, message=Outbound("\n".join(lines), person_id=receiver.id), now=now,
            event_key=f"person:{dep.person.id}:handover:{now.isoformat()}")
    return bool(reachable(session=session, people=[receiver]))


def deactivate(*, session: Session, person: Person, receiver: Person | None, now: datetime, actor: str,
               calendar: WorkdayCalendar, patterns: ShiftPatterns, profile: Profile,
               skip: Person | None = None) -> Departure:
    """Deactivate ``person`` and hand over everything they hold (see the module docstring).

    Args:
        skip: the admin who acts (told in the reply rather than by message).

    Raises:
        InputError: open work and no receiver (the work is listed), a receiver who cannot
            take it, already deactivated, or the last admin.
    """
    work = open_work(session=session, person=person)
    if receiver is None and work:
        raise InputError("\n".join([f"{person.name} 还有 {len(work)} 项未办结的事项，停用前请指定交接人：",
                                    *work.lines(), f"用法：{usage(person.name)}"]))
    if receiver is not None:
        check_receiver(person, receiver)
    deactivate_person(session=session, person=person, now=now, actor=actor)
    removed = roster_departure.remove_future(session=session, person=person, now=now, actor=actor,
                                             why=f"{person.name} 已停用")
    gaps = roster_departure.gaps_of(session=session, calendar=calendar, patterns=patterns,
                                    shifts=[r.shift for r in removed])
    announce_gaps(session=session, gaps=gaps, now=now, cause=f"{person.name} 已停用，其今后的班次已撤下",
                  citation=profile.cited("DUTY-1", "DUTY-5"), skip=skip,
                  event=f"roster.gaps:departure:{person.id}:{now.isoformat()}")
    swaps = roster_departure.cancel_swaps(session=session, person=person, now=now, actor=actor)
    sites, sites_to_receiver = roster_departure.hand_over_sites(session=session, person=person, receiver=receiver,
                                                                now=now, actor=actor)
    if receiver is not None:
        for incident in work.incidents:
            incidents_departure.hand_over(session=session, incident=incident, leaving=person, receiver=receiver,
                                          now=now, actor=actor)
        for item in work.replies:
            replies_departure.hand_over(session=session, item=item, leaving=person, receiver=receiver, now=now,
                                        actor=actor)
    filed = filings.record_changes(session=session, profile=profile, changes=[(person, StaffChange.deactivated, "")],
                                   now=now, actor=actor, skip=skip)
    dep = Departure(person, receiver, work, removed, gaps,
                    roster_departure.current_shifts(session=session, person=person, now=now), swaps, sites,
                    sites_to_receiver, filed, receiver_told=False)
    dep.receiver_told = _tell_receiver(session, dep, now)
    audit.record(session=session, at=now, entity_type="person", entity_id=person.id or 0, action="handed_over",
                 actor=actor, zh=(f"停用交接：{person.name} → {receiver.name if receiver else '（无接收人）'}；"
                                  f"撤下班次 {len(removed)} 个，空缺 {len(gaps)} 个，"
                                  f"事件 {len(work.incidents)} 项，留言 {len(work.replies)} 项，"
                                  f"换班申请取消 {len(swaps)} 项，技术保障网站 {len(sites)} 个"),
                 receiver=receiver.name if receiver else None, shifts=len(removed), gaps=len(gaps),
                 incidents=[i.number for i in work.incidents], replies=[r.number for r in work.replies])
    return dep


def render(dep: Departure, profile: Profile, now: datetime) -> str:
    """The reply to the admin who deactivated: what happened, with counts and the gaps."""
    person = dep.person
    lines = [f"已停用 {person.name}（{person.roles_zh()}）：不再出现在名单、排班和通知中。"]
    if dep.removed:
        lines.append(f"已撤下其今后的班次 {len(dep.removed)} 个" + (
            f"，出现空缺 {len(dep.gaps)} 个（已通知管理员和带班领导）：" if dep.gaps else "，未形成空缺。"))
        today = local(now).date()
        lines += [f"· {gap_line(g, today)}" for g in dep.gaps[:MAX_LINES]]
        if len(dep.gaps) > MAX_LINES:
            lines.append(f"  ……另有 {len(dep.gaps) - MAX_LINES} 个")
        if dep.gaps:
            lines.append(FILL_HINT)
    for shift in dep.running:
        lines.append(f"其正在值守的{label(shift)}未撤下；如需换人：/substitute 日期 [班次] {person.name} 新人员。")
    if dep.work and dep.receiver is not None:
        told = (f"已通知{dep.receiver.name}" if dep.receiver_told
                else f"{dep.receiver.name} 尚未绑定聊天账号，请另行告知")
        lines.append(f"已交接给 {dep.receiver.name}：{dep.work.counts()}（{told}）。")
    elif dep.receiver is not None and not dep.sites_to_receiver:
        lines.append(f"{person.name} 没有需要交给 {dep.receiver.name} 的未办结事项。")
    if dep.swaps:
        lines.append(f"已取消其未办结的换班申请 {len(dep.swaps)} 项（已通知相关人员）。")
    if dep.sites:
        names = "、".join(s.name for s in dep.sites)
        lines.append(f"其负责技术保障的网站（{names}）已改由 {dep.receiver.name} 负责。"
                     if dep.sites_to_receiver and dep.receiver is not None
                     else f"其负责技术保障的网站（{names}）已清除技术保障，网站异常时改为通知所属单位的技术保障。")
    note = filings.reply_note(profile, dep.filed)
    if note:
        lines.append(note)
    return "\n".join(lines)


def split_receiver(text: str) -> tuple[str, str | None]:
    """``王芳 交接 李强`` → (``王芳``, ``李强``); ``王芳`` → (``王芳``, None).

    Raises:
        InputError: anything else (the usage is shown).
    """
    parts = text.split()
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 3 and parts[1].lower() in HANDOVER_WORDS:
        return parts[0], parts[2]
    for word in ("交接给", "移交给", "交接", "交给", "移交"):   # 王芳 交接李强
        if len(parts) == 2 and parts[1].startswith(word) and len(parts[1]) > len(word):
            return parts[0], parts[1][len(word):]
    raise InputError(f"用法：{usage()}")
