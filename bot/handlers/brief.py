"""/brief: the daily briefing (早报) now, or the weekly summary (周报)."""

from __future__ import annotations

from bot.dispatcher import Context, Handler
from briefing.service import build_daily, build_weekly
from core.errors import InputError
from core.messages import Inbound, Outbound
from people.models import Role

WEEK_WORDS = ("week", "weekly", "周报", "本周", "周")
TODAY_WORDS = ("", "today", "daily", "早报", "今日", "今天")


class BriefHandler(Handler):
    command = "brief"
    aliases = ("早报", "周报")
    roles = frozenset({Role.officer, Role.leader, Role.principal, Role.admin})
    usage = "/brief（今日早报）或 /brief week（上周周报）"
    summary = "查看今日早报：超期和到期留言、未送达消息等"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        arg = ctx.args.strip().lower()
        if inbound.text.strip().startswith("周报") and not arg:
            arg = "week"   # the 周报 alias
        if arg not in WEEK_WORDS + TODAY_WORDS:
            raise InputError(f"无法识别的参数“{ctx.args.strip()}”。")
        if arg in WEEK_WORDS:
            built = build_weekly(session=ctx.session, now=ctx.now, calendar=ctx.calendar,
                                 settings=ctx.settings.briefing)
        else:
            built = build_daily(session=ctx.session, now=ctx.now, calendar=ctx.calendar,
                                settings=ctx.settings.briefing, profile=ctx.profile)
        return [Outbound(built.text())]
