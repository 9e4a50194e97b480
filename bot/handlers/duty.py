"""/duty and /myduty: who is on duty, from the published roster; ``/duty log``, the duty log
(DUTY-1, CHECK-2)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.dispatcher import Context, Handler
from core import words_zh
from core.clock import WEEKDAYS_ZH, check_year_range, fmt_date_zh, local
from core.messages import Inbound, Outbound
from reports import dutylog
from roster import lifecycle
from roster import service as roster

MYDUTY_DAYS = 30
LOG_WEEK_DAYS = 7


def parse_day(text: str, today: date) -> date:
    """A day as typed in chat (今天/明天/下周一/12-03: :func:`core.words_zh.parse_day`), within
    the years the bot handles; swap, assign and admin import it here.

    Raises:
        InputError: not a day, or a year outside 2000–2100.
    """
    return check_year_range(words_zh.parse_day(text, today))


def day_lines(ctx: Context, day: date) -> list[str]:
    shifts = roster.shifts_between(session=ctx.session, start=day, end=day)
    head = f"{fmt_date_zh(day)}" + ("（工作日）" if ctx.calendar.is_workday(day) else "（休息日）")
    if any(s.provisional for s in shifts):
        head += "（节假日安排暂定）"
    if not shifts:
        return [head, "  尚未排班。"]
    return [head] + [f"  {roster.describe(v)}" for v in roster.views(ctx.session, shifts)]


def duty_log_reply(ctx: Context, arg: str, today: date) -> str:
    """``/duty log [今天|昨天|12-03|week]``: the duty log, compact for a phone."""
    arg = arg.strip()
    if arg.lower() in ("week", "本周", "这周", "7天", "最近7天"):
        start, end, compact = today - timedelta(days=LOG_WEEK_DAYS - 1), today, True
    else:
        start = end = parse_day(arg, today) if arg else today
        compact = False
    window = lifecycle.LifecyclePolicy.from_settings(ctx.settings.roster).checkin_window
    log = dutylog.build_log(session=ctx.session, start=start, end=end, now=ctx.now,
                            checkin_window=window)
    return dutylog.render_zh(log, compact=compact)


class DutyHandler(Handler):
    command = "duty"
    aliases = ("值班",)
    usage = ("/duty ｜ /duty 明天 ｜ /duty 下周一 ｜ /duty 12-03 ｜ /duty week（本周）｜ /duty next（下周）｜ "
             "/duty log [昨天|12-03|week]（值班日志）")
    summary = "查看值班安排（当前、某天、本周）"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        arg = ctx.args.strip()
        patterns = ctx.settings.roster.patterns()
        today = roster.local_day(ctx.now, patterns, ctx.calendar)
        if not arg or arg in ("now", "现在", "当前"):
            return [Outbound(self._now(ctx, today))]
        word, _, rest = arg.partition(" ")
        if word.lower() in ("log", "日志"):
            return [Outbound(duty_log_reply(ctx, rest, today))]
        if arg.lower() in ("week", "本周", "这周", "next", "下周"):
            start = today - timedelta(days=today.weekday())
            if arg.lower() in ("next", "下周"):
                start += timedelta(days=7)
            lines = [f"{'下周' if arg.lower() in ('next', '下周') else '本周'}值班（{start.month}月{start.day}日起）："]
            for offset in range(7):
                lines += day_lines(ctx, start + timedelta(days=offset))
            return [Outbound("\n".join(lines))]
        return [Outbound("\n".join(day_lines(ctx, parse_day(arg, today))))]

    def _now(self, ctx: Context, today: date) -> str:
        current = roster.on_duty(session=ctx.session, at=ctx.now)
        when = local(ctx.now)
        lines = [f"现在（{when.month}月{when.day}日 {WEEKDAYS_ZH[when.weekday()]} {when:%H:%M}）值班："]
        if not current:
            lines.append("  当前时段尚未排班。请管理员导入或生成值班表。")
        lines += [f"  {roster.describe(v)}" for v in current]
        upcoming = [s for s in roster.shifts_between(session=ctx.session, start=today, end=today + timedelta(days=1))
                    if s.starts_at > ctx.now][:1]
        if upcoming:
            lines.append("下一班：")
            lines += [f"  {fmt_date_zh(v.shift.day)} {roster.describe(v)}" for v in roster.views(ctx.session, upcoming)]
        return "\n".join(lines)


class MyDutyHandler(Handler):
    command = "myduty"
    aliases = ("我的值班",)
    usage = "/myduty"
    summary = f"我接下来 {MYDUTY_DAYS} 天的值班"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        assert ctx.person is not None
        end = ctx.now + timedelta(days=MYDUTY_DAYS)
        shifts = roster.shifts_of(session=ctx.session, person=ctx.person, start=ctx.now, end=end)
        if not shifts:
            return [Outbound(f"您接下来 {MYDUTY_DAYS} 天没有值班安排。")]
        lines = [f"您接下来 {MYDUTY_DAYS} 天的值班（共 {len(shifts)} 班）："]
        for view in roster.views(ctx.session, shifts):
            role = "带班领导" if any(p.id == ctx.person.id for p in view.leaders) else "值班员"
            running = "（进行中）" if view.shift.starts_at <= ctx.now < view.shift.ends_at else ""
            lines.append(f"  {fmt_date_zh(view.shift.day)}｜{role}{running}｜{roster.describe(view, phones=False)}")
        return [Outbound("\n".join(lines))]
