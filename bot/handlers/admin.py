"""/people: admins manage people and binding codes in chat."""

from __future__ import annotations

from datetime import timedelta

from bot.dispatcher import Context, Handler
from core.clock import fmt_short_zh
from core.errors import InputError
from core.messages import Inbound, Outbound
from people.models import Role
from people.service import add_person, create_invite, find_person, list_people, validate


class PeopleHandler(Handler):
    command = "people"
    aliases = ("人员",)
    roles = frozenset({Role.admin})
    usage = ("/people list ｜ /people add 姓名 电话 角色[、角色] [单位] ｜ /people invite 姓名"
             "（角色：值班员、带班领导、主要负责人、管理员、外部联系人、技术保障；"
             "技术保障的单位即其负责的单位）")
    summary = "人员管理：查看名单、添加人员、生成绑定码（管理员）"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        action, _, rest = ctx.args.partition(" ")
        action = action.strip().lower()
        if action in ("list", "名单", ""):
            people = list_people(session=ctx.session)
            if not people:
                return [Outbound("还没有任何人员。用 /people add 添加。")]
            lines = [f"人员名单（共 {len(people)} 人）："]
            lines += [f"· {p.name}｜{p.roles_zh()}｜{p.unit or '—'}｜{p.phone or '—'}" for p in people]
            return [Outbound("\n".join(lines))]
        if action in ("add", "添加"):
            parts = rest.split()
            if len(parts) < 3:
                raise InputError("添加人员需要姓名、电话和角色。")
            new = validate(parts[0], parts[1], " ".join(parts[3:]), parts[2])
            person = add_person(session=ctx.session, new=new, now=ctx.now, actor=ctx.actor)
            return [Outbound(f"已添加 {person.name}（{person.roles_zh()}）。"
                             f"发送 /people invite {person.name} 生成绑定码。")]
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
