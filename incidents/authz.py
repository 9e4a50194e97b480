"""Who may do what to an incident: role × unit × incident state (issue 16 item 4).

One function, :func:`authorize`, answers for every ``/incident`` sub-command that names an
incident; the chat handlers call it right after resolving the incident and before any
side effect (and, for ``evidence`` with an address, before the page is fetched). It raises
:class:`~core.errors.PermissionDenied` (or, for an ended incident, the same
:class:`~core.errors.DutybotError` as :func:`incidents.service.require_open`) with the
Chinese sentence the person sees; it returns None when the action is allowed.

The rules:

- **Never**: external contacts (外部联系人) and 技术保障 (support) act on incidents; the
  dispatcher already refuses them ``/incident`` (support is pinged, and fixes the site).
- **State**: an ended incident (结案, 撤销, 误报) may only be viewed (``show``) and reported
  (``report``).
- **Scope**: the incident's unit (its officers, leaders and principal), the people who
  reported or own it, the people the bot put on its escalation ladder (when a unit has no
  leader, the ladder falls back to others: whoever is asked to act may act), the
  district office (``[incidents] district_office``: it oversees every unit) and admins.
  An incident without a unit is anyone's. Others — another unit's officers, leaders
  and principals — may not even view it.
- **Role**: ``grade`` needs a leader, principal or admin; ``cancel`` the reporter or a
  leader, principal or admin. ``false`` (误报) is marked directly by a leader, principal
  or admin; an officer's ``false`` is a request their leader approves
  (:data:`FALSE_REQUEST`, handled in ``bot.handlers.incident``), see :func:`may_mark_false`.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import DutybotError, PermissionDenied
from incidents.models import STATUS_ZH, Incident, IncidentStatus
from people.models import Person, Role

#: Sub-commands about one incident, and the Chinese verb a refusal names.
ACTION_ZH = {
    "show": "查看", "report": "生成情况报告", "ack": "确认", "take": "接手", "done": "处置",
    "skip": "处置", "note": "记录", "grade": "调整等级", "escalate": "上报", "close": "结案",
    "cancel": "撤销", "false": "标记为误报", "evidence": "保全证据", "draft": "拟报告稿",
    "merge": "合并报告",
}
#: What an ended incident still allows.
READ_ONLY = frozenset({"show", "report"})
LEADERS = frozenset({Role.leader, Role.principal, Role.admin})
STAFF = LEADERS | {Role.officer}
#: Audit action of an officer's request to mark an incident a false alarm.
FALSE_REQUEST = "false_alarm_requested"


def _ladder_ids(incident: Incident) -> set[int]:
    return {pid for rung in incident.ladder_rungs() for pid in rung.get("person_ids", []) if pid is not None}


def in_scope(person: Person, incident: Incident, *, district_office: Iterable[str]) -> bool:
    """Whether ``person`` belongs to the people who act on ``incident`` (see the module doc)."""
    if Role.admin in person.role_set() or person.name in tuple(district_office):
        return True
    if not incident.unit or (person.unit and person.unit == incident.unit):
        return True
    if person.id is not None and person.id in (incident.owner_id, incident.reporter_id):
        return True
    return person.id is not None and person.id in _ladder_ids(incident)


def may_mark_false(person: Person) -> bool:
    """Whether ``person`` marks a false alarm directly (else their ``false`` is a request)."""
    return bool(person.role_set() & LEADERS)


def authorize(action: str, person: Person, incident: Incident, *, district_office: Iterable[str]) -> None:
    """Allow ``person`` to do ``action`` (an ``/incident`` sub-command) to ``incident``, or raise.

    Raises:
        PermissionDenied: the person's role or unit does not allow it (Chinese reason).
        DutybotError: the incident has ended and ``action`` is not ``show`` or ``report``.
    """
    what = ACTION_ZH.get(action, "操作")
    roles = person.role_set()
    if not person.active or Role.external in roles or not roles & STAFF:
        raise PermissionDenied(f"抱歉，您的角色（{person.roles_zh()}）不能{what}事件。如有疑问请联系管理员。")
    if not incident.is_open and action not in READ_ONLY:
        raise DutybotError(f"{incident.number} {STATUS_ZH[IncidentStatus(incident.status)]}，不能再操作。"
                           f"已结束的事件只能查看（/incident show {incident.number}）"
                           f"和生成情况报告（/incident report {incident.number}）。")
    if not in_scope(person, incident, district_office=district_office):
        raise PermissionDenied(f"抱歉，{incident.number} 属于{incident.unit}，您（{person.unit or '未登记单位'}）"
                               f"不能{what}。请联系该单位或管理员。")
    if action == "grade" and not roles & LEADERS:
        raise PermissionDenied("抱歉，调整事件等级需要带班领导、主要负责人或管理员，您不能调整等级。")
    if action == "cancel" and person.id != incident.reporter_id and not roles & LEADERS:
        raise PermissionDenied("抱歉，只有报告人、带班领导、主要负责人或管理员可以撤销事件，您不能撤销。")
