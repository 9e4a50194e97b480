"""/checkin (接班) and /handover (交班) (DUTY-1, CHECK-2).

The duty log these fill is shown by ``/duty log`` (:mod:`bot.handlers.duty`)."""

from __future__ import annotations

from bot.dispatcher import Context, Handler
from core.clock import fmt_short_zh
from core.messages import Inbound, Outbound, duration_zh
from reports.handover import handover_summary
from roster import lifecycle
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
    usage = "/handover 备注（如：首页图片已恢复，INC-… 待网信办回复）"
    summary = "交班：把本班情况和待办交给下一班"

    async def handle(self, inbound: Inbound, ctx: Context) -> list[Outbound]:
        assert ctx.person is not None
        done = lifecycle.hand_over(session=ctx.session, person=ctx.person, note=ctx.args, now=ctx.now,
                                   profile=ctx.profile, actor=ctx.actor, summarize=handover_summary)
        head = (f"已更新交班记录（替换 {fmt_short_zh(done.replaced_at)} 的上一份，"
                f"{'备注已更新' if ctx.args.strip() else '沿用原备注'}）" if done.replaced_at else "已交班")
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
