"""/web: a one-time sign-in link to the web board (值班看板, ``bot/web/``).

The link signs in whoever opens it first, so like ``/people`` it is never shown in a
group: there the person gets it privately and the group reads 已私信发送 (or, when the bot
cannot reach them privately, is asked to use the private chat and no link is made)."""

from __future__ import annotations

from bot.dispatcher import Context, Handler
from bot.handlers.admin import private_chat, privately
from bot.web import auth
from bot.web.scope import REFUSED, may_use_board
from core.errors import DutybotError, PermissionDenied
from core.messages import Inbound, Outbound

NOT_ENABLED = "值班看板未启用：请管理员在配置文件 [web] 中设置 enabled = true 和 base_url（见管理员手册“值班看板”）。"
USE_PRIVATE = "请在与机器人的私聊中发送 /web（登录链接只能私聊发送，不在群里显示）。"


class WebHandler(Handler):
    command = "web"
    aliases = ("看板", "值班看板")
    usage = "/web"
    summary = "值班看板：私聊发送一次性登录链接（手机或电脑浏览器打开）"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        web = ctx.settings.web
        if not web.enabled:
            raise DutybotError(NOT_ENABLED)
        me = ctx.person
        if me is None or not may_use_board(me, ctx.incident_policy.district_office):
            raise PermissionDenied(REFUSED)
        # Checked before a link is made: a link never seen is a link nobody needs.
        if inbound.is_group and not private_chat(ctx, inbound.platform):
            raise DutybotError(USE_PRIVATE)
        token = auth.issue_link(session=ctx.session, person=me, now=ctx.now, minutes=web.link_minutes)
        text = (f"值班看板登录链接（{web.link_minutes} 分钟内有效，只能使用一次，请勿转发）：\n"
                f"{web.base_url}/web/login/{token}\n"
                f"登录后 {web.session_hours} 小时内有效；用完可在看板上点“退出”。")
        return privately(inbound, ctx, [Outbound(text)])
