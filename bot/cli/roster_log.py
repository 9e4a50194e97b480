"""``dutybot roster log``: the duty log of a period (DUTY-3, CHECK-2), as text and xlsx.

``add_commands(roster_sub)`` adds ``log`` to the ``dutybot roster`` sub-commands. Bad
input raises :class:`~core.errors.InputError`, which ``bot.cli.main`` turns into a
Chinese line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import cli_calendar, cli_settings, parse_day
from core.clock import SystemClock
from reports.dutylog import build_log, render_zh, write_xlsx
from roster.lifecycle import LifecyclePolicy
from roster.rest import override_line, overrides_between
from roster.service import local_day

DEFAULT_DAYS = 7


def cmd_roster_log(args: argparse.Namespace) -> int:
    """dutybot roster log [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--xlsx FILE]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    calendar = cli_calendar(settings)
    today = local_day(now, settings.roster.patterns(), calendar)
    end = parse_day(args.to, "结束日期") if args.to else today
    start = parse_day(args.from_, "开始日期") if args.from_ else end - timedelta(days=DEFAULT_DAYS - 1)
    window = LifecyclePolicy.from_settings(settings.roster).checkin_window
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            log = build_log(session=session, start=start, end=end, now=now, checkin_window=window)
            text = render_zh(log)
            # Rest rules an admin let a change break, with the reason (roster.rest).
            overrides = [f"  {override_line(e)}" for e in overrides_between(session, start, end)]
            if overrides:
                text += "\n休息规定例外（管理员说明理由后放行）：\n" + "\n".join(overrides)
            if args.xlsx:
                write_xlsx(log, Path(args.xlsx))
    finally:
        engine.dispose()
    print(text)
    if args.xlsx:
        print(f"已写入 {args.xlsx}")
    return 0


def add_commands(roster_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot roster log`` to the ``roster`` sub-commands."""
    p = roster_sub.add_parser("log", help="值班日志：各班次值班人员、接班、读网、交班情况")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help=f"开始日期（默认结束日期前 {DEFAULT_DAYS - 1} 天）")
    p.add_argument("--to", metavar="YYYY-MM-DD", help="结束日期（默认今天，按值班日）")
    p.add_argument("--xlsx", metavar="FILE", help="同时写出 Excel 值班日志")
    p.set_defaults(func=cmd_roster_log)
