"""CLI commands for replies to the public: import, stats, list.

``dutybot replies import FILE`` loads the message platform's CSV/xlsx export (all or
nothing), ``dutybot replies stats`` reports a period, ``dutybot replies list`` shows what
is open. Bad input raises :class:`~core.errors.InputError`, which ``bot.cli.main`` turns
into Chinese lines on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlmodel import Session, col, select

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_calendar, cli_settings, parse_day
from core.clock import SystemClock, local
from core.tables import read_table
from people.models import Person
from replies.flows import deadline_zh
from replies.importer import COLUMNS_HINT, REQUIRED, import_items
from replies.models import CATEGORY_ZH, ReplyCategory
from replies.service import list_items
from replies.stats import compute_stats, render_zh, write_xlsx

LIST_LIMIT = 500


def cmd_replies_import(args: argparse.Namespace) -> int:
    """dutybot replies import FILE"""
    settings = cli_settings(args)
    rows = read_table(Path(args.file), required=REQUIRED, columns_hint=COLUMNS_HINT)
    engine = open_database(settings)
    now = SystemClock().now()
    try:
        with Session(engine, expire_on_commit=False) as session:
            calendar = cli_calendar(settings)
            items = import_items(session=session, rows=rows, calendar=calendar,
                                 profile=settings.profile(), policy=settings.reply_policy(calendar),
                                 now=now, actor="cli")
            session.commit()
    finally:
        engine.dispose()
    open_items = [i for i in items if i.is_open]
    overdue = sum(1 for i in open_items if i.due_at <= now)
    late = sum(1 for i in items if i.on_time() is False)
    print(f"已导入 {len(items)} 条留言：已答复 {len(items) - len(open_items)} 条（其中超期答复 {late} 条），"
          f"待答复 {len(open_items)} 条（其中已超期 {overdue} 条）。")
    if overdue:
        print("已超期的留言将立即提醒负责人并按规定升级（工作时间以外顺延到下一个工作时段开始）；"
              "查看：dutybot replies list --overdue")
    elif open_items:
        print("待答复的留言已安排到期提醒；查看：dutybot replies list")
    return 0


def cmd_replies_stats(args: argparse.Namespace) -> int:
    """dutybot replies stats [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--xlsx FILE]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    today = local(now).date()
    end = parse_day(args.to, "结束日期") if args.to else today
    start = parse_day(args.from_, "开始日期") if args.from_ else end.replace(day=1)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            stats = compute_stats(session=session, start=start, end=end, now=now)
    finally:
        engine.dispose()
    print(render_zh(stats))
    if args.xlsx:
        write_xlsx(stats, Path(args.xlsx))
        print(f"已写入 {args.xlsx}")
    return 0


def cmd_replies_list(args: argparse.Namespace) -> int:
    """dutybot replies list [--overdue]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            items = list_items(session=session, which="overdue" if args.overdue else "open",
                               now=now, limit=LIST_LIMIT + 1)
            ids = {i.assignee_id for i in items if i.assignee_id is not None}
            names = {p.id: p.name for p in session.exec(
                select(Person).where(col(Person.id).in_(ids)))} if ids else {}
            lines = [
                "\t".join((i.number, CATEGORY_ZH[ReplyCategory(i.category)],
                           "截止 " + deadline_zh(i) + ("（已超期）" if i.due_at <= now else ""),
                           names.get(i.assignee_id, "未指定") if i.assignee_id else "未指定",
                           i.summary.replace("\n", " ")[:40]))
                for i in items[:LIST_LIMIT]]
    finally:
        engine.dispose()
    if not lines:
        print("没有已超期的留言。" if args.overdue else "没有待答复的留言。")
        return 0
    print("\n".join(lines))
    more = f"（仅显示最早到期的 {LIST_LIMIT} 条）" if len(items) > LIST_LIMIT else ""
    print(f"共 {len(lines)} 条{'已超期' if args.overdue else '待答复'}的留言{more}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot replies …`` to the dutybot parser."""
    replies = sub.add_parser("replies", help="互动回应（网民留言）：导入、统计、列表")
    rsub = replies.add_subparsers(dest="replies_command", metavar="操作", parser_class=ChineseParser,
                                  required=True)
    p = rsub.add_parser("import", help=f"从留言平台导出的 CSV/xlsx 导入（表头：{COLUMNS_HINT}）")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_replies_import)
    p = rsub.add_parser("stats", help="统计按时率、答复用时、超期情况和抽查关注项")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="开始日期（默认本月1日）")
    p.add_argument("--to", metavar="YYYY-MM-DD", help="结束日期（默认今天）")
    p.add_argument("--xlsx", metavar="FILE", help="同时写出 Excel 报表")
    p.set_defaults(func=cmd_replies_stats)
    p = rsub.add_parser("list", help="待答复的留言（按截止时间）")
    p.add_argument("--overdue", action="store_true", help="只看已超期的")
    p.set_defaults(func=cmd_replies_list)
