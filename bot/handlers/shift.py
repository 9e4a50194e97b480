"""/checkin (接班) and /handover (交班) (DUTY-1, CHECK-2).

The duty log these fill is shown by ``/duty log`` (:mod:`bot.handlers.duty`). A handover
well before the shift ends asks for confirmation first (``roster.early_handover``)."""

from __future__ import annotations

from datetime import timedelta

from bot.dispatcher import Context, Handler
from core.clock import fmt_short_zh, local
from core.messages import Button, Inbound, Outbound, duration_zh
from reports.handover import handover_summary
from roster import early_handover, lifecycle
from roster.service import label, views


def _policy(ctx: Context) -> lifecycle.LifecyclePolicy:
    return lifecycle.LifecyclePolicy.from_settings(ctx.settings.roster)


class CheckinHandler(Handler):
    command = "checkin"
    aliases = ("接班",)
    usage = "/checkin（值班员到岗后发送；班次开始前规定时间内即可接班）"
    summary = "值班员到岗接班"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        assert ctx.person is not None
        policy = _policy(ctx)
        done = lifecycle.check_in(session=ctx.session, person=ctx.person, now=ctx.now, policy=policy,
                                  actor=ctx.actor)
        assert done.assignment.checked_in_at is not None
        when = fmt_short_zh(done.assignment.checked_in_at)
        late = (f"（迟到{duration_zh(done.late_by)}，已记入值班日志）" if done.late_by is not None
                else "（按时）")
        if done.already:
            return [Outbound(f"您已于 {when} 接班{late}：{label(done.shift)}。交班时发送 /handover 备注。")]
        view = views(ctx.session, [done.shift])[0]
        lines = [f"已接班{late}：{label(done.shift)}",
                 lifecycle.shift_lines(view).split("\n", 1)[1],
                 "值班期间请按提示读网；交班时发送 /handover 备注（交班）。"]
        if done.leaders_told:
            lines.append(f"已告知带班领导：{'、'.join(p.name for p in done.leaders_told)}。")
        return [Outbound("\n".join(lines))]


class HandoverHandler(Handler):
    command = "handover"
    aliases = ("交班",)
    usage = "/handover 备注（如：首页图片已恢复，INC-… 待网信办回复）｜ /handover 确认（提前交班时确认）"
    summary = "交班：把本班情况和待办交给下一班"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        assert ctx.person is not None
        word, _, rest = ctx.args.strip().partition(" ")
        confirmed = word.lower() in early_handover.CONFIRM_WORDS
        note = rest.strip() if confirmed else ctx.args
        shift = lifecycle.shift_to_hand_over(session=ctx.session, person=ctx.person, now=ctx.now)
        early = timedelta(minutes=ctx.settings.roster.handover_early_minutes)
        left = early_handover.time_left(shift, ctx.now, early)
        if not confirmed and left is not None and not early_handover.handed_over(ctx.session, shift):
            early_handover.ask(ctx.session, shift=shift, person=ctx.person, note=note, left=left, now=ctx.now,
                               actor=ctx.actor)
            kept = "（备注已记下，确认时无需重写）" if note.strip() else ""
            return [Outbound(f"距交班还有{duration_zh(left)}（{label(shift)}，{local(shift.ends_at):%H:%M} 结束）。"
                             f"确认提前交班请发送 /handover 确认{kept}",
                             buttons=(Button("确认提前交班", "/handover 确认"),))]
        if confirmed and not note:
            note = early_handover.asked_note(ctx.session, shift=shift, person=ctx.person, now=ctx.now)
        done = lifecycle.hand_over(session=ctx.session, person=ctx.person, note=note, now=ctx.now,
                                   profile=ctx.profile, actor=ctx.actor, summarize=handover_summary)
        head = (f"已更新交班记录（替换 {fmt_short_zh(done.replaced_at)} 的上一份，"
                f"{'备注已更新' if note.strip() else '沿用原备注'}）" if done.replaced_at else "已交班")
        lines = [f"{head}：{label(done.shift)}"]
        if done.told_officers:
            lines.append(f"已发送给下一班值班员：{'、'.join(p.name for p in done.told_officers)}。")
        elif done.next_view is None:
            lines.append("下一班尚未排班，请联系带班领导安排。")
        else:
            lines.append("下一班没有其他值班员可接收，请联系带班领导。")
        if done.told_leaders:
            lines.append(f"已抄送带班领导：{'、'.join(p.name for p in done.told_leaders)}。")
        lines += [done.handover.summary, f"备注：{done.handover.note or '无'}"]
        return [Outbound("\n".join(lines))]
