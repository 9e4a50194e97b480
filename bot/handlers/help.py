"""/help, /whoami and /bind: the first things a person says to the bot."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import select

from bot.dispatcher import Context, Handler
from core.errors import InputError
from core.messages import Inbound, Outbound
from core.outbox import queued_for
from people.models import PLATFORM_ZH, ChatIdentity
from people.service import bind

# Built once (issue 21): building the statement cost more than running it.
_ACCOUNTS = select(ChatIdentity).where(ChatIdentity.person_id == bindparam("person_id"))


class HelpHandler(Handler):
    command = "help"
    aliases = ("帮助", "start")
    allow_unbound = True
    usage = "/help"
    summary = "查看您可以使用的命令"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        if ctx.person is None:
            return [Outbound("您好，这里是值班读网与舆情处置机器人。\n"
                             "您还没有绑定身份：请向管理员索取绑定码，然后发送 /bind 绑定码。")]
        lines = [f"{ctx.person.name}，您好。您可以使用以下命令："]
        for handler in ctx.handlers:
            if handler.allowed(ctx.person) and handler.command != "start":
                alias = f"（或“{handler.aliases[0]}”）" if handler.aliases else ""
                lines.append(f"/{handler.command}{alias} — {handler.summary}")
        lines.append("命令后加参数有误时，机器人会回复正确的用法。")
        return [Outbound("\n".join(lines))]


class WhoamiHandler(Handler):
    command = "whoami"
    aliases = ("我是谁",)
    allow_unbound = True
    usage = "/whoami"
    summary = "查看您的身份、角色和绑定的账号"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        if ctx.person is None:
            return [Outbound(f"您尚未绑定身份（{PLATFORM_ZH.get(inbound.platform, inbound.platform)}"
                             f"账号 {inbound.sender_id}）。请向管理员索取绑定码后发送 /bind 绑定码。")]
        person = ctx.person
        accounts = ctx.session.exec(_ACCOUNTS, params={"person_id": person.id}).all()
        bound = "、".join(PLATFORM_ZH.get(a.platform, a.platform) + ("（已屏蔽机器人）" if a.blocked_at else "")
                         for a in accounts) or "无"
        # In a group the phone number is not shown to everyone (issue 16 item 3).
        phone = "（群聊中不显示，请私聊机器人查看）" if inbound.is_group else (person.phone or "未填写")
        return [Outbound(f"姓名：{person.name}\n角色：{person.roles_zh()}\n单位：{person.unit or '未填写'}\n"
                         f"电话：{phone}\n已绑定：{bound}")]


class BindHandler(Handler):
    command = "bind"
    aliases = ("绑定",)
    allow_unbound = True
    private_only = True
    usage = "/bind 绑定码（8 位字母和数字，向管理员索取）"
    summary = "用管理员给您的绑定码绑定身份"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        code = ctx.args.strip()
        if not code:
            raise InputError("请在命令后附上绑定码。")
        if inbound.is_group:
            raise InputError("为保护绑定码，请在与机器人的私聊中发送 /bind。")
        person = bind(session=ctx.session, code=code, platform=inbound.platform,
                      external_id=inbound.sender_id, chat_id=inbound.chat_id,
                      display_name=inbound.sender_name, now=ctx.now)
        text = f"绑定成功。{person.name}，您好！您的角色：{person.roles_zh()}。发送 /help 查看可用命令。"
        assert person.id is not None
        # Rows waiting for this binding are queued again (people.service.bind); they are
        # older than this reply, so they reach the person first.
        earlier = queued_for(session=ctx.session, person_id=person.id, platform=inbound.platform)
        if earlier:
            text += f"\n您绑定前有 {earlier} 条消息在等待送达，已按时间顺序在本条之前发出。"
        return [Outbound(text)]
