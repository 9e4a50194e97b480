"""/assign (补位): fill a gap on the roster (DUTY-1), and the ``理由：…`` an admin adds to a
roster change that breaks a rest rule (``roster.rest``)."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.dispatcher import Context, Handler
from bot.handlers.duty import parse_day
from core.errors import InputError
from core.messages import Inbound, Outbound
from people.errors import PersonNotFound
from people.models import Person, Role
from roster import assign as filling
from roster import changes
from roster import service as roster
from roster.models import DUTY_ROLE_ZH
from roster.rest import Override, RestRules, RestViolation

MAX_REASON = 200
_REASON = re.compile(r"(?:^|\s)理由\s*[：:]\s*")


def split_reason(text: str) -> tuple[str, str | None]:
    """``… 理由：人手不足`` → (``…``, ``人手不足``); (text, None) without ``理由：``.

    Raises:
        InputError: the reason is too long.
    """
    m = _REASON.search(text)
    if m is None:
        return text.strip(), None
    reason = text[m.end():].strip()
    if len(reason) > MAX_REASON:
        raise InputError(f"理由过长（上限 {MAX_REASON} 字）。")
    return text[:m.start()].strip(), reason


def override_of(ctx: Context, reason: str | None) -> Override | None:
    """The speaker's override when they gave a reason (whether they may is checked by the roster)."""
    assert ctx.person is not None
    return Override(ctx.person, reason) if reason is not None else None


def rest_rules(ctx: Context) -> RestRules:
    return RestRules.from_settings(ctx.settings.roster)


def overridden_note(found: list[RestViolation], reason: str | None) -> str:
    """``\\n注意：…；已记录放行理由：人手不足`` ('' when nothing was overridden)."""
    if not found:
        return ""
    return "\n注意：" + "；".join(v.zh() for v in found) + f"。已记录放行理由：{reason}"


def _any_person(ctx: Context, name: str) -> Person:
    """The person called ``name``, active or not (an inactive one is refused by name)."""
    person = ctx.session.exec(select(Person).where(Person.name == name.strip())).first()
    if person is None:
        raise PersonNotFound(name.strip())
    return person


class AssignHandler(Handler):
    command = "assign"
    aliases = ("补位",)
    roles = frozenset({Role.admin, Role.leader, Role.principal})
    usage = "/assign 日期 班次 人员 [值班员|带班领导] [理由：…]（如 /assign 10-10 夜班 王芳）"
    summary = "补位：为空缺的班次安排值班员或带班领导"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        assert ctx.person is not None
        text, reason = split_reason(ctx.args)
        tokens = text.split()
        if len(tokens) < 2:
            raise InputError("请写明日期、班次和人员。")
        patterns = ctx.settings.roster.patterns()
        day = parse_day(tokens[0], roster.local_day(ctx.now, patterns, ctx.calendar))
        planned = [p.name for p in patterns.for_day(day, ctx.calendar)]
        if tokens[1] in patterns.names():
            name, rest = tokens[1], tokens[2:]
        elif len(planned) == 1:
            name, rest = planned[0], tokens[1:]
        else:
            raise InputError(f"请写明班次（{day.month}月{day.day}日：{'、'.join(planned)}）。")
        if not rest:
            raise InputError("请写明要安排的人员。")
        if len(rest) > 2:
            raise InputError("参数过多；理由请写在“理由：”之后。")
        role = filling.parse_role(rest[1]) if len(rest) > 1 else None
        if len(rest) > 1 and role is None:
            raise InputError(f"无法识别的角色“{rest[1]}”（可写：值班员、带班领导）。")
        person = _any_person(ctx, rest[0])
        shift, need, created = filling.target_shift(session=ctx.session, calendar=ctx.calendar, patterns=patterns,
                                                    day=day, name=name, now=ctx.now, actor=ctx.actor)
        hint = (f"如确需安排，请写明理由后重发：/assign {text} 理由：…" if Role.admin in ctx.person.role_set()
                else "如确需安排，请联系管理员说明理由后安排。")
        done = filling.fill(session=ctx.session, shift=shift, need=need, person=person, role=role, now=ctx.now,
                            actor=ctx.actor, rules=rest_rules(ctx), override=override_of(ctx, reason),
                            profile=ctx.profile, hint=hint)
        role_zh = DUTY_ROLE_ZH[done.role]
        note = overridden_note(done.overridden, reason)
        lines = [f"已补位：{roster.label(shift)} {role_zh} {person.name}。"
                 + ("（该日此班次原未排班，已补排）" if created else "")]
        lines.append(f"该班次仍缺：{'、'.join(done.still_missing)}。" if done.still_missing else "该班次已排满。")
        if shift.published:
            if person.id != ctx.person.id:
                changes.notify(ctx.session, [person],
                               f"【值班安排】{ctx.actor} 安排您担任 {roster.label(shift)} 的{role_zh}。"
                               "查看：/myduty" + note,
                               event=f"assign:{shift.id}:{person.id}:{ctx.now.isoformat()}", now=ctx.now)
                lines.append(f"已通知 {person.name}。")
        else:
            lines.append("该班次为草稿，发布后统一通知。")
        return [Outbound("\n".join(lines) + note)]
