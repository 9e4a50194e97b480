"""/people: admins manage people over their working life (add, edit phone, roles and unit,
deactivate with handover, reactivate) and binding codes, in chat.

Its replies hold phone numbers and binding codes (a code binds whoever sends it first), so
in a group chat they go to the admin's private chat and the group reads only 已私信发送;
an admin the bot cannot reach privately on this platform is asked to use the private chat,
and nothing is done (issue 16 item 3)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from bot import staffing
from bot.dispatcher import Context, Handler
from bot.handlers.duty import parse_day
from core.clock import fmt_short_zh, local
from core.errors import DutybotError, InputError
from core.messages import Inbound, Outbound
from core.profiles import Profile
from core.text import parse_row_id
from people import filings
from people.edits import parse_unit, reactivate_person, set_roles, set_unit
from people.models import ChatIdentity, Person, Role, StaffChange
from people.service import (
    add_person,
    create_invite,
    find_person,
    list_people,
    parse_roles,
    reachable,
    record_training,
    set_phone,
    validate,
)
from roster import training

_NAMES = re.compile(r"[、,，;；]+")
SENT_PRIVATELY = "已私信发送。"
USE_PRIVATE_CHAT = "请在与机器人的私聊中发送该命令（回复中有电话号码或绑定码，不在群里显示）。"


def private_chat(ctx: Context, platform: str) -> bool:
    """Whether the speaker can be reached in a private chat on ``platform`` (bound there,
    with a chat, not blocking the bot)."""
    if ctx.person is None:
        return False
    identity = ctx.session.exec(select(ChatIdentity).where(ChatIdentity.person_id == ctx.person.id,
                                                           ChatIdentity.platform == platform)).first()
    return identity is not None and bool(identity.chat_id) and identity.blocked_at is None


def privately(inbound: Inbound, ctx: Context, replies: list[Outbound]) -> list[Outbound]:
    """``replies`` as they are in a private chat; in a group, sent to the speaker privately
    and the group told :data:`SENT_PRIVATELY` (the caller checked :func:`private_chat`)."""
    if not inbound.is_group or ctx.person is None:
        return replies
    mine = [Outbound(r.text, person_id=ctx.person.id, buttons=r.buttons)
            if r.person_id is None and r.chat_id is None else r for r in replies]
    return [*mine, Outbound(SENT_PRIVATELY)]


def training_zh(person: Person, profile: Profile) -> str:
    """``培训 2026-11-20``; ``未登记培训`` for an officer where STAFF-1 applies; else ''."""
    if person.trained_on is not None:
        return f"培训 {person.trained_on.isoformat()}"
    if training.required(profile) and Role.officer in person.role_set():
        return "未登记培训"
    return ""


FORMS = ("/people list [all]", "/people add 姓名 电话 角色[、角色] [单位]", "/people invite 姓名",
         "/people trained 姓名[、姓名] [日期]", "/people phone 姓名 电话", "/people role 姓名 角色[、角色]",
         "/people unit 姓名 单位", "/people deactivate 姓名 [交接 接收人]", "/people reactivate 姓名",
         "/people filings", "/people filed 编号")
PHONE_NOTE = "电话：11 位手机号码如 13812345678，或带区号的固定电话如 023-67881234"
ROLE_NOTE = ("角色：值班员、带班领导、主要负责人、管理员、外部联系人、技术保障；"
             "技术保障的单位即其负责的单位，写“无”表示各单位")
DEACTIVATE_NOTE = "停用时撤下其今后的班次并通知空缺，未办结的事件、留言交给接收人"
NOTES = {"add": f"{PHONE_NOTE}；{ROLE_NOTE}", "phone": PHONE_NOTE, "role": ROLE_NOTE, "unit": ROLE_NOTE,
         "deactivate": DEACTIVATE_NOTE}
ACTION_ALIASES = {"名单": "list", "添加": "add", "邀请": "invite", "培训": "trained", "电话": "phone",
                  "角色": "role", "roles": "role", "单位": "unit", "停用": "deactivate", "离岗": "deactivate",
                  "恢复": "reactivate", "返岗": "reactivate", "待备案": "filings", "已备案": "filed",
                  "备案": "filed"}


class PeopleHandler(Handler):
    command = "people"
    aliases = ("人员",)
    roles = frozenset({Role.admin})
    usage = " ｜ ".join(FORMS) + f"（{PHONE_NOTE}；{ROLE_NOTE}；{DEACTIVATE_NOTE}）"
    summary = "人员管理：名单、添加、绑定码、登记培训、改电话/角色/单位、停用交接、恢复、人员变动备案（管理员）"

    def usage_for(self, args: str) -> str:
        """Only the attempted sub-command's form, with its notes (the whole list is long on a phone)."""
        word = args.split(maxsplit=1)[0] if args.strip() else ""
        action = ACTION_ALIASES.get(word, word.lower())
        form = next((f for f in FORMS if action and (f + " ").startswith(f"/people {action} ")), None)
        if form is None:
            return self.usage
        return form + (f"（{NOTES[action]}）" if action in NOTES else "")

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        # Checked before anything is done: a code made but never seen is a code to revoke.
        if inbound.is_group and not private_chat(ctx, inbound.platform):
            raise DutybotError(USE_PRIVATE_CHAT)
        return privately(inbound, ctx, await self._handle(inbound, ctx))

    async def _handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        action, _, rest = ctx.args.partition(" ")
        action = action.strip().lower()
        if action in ("list", "名单", ""):
            everyone = rest.strip().lower() in ("all", "全部")
            people = list_people(session=ctx.session, include_inactive=everyone)
            if not people:
                return [Outbound("还没有任何人员。用 /people add 添加。")]
            lines = [f"人员名单（共 {len(people)} 人{'，含已停用' if everyone else ''}）："]
            for p in people:
                trained = training_zh(p, ctx.profile)
                lines.append(f"· {p.name}{'' if p.active else '（已停用）'}｜{p.roles_zh()}｜{p.unit or '—'}｜"
                             f"{p.phone or '—'}" + (f"｜{trained}" if trained else ""))
            waiting = filings.open_filings(session=ctx.session)
            if waiting:
                lines.append(f"待备案的人员变动 {len(waiting)} 项：/people filings")
            return [Outbound("\n".join(lines))]
        if action in ("add", "添加"):
            parts = rest.split()
            if len(parts) < 3:
                raise InputError("添加人员需要姓名、电话和角色。")
            new = validate(parts[0], parts[1], " ".join(parts[3:]), parts[2])
            person = add_person(session=ctx.session, new=new, now=ctx.now, actor=ctx.actor)
            note = self._file(ctx, [(person, StaffChange.added, "")])
            return [Outbound(f"已添加 {person.name}（{person.roles_zh()}）。"
                             f"发送 /people invite {person.name} 生成绑定码。" + note)]
        if action in ("trained", "培训"):
            return [Outbound(self._trained(rest, ctx))]
        if action in ("phone", "电话"):
            parts = rest.split()
            if len(parts) != 2:
                raise InputError("修改电话需要姓名和新号码：/people phone 姓名 电话")
            person = find_person(session=ctx.session, name=parts[0])
            old = set_phone(session=ctx.session, person=person, phone=parts[1], now=ctx.now, actor=ctx.actor)
            note = self._file(ctx, [(person, StaffChange.phone, old)])
            return [Outbound(f"已将 {person.name} 的电话由 {old or '（无）'} 改为 {person.phone}。" + note)]
        if action in ("role", "roles", "角色"):
            name, _, value = rest.strip().partition(" ")
            if not name or not value.strip():
                raise InputError("修改角色需要姓名和新角色：/people role 姓名 值班员、带班领导")
            person = find_person(session=ctx.session, name=name)
            old = set_roles(session=ctx.session, person=person, roles=parse_roles(value), now=ctx.now,
                            actor=ctx.actor)
            note = self._file(ctx, [(person, StaffChange.roles, old)])
            return [Outbound(f"已将 {person.name} 的角色由 {old} 改为 {person.roles_zh()}。" + note)]
        if action in ("unit", "单位"):
            name, _, value = rest.strip().partition(" ")
            if not name or not value.strip():
                raise InputError("修改单位需要姓名和新单位：/people unit 姓名 单位（写“无”清除）")
            person = find_person(session=ctx.session, name=name)
            old = set_unit(session=ctx.session, person=person, unit=parse_unit(value), now=ctx.now, actor=ctx.actor)
            note = self._file(ctx, [(person, StaffChange.unit, old)])
            return [Outbound(f"已将 {person.name} 的单位由 {old or '（无）'} 改为 {person.unit or '（无）'}。" + note)]
        if action in ("deactivate", "停用", "离岗"):
            if not rest.strip():
                raise InputError(f"请给出要停用的人员姓名：{staffing.usage()}")
            name, to = staffing.split_receiver(rest)
            person = find_person(session=ctx.session, name=name)
            receiver = find_person(session=ctx.session, name=to) if to else None
            dep = staffing.deactivate(session=ctx.session, person=person, receiver=receiver, now=ctx.now,
                                      actor=ctx.actor, calendar=ctx.calendar, patterns=ctx.settings.roster.patterns(),
                                      profile=ctx.profile, skip=ctx.person)
            return [Outbound(staffing.render(dep, ctx.profile, ctx.now))]
        if action in ("reactivate", "恢复", "返岗"):
            name = rest.strip()
            if not name:
                raise InputError("请给出要恢复的人员姓名：/people reactivate 姓名")
            person = reactivate_person(session=ctx.session, person=find_person(session=ctx.session, name=name,
                                                                                inactive=True),
                                       now=ctx.now, actor=ctx.actor)
            note = self._file(ctx, [(person, StaffChange.reactivated, "")])
            bound = reachable(session=ctx.session, people=[person])
            return [Outbound(f"已恢复 {person.name}（{person.roles_zh()}）：重新出现在名单、排班和通知中。"
                             + ("" if bound else f"如需绑定聊天账号：/people invite {person.name}。")
                             + "原有班次和已交接的事项不会自动恢复。" + note)]
        if action in ("filings", "待备案"):
            waiting = filings.open_filings(session=ctx.session)
            if not waiting:
                return [Outbound("没有待备案的人员变动。")]
            lines = [f"待备案的人员变动（{len(waiting)} 项）：", *(f"· {filings.line(r)}" for r in waiting),
                     f"{filings.DONE_HINT}。"]
            return [Outbound("\n".join(lines))]
        if action in ("filed", "已备案", "备案"):
            number = parse_row_id(rest)
            if number is None:
                raise InputError("请给出备案事项编号（/people filings 查看）。")
            row = filings.mark_filed(session=ctx.session, filing_id=number, now=ctx.now, actor=ctx.actor)
            left = len(filings.open_filings(session=ctx.session))
            return [Outbound(f"已登记为已备案：{filings.line(row)}。"
                             + (f"尚有 {left} 项待备案。" if left else "人员变动已全部备案。"))]
        if action in ("invite", "邀请"):
            name = rest.strip()
            if not name:
                raise InputError("请给出要邀请的人员姓名。")
            person = find_person(session=ctx.session, name=name)
            ttl = timedelta(hours=ctx.settings.bot.invite_ttl_hours)
            invite = create_invite(session=ctx.session, person=person, now=ctx.now, ttl=ttl,
                                   actor=ctx.actor)
            return [Outbound(f"{person.name} 的绑定码：{invite.code}\n"
                             f"有效期至 {fmt_short_zh(invite.expires_at)}，仅可使用一次。"
                             f"请当面或电话告知本人，由其私聊机器人发送：/bind {invite.code}")]
        raise InputError(f"未知操作“{action}”。")

    @staticmethod
    def _file(ctx: Context, changes: list[tuple[Person, StaffChange, str]]) -> str:
        """Record a staff change for 备案 (STAFF-2) and tell the other admins; the reply's note."""
        rows = filings.record_changes(session=ctx.session, profile=ctx.profile, changes=changes, now=ctx.now,
                                      actor=ctx.actor, skip=ctx.person)
        note = filings.reply_note(ctx.profile, rows)
        return f"\n{note}" if note else ""

    @staticmethod
    def _trained(rest: str, ctx: Context) -> str:
        """``/people trained 张三、李四 [日期]``: record the day of their training (STAFF-1)."""
        parts = rest.split()
        if not parts:
            raise InputError("请给出已培训人员的姓名（多人以顿号分隔）和培训日期（默认今天）。")
        today = local(ctx.now).date()
        day = parse_day(parts[1], today) if len(parts) > 1 else today
        if len(parts) > 2:
            raise InputError("姓名之间请用顿号分隔，如 /people trained 张三、李四 2026-11-20")
        people = [find_person(session=ctx.session, name=n) for n in _NAMES.split(parts[0]) if n]
        for person in people:
            record_training(session=ctx.session, person=person, day=day, now=ctx.now, actor=ctx.actor)
        text = f"已登记培训：{'、'.join(p.name for p in people)}，培训日期 {day.isoformat()}。"
        if training.required(ctx.profile):
            text += f"自该日起可安排值班（{ctx.profile.basis(training.RULE)}）。"
        return text
