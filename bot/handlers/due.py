"""/due: the legal deadline calculator in chat."""

from __future__ import annotations

from datetime import datetime

from bot.dispatcher import Context, Handler
from core import words_zh
from core.clock import check_year_range, fmt_date_zh, fmt_instant_zh, local
from core.errors import InputError
from core.messages import Inbound, Outbound

_UNIT_ZH = {"workdays": "个工作日", "days": "日", "months": "个月", "weeks": "周"}


def parse_start(text: str, now: datetime) -> datetime:
    """The start as typed (``现在``, ``今天``, ``下周一``, ``12-03``, ``2026-10-08 09:30``);
    the one parser the CLI uses too (:func:`core.words_zh.parse_start`), within the years
    the bot handles (:func:`core.clock.check_year_range`)."""
    return check_year_range(words_zh.parse_start(text, now), "起算日期")


class DueHandler(Handler):
    command = "due"
    aliases = ("期限",)
    usage = ("/due 起算日期 期限，如：/due 2026-09-30 3个工作日、/due 今天 十五个工作日、/due 下周一 两个月"
             "（日期可写 今天、明天、下周一、本周五、12-03、12月3日、2026-12-03）")
    summary = "按工作日、自然日或月计算办理期限"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        parts = ctx.args.split()
        if len(parts) < 2:
            raise InputError("请给出起算日期和期限。")
        found = words_zh.parse_duration(parts[-1])
        start_text = " ".join(parts[:-1])
        if found is None and len(parts) >= 3:   # "3 个工作日" typed with spaces
            found = words_zh.parse_duration("".join(parts[-2:]))
            start_text = " ".join(parts[:-2])
        if found is None:
            raise InputError(f"无法识别的期限“{parts[-1]}”（如 3个工作日、十五个工作日、两个月、一百二十天）。")
        amount, unit = found
        if amount < 1:
            raise InputError("期限应至少为 1。")
        start = parse_start(start_text, ctx.now)
        deadline = ctx.calendar.add(start, amount, unit)
        shown = fmt_instant_zh(start) if ":" in start_text or start_text in ("现在", "now") \
            else fmt_date_zh(local(start).date())
        lines = [f"起算：{shown}（起算当日不计入）",
                 f"期限：{amount}{_UNIT_ZH[unit]}",
                 deadline.zh()]
        if deadline.provisional:
            lines.append("提示：期限跨入尚未发布节假日安排的年份，已按周末和固定日期节假日暂定计算，"
                         "请在国务院通知发布后复核。")
        return [Outbound("\n".join(lines))]
