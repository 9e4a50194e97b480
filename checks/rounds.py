"""Inspection rounds: planning, recording a unit's result, and its rectification items.

Where the profile states ``CHECK-1.check_interval`` (梁平办法第二十九条 每季度; 古丈办法第二十一条
每个季度), :func:`plan_round` creates the period's round (the current quarter, or the next)
over every unit that has sites or people. Where it states none (云南, 宝鸡, 江川) a periodic
round is refused with 本地规定未作要求; the office may still run a 专项检查 of its own choice
(``adhoc``), labelled so everywhere.

:func:`record_result` scores one unit on the score sheet (:mod:`checks.indicators`): full
score minus the deductions; any 单项否决 item, or a score under the pass mark, is 不合格. Each
item found becomes a rectification item (整改). No article sets a rectification period, so
the deadline is the office's working practice — ``[checks] rectify_workdays`` working days
counted on the working-day calendar — or a date the checkers set, and every message says
which (工作要求，非条款规定). The unit's leaders and admins are told at once; the reminder
ladder (:mod:`checks.reminders`) chases the items until they are marked done.

Functions work in the caller's transaction and never commit; the audit log records each
round, result and item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from checks.indicators import Hit, Sheet
from checks.models import (
    ITEM_STATUS_ZH,
    CheckHit,
    CheckResult,
    CheckRound,
    ItemStatus,
    Rectification,
    RoundKind,
    RoundStatus,
)
from checks.reminders import cancel_ladder, schedule_ladder
from checks.service import (
    ADHOC_LABEL,
    DONE_HINT,
    PRACTICE,
    CheckPolicy,
    NotStated,
    Period,
    admins,
    check_interval,
    get_item,
    get_round,
    holders,
    not_required,
    period_of,
    periodic_round,
    units_of,
)
from core import audit
from core.clock import SHANGHAI, fmt_date_zh, local, local_midnight
from core.errors import InputError, PermissionDenied
from core.messages import Outbound
from core.outbox import enqueue
from core.profiles import Profile
from core.text import check_name, clean_text
from people.models import Person, Role

MAX_NOTE = 300


def rectify_ref(item: Rectification) -> str:
    """The due-item ``ref`` of an item's reminders."""
    return f"rectify:{item.id}"


def basis_zh(round_: CheckRound) -> str:
    """``检查依据：梁平办法第二十九条`` or the 专项检查 label."""
    return ADHOC_LABEL if round_.kind == RoundKind.adhoc else f"检查依据：{round_.citation}"


def due_zh(item: Rectification) -> str:
    """``2026年10月15日（星期四）24:00``, with 暂定 when the year's holidays are not published."""
    at = local(item.due_at)
    clock = "24:00" if at.date() != item.due_last_day else f"{at:%H:%M}"
    return (f"{fmt_date_zh(item.due_last_day)}{clock}"
            + ("（暂定：该年度节假日安排尚未发布）" if item.provisional else ""))


def item_line(item: Rectification, *, with_unit: bool = True) -> str:
    """``编号 3｜区教育局｜V2 站点无法访问｜截止 2026年10月15日（星期四）24:00｜待整改``."""
    unit = f"{item.unit}｜" if with_unit else ""
    state = ITEM_STATUS_ZH[ItemStatus(item.status)]
    if item.status == ItemStatus.done and item.done_at is not None:
        state += f"（{local(item.done_at):%m-%d %H:%M} {audit.actor_zh(item.done_by)}）"
    return f"编号 {item.id}｜{unit}{item.code} {item.what}｜截止 {due_zh(item)}｜{state}"


# ---------------------------------------------------------------- planning

@dataclass(frozen=True)
class Planned:
    """A round planned (or found already planned)."""

    round: CheckRound
    created: bool
    units: list[str]


def _period(profile: Profile, today: date, ahead: int) -> tuple[Period, str]:
    value = check_interval(profile)
    if value is None:
        raise NotStated(f"{not_required(profile, '定期检查周期（CHECK-1.check_interval）')}，不建立定期检查。"
                        "如需开展专项检查（本单位安排，非条款规定）：dutybot checks plan --adhoc")
    return period_of(today, value.quantity.amount, ahead=ahead), value.citation


def plan_round(*, session: Session, profile: Profile, sheet: Sheet, now: datetime, actor: str,
               adhoc: bool = False, ahead: int = 0) -> Planned:
    """Create the round of the current period (``ahead=1``: the next), or a 专项检查.

    Returns:
        The round, whether it was created now, and its units.

    Raises:
        NotStated: a periodic round where the profile states no check interval.
        InputError: no unit has sites or people yet.
    """
    today = local(now).date()
    if adhoc:
        period = Period("adhoc", f"专项检查（{today.year}年{today.month}月{today.day}日）", today, today)
        citation = ADHOC_LABEL
    else:
        period, citation = _period(profile, today, ahead)
        found = periodic_round(session=session, period=period.key)
        if found is not None:
            units = [r.unit for r in session.exec(select(CheckResult).where(CheckResult.round_id == found.id))]
            return Planned(found, False, sorted(units))
    units = units_of(session=session)
    if not units:
        raise InputError("还没有可检查的单位：请先登记网站和账号（dutybot sites add）或人员（dutybot people add）。")
    round_ = CheckRound(kind=RoundKind.adhoc if adhoc else RoundKind.periodic, period=period.key,
                        title=period.title, starts_on=period.starts_on, ends_on=period.ends_on,
                        citation=citation[:200], sheet=sheet.name[:200], created_by=actor[:100], created_at=now)
    session.add(round_)
    session.flush()
    assert round_.id is not None
    for unit in units:
        session.add(CheckResult(round_id=round_.id, unit=unit))
    audit.record(session=session, at=now, entity_type="check_round", entity_id=round_.id, action="planned",
                 actor=actor, to_state=RoundStatus.open, zh=f"建立{round_.title}（{len(units)} 个单位）",
                 period=period.key, citation=citation, units=units)
    return Planned(round_, True, units)


# ---------------------------------------------------------------- recording

@dataclass(frozen=True)
class Recorded:
    """A unit's recorded result and the rectification items it opened."""

    round: CheckRound
    result: CheckResult
    hits: list[Hit]
    items: list[Rectification]
    notified: list[Person]


def _deadline(policy: CheckPolicy, now: datetime, due: date | None) -> tuple[datetime, date, bool, str]:
    """(due_at, last day, provisional, basis) of the items of one result."""
    if due is None:
        deadline = policy.calendar.add_workdays(now, policy.rectify_workdays)
        return (deadline.due, deadline.last_day, deadline.provisional,
                f"整改期限{policy.rectify_workdays}个工作日为{PRACTICE}")
    if due < local(now).date():
        raise InputError(f"整改期限 {due.isoformat()} 已过，请给出今天或以后的日期。")
    cutoff = policy.calendar.cutoff
    due_at = (local_midnight(due + timedelta(days=1)) if cutoff is None
              else datetime.combine(due, cutoff, tzinfo=SHANGHAI))
    return due_at, due, False, f"整改期限由检查组指定，为{PRACTICE}"


def result_zh(sheet: Sheet, result: CheckResult, hits: list[Hit]) -> str:
    """``得分：91（满分100，合格线60）；结果：不合格（单项否决：站点无法访问）``."""
    veto = [h.indicator.title for h in hits if h.indicator.veto]
    verdict = "合格" if result.passed else "不合格"
    why = f"（单项否决：{'、'.join(veto)}）" if veto else ("" if result.passed else "（低于合格线）")
    return f"得分：{result.score}（满分{sheet.full_score}，合格线{sheet.pass_score}）；结果：{verdict}{why}"


def record_result(*, session: Session, sheet: Sheet, policy: CheckPolicy, unit: str, hits_text: str,
                  now: datetime, actor: str, round_id: int | None = None, due: date | None = None,
                  note: str = "") -> Recorded:
    """Record ``unit``'s result in the round (the latest unless ``round_id``), open a
    rectification item per item found, tell the unit and schedule the reminders.

    Raises:
        RoundNotFound: no such round, or none yet.
        InputError: an unknown unit or item, a unit already recorded, a past ``due``.
    """
    round_ = get_round(session=session, round_id=round_id)
    assert round_.id is not None
    unit = check_name(unit, "单位名称")
    note = clean_text(note).strip()
    if len(note) > MAX_NOTE:
        raise InputError(f"说明过长（上限 {MAX_NOTE} 字）。")
    result = session.exec(select(CheckResult).where(CheckResult.round_id == round_.id,
                                                    CheckResult.unit == unit)).first()
    if result is None:
        known = units_of(session=session)
        if unit not in known:
            raise InputError(f"“{unit}”不是已登记网站或人员的单位。可用：{'、'.join(known) or '（无）'}")
        result = CheckResult(round_id=round_.id, unit=unit)
    if result.recorded_at is not None:
        raise InputError(f"{unit} 在{round_.title}中已于 {local(result.recorded_at):%Y-%m-%d %H:%M} "
                         f"由 {audit.actor_zh(result.recorded_by)} 登记（{result.score} 分）。")
    hits = sheet.parse_hits(hits_text)
    due_at, last_day, provisional, due_basis = _deadline(policy, now, due) if hits else (now, local(now).date(), False, "")
    score, vetoed, passed = sheet.score(hits)
    result.score, result.deductions, result.vetoed, result.passed = (
        score, sum(h.deduction for h in hits), vetoed, passed)
    result.note, result.recorded_by, result.recorded_at = note, actor[:100], now
    session.add(result)
    session.flush()
    assert result.id is not None
    items: list[Rectification] = []
    for hit in hits:
        ind = hit.indicator
        session.add(CheckHit(result_id=result.id, code=ind.code, title=ind.title[:100], veto=ind.veto,
                             count=hit.count, deduction=hit.deduction))
        what = ind.title + (f"（{hit.count}处）" if hit.count > 1 else "")
        item = Rectification(round_id=round_.id, result_id=result.id, unit=unit, code=ind.code, what=what[:300],
                             due_at=due_at, due_last_day=last_day, provisional=provisional,
                             due_basis=due_basis[:100], created_at=now)
        session.add(item)
        session.flush()
        schedule_ladder(session=session, ref=rectify_ref(item), last_day=last_day, due_at=due_at,
                        policy=policy, now=now)
        items.append(item)
    if all(r.recorded_at is not None for r in session.exec(
            select(CheckResult).where(CheckResult.round_id == round_.id))):
        round_.status = RoundStatus.done
        session.add(round_)
    audit.record(session=session, at=now, entity_type="check_result", entity_id=result.id, action="recorded",
                 actor=actor, to_state="pass" if passed else "fail",
                 zh=f"{round_.title}：{unit} {score} 分，{'合格' if passed else '不合格'}",
                 round=round_.id, unit=unit, hits=[f"{h.indicator.code}×{h.count}" for h in hits],
                 items=[i.id for i in items], due=last_day.isoformat() if items else None, due_basis=due_basis)
    text = result_message(sheet=sheet, round_=round_, result=result, hits=hits, items=items, due_basis=due_basis)
    people = holders(session=session, unit=unit)
    for person in people:
        enqueue(session=session, message=Outbound(text, person_id=person.id), now=now,
                event_key=f"checks:result:{result.id}")
    return Recorded(round_, result, hits, items, people)


def result_message(*, sheet: Sheet, round_: CheckRound, result: CheckResult, hits: list[Hit],
                   items: list[Rectification], due_basis: str) -> str:
    """What the unit is told when its result is recorded."""
    lines = [f"【检查结果】{round_.title}｜{result.unit}", result_zh(sheet, result, hits)]
    if result.note:
        lines.append(f"检查说明：{result.note}")
    if not items:
        lines.append("未发现问题，无整改事项。")
    else:
        lines.append("发现问题：")
        lines += [f"· {h.zh()}" for h in hits]
        lines.append(f"请于 {due_zh(items[0])} 前完成整改（{due_basis}）：")
        lines += [f"· 编号 {i.id}｜{i.code} {i.what}" for i in items]
        lines.append(DONE_HINT)
    lines.append(basis_zh(round_))
    return "\n".join(lines)


# ---------------------------------------------------------------- done

def mark_done(*, session: Session, item_id: int, now: datetime, actor: str, person: Person | None = None,
              note: str = "") -> Rectification:
    """The unit put item ``item_id`` right: close it, cancel its reminders, tell the admins.

    Args:
        person: who says so in chat (None: the command line); one of the item's unit, or an admin.

    Raises:
        ItemNotFound: no such item.
        PermissionDenied: ``person`` is of another unit and not an admin.
        InputError: already done, or the note is too long.
    """
    item = get_item(session=session, item_id=item_id)
    if person is not None and person.unit != item.unit and Role.admin not in person.role_set():
        raise PermissionDenied(f"编号 {item_id} 是{item.unit}的整改事项，只能由该单位人员或管理员登记办结。")
    if item.status == ItemStatus.done:
        when = f"{local(item.done_at):%Y-%m-%d %H:%M} " if item.done_at else ""
        raise InputError(f"编号 {item_id} 已于 {when}由 {audit.actor_zh(item.done_by)} 登记为已整改。")
    note = clean_text(note).strip()
    if len(note) > MAX_NOTE:
        raise InputError(f"整改说明过长（上限 {MAX_NOTE} 字）。")
    item.status, item.done_by, item.done_at, item.note = ItemStatus.done, actor[:100], now, note
    session.add(item)
    cancel_ladder(session=session, ref=rectify_ref(item))
    audit.record(session=session, at=now, entity_type="rectification", entity_id=item_id, action="done",
                 actor=actor, from_state=ItemStatus.open, to_state=ItemStatus.done,
                 zh=f"整改完成：{item.unit} {item.code} {item.what}" + (f"（{note}）" if note else ""))
    text = (f"【整改完成】{item.unit} 已登记整改完成：编号 {item.id}｜{item.code} {item.what}"
            + (f"\n整改说明：{note}" if note else "") + f"\n登记人：{audit.actor_zh(actor)}。请核查整改情况。")
    for admin in admins(session=session):
        if person is None or admin.id != person.id:
            enqueue(session=session, message=Outbound(text, person_id=admin.id), now=now,
                    event_key=f"checks:rectify:{item.id}:done")
    return item
