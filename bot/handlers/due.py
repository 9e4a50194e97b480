"""/due: the legal deadline calculator in chat."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.dispatcher import Context, Handler
from core.clock import SHANGHAI, fmt_date_zh, fmt_instant_zh, local
from core.errors import InputError
from core.messages import Inbound, Outbound

_AMOUNT = re.compile(r"^(\d{1,4})\s*(个)?\s*(工作日|自然日|天|日|个月|月|周)$")
_UNIT = {"工作日": "workdays", "自然日": "days", "天": "days", "日": "days", "个月": "months",
         "月": "months", "周": "weeks"}
_UNIT_ZH = {"workdays": "个工作日", "days": "日", "months": "个月", "weeks": "周"}


def parse_start(text: str, now: datetime) -> datetime:
    """``今天``/``现在``, ``2026-10-08``, ``2026-10-08T09:30``, ``2026-10-08 09:30``, ``10-08``.

    Raises:
        InputError: not a date this understands.
    """
    text = text.strip()
    if text in ("今天", "现在", "now", "today"):
        return now
    if text in ("明天",):
        return now + timedelta(days=1)
    if re.fullmatch(r"\d{1,2}-\d{1,2}", text):
        text = f"{local(now).year}-{int(text.split('-')[0]):02d}-{int(text.split('-')[1]):02d}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"无法识别的日期“{text}”。") from None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


class DueHandler(Handler):
    command = "due"
    aliases = ("期限",)
    usage = "/due 起算日期 期限，如：/due 2026-09-30 3个工作日、/due 今天 15工作日、/due 2026-11-30 3个月"
    summary = "按工作日、自然日或月计算办理期限"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        parts = ctx.args.split()
        if len(parts) < 2:
            raise InputError("请给出起算日期和期限。")
        m = _AMOUNT.match("".join(parts[-1:]))
        start_text = " ".join(parts[:-1])
        if not m and len(parts) >= 3:   # "3 个工作日" typed with spaces
            m = _AMOUNT.match("".join(parts[-2:]))
            start_text = " ".join(parts[:-2])
        if not m:
            raise InputError(f"无法识别的期限“{parts[-1]}”。")
        amount, unit = int(m.group(1)), _UNIT[m.group(3)]
        start = parse_start(start_text.replace(" ", "T", 1) if re.fullmatch(
            r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}", start_text) else start_text, ctx.now)
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
