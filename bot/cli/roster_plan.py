"""CLI commands for drafting the roster: ``dutybot roster generate|draft|publish|leave``.

``add_commands(roster_sub)`` adds them to the ``roster`` group. ``generate`` stores a
draft (invisible to ``/duty``) and prints its fairness table and the shifts it could not
fill; ``draft`` shows it again; ``publish`` makes it visible and tells each person their
shifts. ``leave add|list|remove`` records the leave the generator respects. Bad input
raises :class:`~core.errors.InputError` (exit 2 with a Chinese line).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import date

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_calendar, cli_settings, pad, parse_day
from core.clock import SystemClock, fmt_date_zh, local
from core.errors import InputError
from core.profiles import Profile
from people.service import find_person
from roster import drafts, training
from roster import leave as roster_leave
from roster.drafts import Draft, span_zh
from roster.models import DUTY_ROLE_ZH
from roster.rest import RestRules
from roster.rotation import Unfilled
from roster.service import describe, label

MAX_LINES = 200
MAX_LOOKBACK = 366


def _period(args: argparse.Namespace) -> tuple[date, date]:
    start, end = parse_day(args.from_, "开始日期"), parse_day(args.to, "结束日期")
    if end < start:
        raise InputError("结束日期不能早于开始日期。")
    return start, end


# ---------------------------------------------------------------- rendering

def unfilled_zh(hole: Unfilled) -> str:
    """``11月3日（星期二）白班 08:30–17:30：缺值班员 1 人``."""
    start, end = local(hole.starts_at), local(hole.ends_at)
    next_day = "次日" if end.date() != start.date() else ""
    day = fmt_date_zh(hole.day).split("年", 1)[-1]
    return f"{day}{hole.shift_name} {start:%H:%M}–{next_day}{end:%H:%M}：缺{DUTY_ROLE_ZH[hole.role]} {hole.missing} 人"


def fairness_lines(draft: Draft) -> list[str]:
    """The fairness table: this period's counts, and the lookback's in brackets."""
    rows = [r for r in draft.fairness if r.roles or r.period.total]
    if not rows:
        return []
    carried = draft.lookback_days > 0

    def cell(now: int, before: int) -> str:
        return f"{now}（{before}）" if carried else str(now)

    lines = [f"公平性统计（本期；括号内为前 {draft.lookback_days} 天已发布的班次）：" if carried else "公平性统计（本期）：",
             "  " + pad("姓名", 12) + pad("角色", 18) + pad("总班数", 10) + pad("夜班", 10)
             + pad("休息日班", 10) + "节假日班"]
    for row in rows:
        p, c = row.period, row.carried
        roles = "、".join(DUTY_ROLE_ZH[r] for r in row.roles) or "—"
        lines.append("  " + pad(row.person.name, 12) + pad(roles, 18) + pad(cell(p.total, c.total), 10)
                     + pad(cell(p.nights, c.nights), 10) + pad(cell(p.restdays, c.restdays), 10)
                     + cell(p.holidays, c.holidays))
    return lines


def untrained_lines(draft: Draft, profile: Profile) -> list[str]:
    """Who the draft left out because their training is not recorded (STAFF-1)."""
    if not draft.untrained:
        return []
    who = "、".join(f"{p.name}（{p.trained_on.isoformat()} 起可排班）" if p.trained_on else p.name
                   for p in draft.untrained)
    return [f"以下值班员尚未登记培训，未安排其值班：{who}",
            f"{profile.basis(training.RULE)}。{training.HINT}，然后重新生成。"]


def unfilled_lines(holes: Iterable[Unfilled]) -> list[str]:
    holes = list(holes)
    if not holes:
        return ["所有班次均已排满。"]
    lines = [f"以下 {len(holes)} 处人手不足，未能排满（可增加人员、调整请假后重新生成，或发布后手工安排）："]
    lines += [f"  {unfilled_zh(h)}" for h in holes[:MAX_LINES]]
    if len(holes) > MAX_LINES:
        lines.append(f"  ……另有 {len(holes) - MAX_LINES} 处")
    return lines


# ---------------------------------------------------------------- commands

def cmd_roster_generate(args: argparse.Namespace) -> int:
    """dutybot roster generate --from YYYY-MM-DD --to YYYY-MM-DD [--unit 单位] [--seed N]"""
    settings = cli_settings(args)
    start, end = _period(args)
    profile = settings.profile()
    engine = open_database(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            draft = drafts.generate_draft(
                session=session, calendar=cli_calendar(settings), patterns=settings.roster.patterns(), start=start,
                end=end, now=SystemClock().now(), actor="cli", unit=args.unit, seed=args.seed,
                lookback_days=args.lookback, profile=profile, rest=RestRules.from_settings(settings.roster))
            session.commit()
            filled = sum(len(v.officers) + len(v.leaders) for v in draft.views)
            lines = [f"已生成 {span_zh(start, end)} 的值班草稿（尚未发布，/duty 暂不显示）："
                     f"{len(draft.views)} 个班次，共 {filled} 人次。"]
            if draft.replaced:
                lines.append(f"已替换原草稿（原有 {draft.replaced} 项安排）。")
            if draft.kept:
                lines.append(f"保留已发布且有人值班的 {len(draft.kept)} 个班次，未改动：")
                lines += [f"  {label(s)}" for s in draft.kept[:MAX_LINES]]
            if any(v.shift.provisional for v in draft.views):
                lines.append("注意：部分日期所在年度的节假日安排尚未发布，班次按暂定日历生成。")
            lines += untrained_lines(draft, profile)
            lines += fairness_lines(draft)
            lines += unfilled_lines(draft.unfilled)
    finally:
        engine.dispose()
    lines.append(f"查看草稿：dutybot roster draft --from {start} --to {end}；"
                 f"确认后发布：dutybot roster publish --from {start} --to {end}")
    print("\n".join(lines))
    return 0


def cmd_roster_draft(args: argparse.Namespace) -> int:
    """dutybot roster draft --from YYYY-MM-DD --to YYYY-MM-DD [--unit 单位]"""
    settings = cli_settings(args)
    start, end = _period(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            draft = drafts.load_draft(session=session, calendar=cli_calendar(settings),
                                      patterns=settings.roster.patterns(), start=start, end=end, unit=args.unit,
                                      lookback_days=args.lookback)
            if not draft.views:
                print(f"{span_zh(start, end)}没有未发布的值班草稿。"
                      f"生成：dutybot roster generate --from {start} --to {end}")
                return 0
            lines = [f"{span_zh(start, end)}的值班草稿（未发布，共 {len(draft.views)} 个班次）："]
            day = None
            for view in draft.views:
                if view.shift.day != day:
                    day = view.shift.day
                    lines.append(fmt_date_zh(day))
                lines.append(f"  {describe(view, phones=False)}")
            lines += fairness_lines(draft)
            lines += unfilled_lines(draft.unfilled)
    finally:
        engine.dispose()
    lines.append(f"发布：dutybot roster publish --from {start} --to {end}")
    print("\n".join(lines))
    return 0


def cmd_roster_publish(args: argparse.Namespace) -> int:
    """dutybot roster publish --from YYYY-MM-DD --to YYYY-MM-DD"""
    settings = cli_settings(args)
    start, end = _period(args)
    engine = open_database(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            done = drafts.publish_draft(session=session, calendar=cli_calendar(settings),
                                        patterns=settings.roster.patterns(), start=start, end=end,
                                        now=SystemClock().now(), actor="cli", profile=settings.profile())
            session.commit()
    finally:
        engine.dispose()
    lines = [f"已发布 {span_zh(start, end)} 的值班表：{len(done.shifts)} 个班次；"
             f"已通知 {len(done.notified)} 人（各自的班次汇总一条消息，机器人运行时发出）。"]
    if done.unbound:
        lines.append(f"以下 {len(done.unbound)} 人尚未绑定聊天账号，未能通知，请另行告知："
                     + "、".join(p.name for p in done.unbound))
    if done.unfilled:
        lines.append("注意：仍有班次缺人，请尽快安排：")
        lines += [f"  {unfilled_zh(h)}" for h in done.unfilled[:MAX_LINES]]
    print("\n".join(lines))
    return 0


def cmd_roster_leave_add(args: argparse.Namespace) -> int:
    """dutybot roster leave add NAME FROM TO [--reason 事由]"""
    settings = cli_settings(args)
    start, end = parse_day(args.start, "开始日期"), parse_day(args.end, "结束日期")
    engine = open_database(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            person = find_person(session=session, name=args.name)
            added = roster_leave.add_leave(session=session, person=person, start=start, end=end,
                                           reason=args.reason or "", now=SystemClock().now(), actor="cli")
            session.commit()
    finally:
        engine.dispose()
    days = (end - start).days + 1
    lines = [f"已登记 {person.name} 请假：{span_zh(start, end)}，共 {days} 天（编号 {added.leave.id}）。"
             "生成值班草稿时将不安排其值班。"]
    published = [s for s in added.clashes if s.published]
    drafted = [s for s in added.clashes if not s.published]
    if published:
        lines.append(f"注意：{person.name} 在请假期间已有以下已发布的值班，请安排换班或替班：")
        lines += [f"  {label(s)}" for s in published]
    if drafted:
        first, last = min(s.day for s in drafted), max(s.day for s in drafted)
        lines.append(f"草稿中 {person.name} 有 {len(drafted)} 个班次与请假冲突，请重新生成："
                     f"dutybot roster generate --from {first} --to {last}")
    print("\n".join(lines))
    return 0


def cmd_roster_leave_list(args: argparse.Namespace) -> int:
    """dutybot roster leave list [--from YYYY-MM-DD] [--to YYYY-MM-DD]"""
    settings = cli_settings(args)
    start = parse_day(args.from_, "开始日期") if args.from_ else local(SystemClock().now()).date()
    end = parse_day(args.to, "结束日期") if args.to else None
    if end is not None and end < start:
        raise InputError("结束日期不能早于开始日期。")
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            rows = roster_leave.list_leave(session=session, start=start, end=end)
    finally:
        engine.dispose()
    when = span_zh(start, end) if end else f"{start.year}年{start.month}月{start.day}日起"
    if not rows:
        print(f"{when}没有请假记录。")
        return 0
    lines = [f"{when}的请假（共 {len(rows)} 条）："]
    for leave, person in rows[:MAX_LINES]:
        days = (leave.end_day - leave.start_day).days + 1
        reason = f"｜{leave.reason}" if leave.reason else ""
        lines.append(f"  编号 {leave.id}｜{person.name}｜{person.unit or '—'}｜"
                     f"{span_zh(leave.start_day, leave.end_day)}（{days} 天）{reason}")
    if len(rows) > MAX_LINES:
        lines.append(f"  ……另有 {len(rows) - MAX_LINES} 条")
    print("\n".join(lines))
    return 0


def cmd_roster_leave_remove(args: argparse.Namespace) -> int:
    """dutybot roster leave remove ID"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            leave, person = roster_leave.remove_leave(session=session, leave_id=args.id, now=SystemClock().now(),
                                                      actor="cli")
            session.commit()
    finally:
        engine.dispose()
    print(f"已删除 {person.name} 的请假（编号 {args.id}：{span_zh(leave.start_day, leave.end_day)}）。"
          "如草稿已生成，可重新生成以安排其值班。")
    return 0


# ---------------------------------------------------------------- parser

def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为整数，收到 {text!r}") from None


def _lookback(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为 0–{MAX_LOOKBACK} 的整数，收到 {text!r}") from None
    if not 0 <= value <= MAX_LOOKBACK:
        raise argparse.ArgumentTypeError(f"应为 0–{MAX_LOOKBACK} 的整数，收到 {value}")
    return value


def _leave_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"请假编号应为正整数，收到 {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"请假编号应为正整数，收到 {value}")
    return value


def _period_args(p: argparse.ArgumentParser, *, lookback: bool = False) -> None:
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", required=True, help="开始日期")
    p.add_argument("--to", metavar="YYYY-MM-DD", required=True, help="结束日期（含）")
    if lookback:
        p.add_argument("--lookback", type=_lookback, default=drafts.LOOKBACK_DAYS, metavar="天数",
                       help=f"公平性计入开始日期前多少天已发布的班次（默认 {drafts.LOOKBACK_DAYS}；0 为不计）")


def add_commands(roster_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``generate``, ``draft``, ``publish`` and ``leave …`` to ``dutybot roster``."""
    p = roster_sub.add_parser("generate", help="按班次模式和公平轮换生成值班草稿（不发布；再次生成会替换草稿）")
    _period_args(p, lookback=True)
    p.add_argument("--unit", metavar="单位", help="只从该单位的人员中排班")
    p.add_argument("--seed", type=_seed, metavar="N", help="打乱同等条件下的先后顺序（同一 N 结果相同；默认按姓名）")
    p.set_defaults(func=cmd_roster_generate)

    p = roster_sub.add_parser("draft", help="查看未发布的值班草稿、公平性统计和空缺")
    _period_args(p, lookback=True)
    p.add_argument("--unit", metavar="单位", help="公平性统计只列该单位的人员")
    p.set_defaults(func=cmd_roster_draft)

    p = roster_sub.add_parser("publish", help="发布值班草稿（/duty 可见），并逐人通知其班次")
    _period_args(p)
    p.set_defaults(func=cmd_roster_publish)

    leave = roster_sub.add_parser("leave", help="请假登记：生成值班草稿时不安排请假人员")
    lsub = leave.add_subparsers(dest="leave_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = lsub.add_parser("add", help="登记请假（含首尾两天）")
    p.add_argument("name", metavar="姓名")
    p.add_argument("start", metavar="开始日期", help="YYYY-MM-DD")
    p.add_argument("end", metavar="结束日期", help="YYYY-MM-DD")
    p.add_argument("--reason", metavar="事由", help=f"请假事由（最多 {roster_leave.MAX_REASON} 字）")
    p.set_defaults(func=cmd_roster_leave_add)
    p = lsub.add_parser("list", help="查看请假（默认今天及以后）")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="开始日期（默认今天）")
    p.add_argument("--to", metavar="YYYY-MM-DD", help="结束日期")
    p.set_defaults(func=cmd_roster_leave_list)
    p = lsub.add_parser("remove", help="删除一条请假记录")
    p.add_argument("id", type=_leave_id, metavar="编号")
    p.set_defaults(func=cmd_roster_leave_remove)
