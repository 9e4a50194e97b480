"""Reply items: deadlines, creation, state changes and queries. No messages here.

Deadlines (DOMAIN.md §6, §10): the category's period from the active rule profile
(REPLY-1 找错, REPLY-2 咨询建议, REPLY-3 需查证办理, REPLY-5 异议), counted by the
working-day calendar from the time of receipt, and never later than the REPLY-4 ceiling
(3 months after receipt) — whatever extensions or reassignments happen. An objection may
be extended with the principal's approval, to REPLY-5's ``max_total`` at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core import audit
from core.clock import local
from core.errors import InputError, NotFound
from core.numbering import next_number
from core.profiles import NOT_REQUIRED, Profile, RuleValue
from core.workdays import Deadline, WorkdayCalendar
from people.models import Person
from replies.models import (
    CATEGORY_ALIASES,
    CATEGORY_RULE,
    CATEGORY_ZH,
    CHANNEL_ALIASES,
    ReplyCategory,
    ReplyChannel,
    ReplyItem,
    ReplyStatus,
)

MAX_SUMMARY = 500


class ReplyNotFound(NotFound):
    """No reply item has this number."""

    def __init__(self, number: str) -> None:
        super().__init__(f"找不到留言 {number}。可用 /reply list 查看。")
        self.number = number


@dataclass(frozen=True)
class ReplyDeadline:
    """The effective deadline of an item and how it was reached."""

    due: Deadline          # what applies: the period, or the ceiling if that is earlier
    period: Deadline       # the category's period (with extensions)
    ceiling: Deadline      # REPLY-4 (the period itself where the profile sets no ceiling)
    rule: RuleValue        # the category's rule value, with its citation
    ceiling_rule: RuleValue | None   # None: the office's rules set no overall ceiling
    capped: bool           # the ceiling cut the period short

    @property
    def provisional(self) -> bool:
        """Any part touched a year without holiday data."""
        return self.due.provisional

    def basis_zh(self) -> str:
        """``依据：古丈办法第十三条，3个工作日内答复``."""
        if self.capped and self.ceiling_rule is not None:
            return f"依据：{self.ceiling_rule.citation}，自收到之日起最迟{self.ceiling_rule.quantity.zh()}内答复"
        verb = "作出决定" if self.rule.rule_id == "REPLY-5" else "答复"
        return f"依据：{self.rule.citation}，{self.rule.quantity.zh()}内{verb}"


def parse_category(text: str) -> ReplyCategory:
    """``找错``/``咨询``/``建议``/``查证``/``异议`` (or the English names).

    Raises:
        InputError: not a category.
    """
    found = CATEGORY_ALIASES.get(text.strip())
    if found is None:
        raise InputError(f"无法识别的类别“{text}”（可用：{'、'.join(CATEGORY_ZH.values())}）")
    return found


def parse_channel(text: str) -> ReplyChannel:
    """``网站留言``/``新媒体``/``找错``/``其他``.

    Raises:
        InputError: not a channel.
    """
    found = CHANNEL_ALIASES.get(text.strip())
    if found is None:
        raise InputError(f"无法识别的渠道“{text}”（可用：网站留言、我为政府网站找错、新媒体、其他）")
    return found


def default_channel(category: ReplyCategory) -> ReplyChannel:
    """Error reports come through the 找错 portal; the rest through the message board."""
    return ReplyChannel.error_portal if category == ReplyCategory.error_report else ReplyChannel.website


def compute_deadline(*, calendar: WorkdayCalendar, profile: Profile, category: ReplyCategory,
                     received_at: datetime, extended_workdays: int = 0) -> ReplyDeadline:
    """The deadline of an item received at ``received_at``."""
    rule_id, key = CATEGORY_RULE[category]
    rule = profile.find(rule_id, key)
    if rule is None:
        # No deadline is invented where the office's rules set none (issue 14).
        raise InputError(
            f"{NOT_REQUIRED}：《{profile.document}》未规定“{CATEGORY_ZH[category]}”类留言的"
            f"{'处理' if category == ReplyCategory.objection else '答复'}时限（{rule_id}），机器人不自行设定期限。"
            f"如本单位另有规定，请管理员在 dutybot.toml 的 [rules.overrides] 中填写 \"{rule_id}.{key}\" 后再登记。")
    q = rule.quantity
    period = calendar.add(received_at, q.amount + (extended_workdays if q.unit == "workdays" else 0), q.unit)
    ceiling_rule = profile.find("REPLY-4", "max")
    if ceiling_rule is None:
        return ReplyDeadline(period, period, period, rule, None, False)
    cq = ceiling_rule.quantity
    ceiling = calendar.add(received_at, cq.amount, cq.unit)
    capped = ceiling.due < period.due
    return ReplyDeadline(ceiling if capped else period, period, ceiling, rule, ceiling_rule, capped)


def create_item(*, session: Session, calendar: WorkdayCalendar, profile: Profile,
                category: ReplyCategory, channel: ReplyChannel, summary: str,
                received_at: datetime, unit: str, assignee: Person | None,
                created_by: Person | None, now: datetime, actor: str,
                external_ref: str | None = None) -> tuple[ReplyItem, ReplyDeadline]:
    """Store a new item with its deadline (no messages, no reminders: see flows).

    Raises:
        InputError: empty or over-long summary, receipt in the future, duplicate external ref.
    """
    summary = summary.strip()
    if not summary:
        raise InputError("请写明留言摘要。")
    if len(summary) > MAX_SUMMARY:
        raise InputError(f"摘要过长（{len(summary)} 字，上限 {MAX_SUMMARY} 字），请精简。")
    if received_at > now:
        raise InputError("收到时间不能晚于现在。")
    if external_ref and session.exec(select(ReplyItem).where(ReplyItem.external_ref == external_ref)).first():
        raise InputError(f"外部编号 {external_ref} 已登记过。")
    deadline = compute_deadline(calendar=calendar, profile=profile, category=category,
                                received_at=received_at)
    number = next_number(session=session, column=ReplyItem.number, prefix="MSG",
                         day=local(now).date())
    item = ReplyItem(
        number=number, external_ref=external_ref, channel=channel, category=category,
        summary=summary, unit=unit, assignee_id=assignee.id if assignee else None,
        created_by_id=created_by.id if created_by else None, received_at=received_at,
        due_at=deadline.due.due, due_last_day=deadline.due.last_day,
        ceiling_at=deadline.ceiling.due, provisional=deadline.provisional,
        rule_id=deadline.rule.rule_id, citation=deadline.basis_zh(), created_at=now)
    session.add(item)
    session.flush()
    audit.record(session=session, at=now, entity_type="reply", entity_id=number, action="created",
                 actor=actor, to_state=ReplyStatus.open, category=category, due=item.due_at.isoformat(),
                 assignee=assignee.name if assignee else None)
    return item, deadline


def get_item(*, session: Session, number: str) -> ReplyItem:
    """The item ``number`` (case-insensitive).

    Raises:
        ReplyNotFound: no such item.
    """
    number = number.strip().upper()
    item = session.exec(select(ReplyItem).where(ReplyItem.number == number)).first()
    if item is None:
        raise ReplyNotFound(number)
    return item


def _require_open(item: ReplyItem) -> None:
    if not item.is_open:
        raise InputError(f"{item.number} 已经办结，无需再操作。")


def assign(*, session: Session, item: ReplyItem, assignee: Person, now: datetime, actor: str) -> None:
    """Give the item to ``assignee``; the deadline does not change."""
    _require_open(item)
    before = item.assignee_id
    item.assignee_id = assignee.id
    session.add(item)
    audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                 action="assigned", actor=actor, assignee=assignee.name, previous=before)


def close(*, session: Session, item: ReplyItem, status: ReplyStatus, text: str, by: Person | None,
          now: datetime, actor: str) -> bool:
    """Answer (``answered``) or explain (``explained``) the item; returns whether on time.

    Raises:
        InputError: already closed, or no text.
    """
    _require_open(item)
    text = text.strip()
    if not text:
        raise InputError("请写明答复或说明的内容摘要。")
    if len(text) > MAX_SUMMARY:
        raise InputError(f"内容过长（上限 {MAX_SUMMARY} 字），请精简。")
    item.status, item.answer, item.closed_at = status, text, now
    item.closed_by_id = by.id if by else None
    item.extension_requested = None
    session.add(item)
    on_time = now <= item.due_at
    audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                 action=status.value, actor=actor, from_state=ReplyStatus.open, to_state=status,
                 on_time=on_time)
    return on_time


def request_extension(*, session: Session, item: ReplyItem, profile: Profile, days: int,
                      reason: str, by: Person, now: datetime, actor: str) -> int:
    """Ask to extend an objection by ``days`` working days; returns the most still allowed.

    Raises:
        InputError: not an objection, bad days, no reason, over the ceiling, one pending.
    """
    _require_open(item)
    if item.category != ReplyCategory.objection:
        raise InputError(f"只有“异议”类留言可以延期（{profile.citation('REPLY-5')}）；"
                         f"{item.number} 是“{CATEGORY_ZH[ReplyCategory(item.category)]}”。")
    if item.extension_requested:
        raise InputError(f"{item.number} 已有待审批的延期申请。")
    if not reason.strip():
        raise InputError("请写明延期理由。")
    room = extension_room(item=item, profile=profile)
    if days <= 0:
        raise InputError("延期天数应为正整数。")
    if days > room:
        total = profile.value("REPLY-5", "max_total")
        raise InputError(f"延期后合计将超过{total.quantity.zh()}（{total.citation}），"
                         f"最多还可延长 {room} 个工作日。")
    item.extension_requested, item.extension_reason = days, reason.strip()
    item.extension_requested_by_id = by.id
    session.add(item)
    audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                 action="extension_requested", actor=actor, days=days, reason=reason.strip())
    return room


def extension_room(*, item: ReplyItem, profile: Profile) -> int:
    """Working days an objection may still be extended by (REPLY-5 max_total)."""
    decide = profile.value("REPLY-5", "decide").quantity.amount
    total = profile.value("REPLY-5", "max_total").quantity.amount
    return max(0, total - decide - item.extended_workdays)


def decide_extension(*, session: Session, item: ReplyItem, approve: bool, calendar: WorkdayCalendar,
                     profile: Profile, now: datetime, actor: str, note: str = "") -> ReplyDeadline | None:
    """Approve (new deadline returned) or reject the pending extension.

    Raises:
        InputError: nothing pending.
    """
    _require_open(item)
    days = item.extension_requested
    if not days:
        raise InputError(f"{item.number} 没有待审批的延期申请。")
    item.extension_requested = None
    if not approve:
        session.add(item)
        audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                     action="extension_rejected", actor=actor, days=days, note=note)
        return None
    item.extended_workdays += min(days, extension_room(item=item, profile=profile))
    deadline = compute_deadline(calendar=calendar, profile=profile,
                                category=ReplyCategory(item.category), received_at=item.received_at,
                                extended_workdays=item.extended_workdays)
    item.due_at, item.due_last_day = deadline.due.due, deadline.due.last_day
    item.provisional, item.citation = deadline.provisional, deadline.basis_zh()
    item.escalation_level = 0 if item.due_at > now else item.escalation_level
    session.add(item)
    audit.record(session=session, at=now, entity_type="reply", entity_id=item.number,
                 action="extension_approved", actor=actor, days=days, due=item.due_at.isoformat())
    return deadline


def list_items(*, session: Session, which: str, now: datetime, person: Person | None = None,
               limit: int = 200) -> list[ReplyItem]:
    """Open items by due time: ``open`` (all open), ``due`` (due within a day), ``overdue``,
    ``mine`` (assigned to ``person``)."""
    stmt = select(ReplyItem).where(ReplyItem.status == ReplyStatus.open).order_by(col(ReplyItem.due_at))
    if which == "overdue":
        stmt = stmt.where(ReplyItem.due_at <= now)
    elif which == "due":
        stmt = stmt.where(ReplyItem.due_at <= now + timedelta(days=1))
    elif which == "mine":
        stmt = stmt.where(ReplyItem.assignee_id == (person.id if person else -1))
    return list(session.exec(stmt.limit(limit)))
