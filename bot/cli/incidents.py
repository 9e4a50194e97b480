"""CLI commands for incidents: the situation report, the register and the statistics.

``dutybot incident report INC`` prints or writes (``--docx``, ``--md``) the situation
report; it exits 1 with a warning on stderr when evidence failed its integrity check,
after writing the report all the same. ``dutybot incident register --xlsx FILE`` writes
the register (台账) of a period, ``dutybot incident stats`` prints its statistics. Bad
input, such as an unknown incident number, raises :class:`~core.errors.InputError`
(Chinese line on stderr, exit 2, via ``bot.cli.main``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_settings, parse_day
from bot.refs import resolve_incident
from core.clock import SystemClock, local
from core.errors import InputError, NotFound
from incidents.report import build_report, render_markdown, write_docx, write_markdown
from incidents.stats import compute_incident_stats, render_zh, write_register_xlsx


def _period(args: argparse.Namespace, today: date) -> tuple[date, date]:
    """``--from``/``--to``; by default the 1st of this month to today (Asia/Shanghai)."""
    end = parse_day(args.to, "结束日期") if args.to else today
    start = parse_day(args.from_, "开始日期") if args.from_ else end.replace(day=1)
    return start, end


def cmd_incident_report(args: argparse.Namespace) -> int:
    """dutybot incident report INC [--docx FILE] [--md FILE]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            try:   # 3 is today's INC-…-003, as in the chat (bot.refs)
                incident, note = resolve_incident(session, args.number, now)
            except NotFound as exc:
                raise InputError(exc.message) from None
            number = incident.number
            if note:
                print(f"dutybot: {note}", file=sys.stderr)
            report = build_report(session=session, incident=incident, now=now,
                                  evidence_dir=settings.resolve(settings.incidents.evidence_dir))
    finally:
        engine.dispose()
    if args.docx:
        write_docx(report, Path(args.docx))
        print(f"已写入 Word 报告：{args.docx}")
    if args.md:
        write_markdown(report, Path(args.md))
        print(f"已写入 Markdown 报告：{args.md}")
    if not (args.docx or args.md):
        print(render_markdown(report))
    if not report.integrity_ok:
        problems = "\n".join(f"  - {p}" for p in report.integrity_problems)
        print(f"dutybot: 警告：{number} 有 {len(report.integrity_problems)} 份证据完整性校验未通过，"
              f"报告已照常生成并注明，请核查证据文件：\n{problems}", file=sys.stderr)
        return 1
    return 0


def cmd_incident_register(args: argparse.Namespace) -> int:
    """dutybot incident register [--from YYYY-MM-DD] [--to YYYY-MM-DD] --xlsx FILE"""
    settings = cli_settings(args)
    now = SystemClock().now()
    start, end = _period(args, local(now).date())
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            stats = write_register_xlsx(session=session, start=start, end=end,
                                        path=Path(args.xlsx), now=now)
    finally:
        engine.dispose()
    print(f"已写入事件台账 {args.xlsx}：{start.isoformat()} 至 {end.isoformat()} 报告的事件 "
          f"{stats.total.count} 起。")
    return 0


def cmd_incident_stats(args: argparse.Namespace) -> int:
    """dutybot incident stats [--from YYYY-MM-DD] [--to YYYY-MM-DD]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    start, end = _period(args, local(now).date())
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            stats = compute_incident_stats(session=session, start=start, end=end, now=now)
    finally:
        engine.dispose()
    print(render_zh(stats))
    return 0


def _period_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="开始日期（默认本月1日）")
    p.add_argument("--to", metavar="YYYY-MM-DD", help="结束日期（默认今天）")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot incident …`` to the dutybot parser."""
    incident = sub.add_parser("incident", help="事件处置：情况报告、台账、统计")
    isub = incident.add_subparsers(dest="incident_command", metavar="操作", parser_class=ChineseParser,
                                   required=True)
    p = isub.add_parser("report", help="生成事件情况报告（不指定文件时输出 Markdown）")
    p.add_argument("number", metavar="INC", help="事件编号，如 INC-20261123-001（今天的可只写序号，如 3）")
    p.add_argument("--docx", metavar="FILE", help="写出 Word 文档")
    p.add_argument("--md", metavar="FILE", help="写出 Markdown 文件")
    p.set_defaults(func=cmd_incident_report)
    p = isub.add_parser("register", help="导出事件台账（Excel）")
    _period_args(p)
    p.add_argument("--xlsx", metavar="FILE", required=True, help="写出的 Excel 文件")
    p.set_defaults(func=cmd_incident_register)
    p = isub.add_parser("stats", help="统计事件数、确认与处置用时、超期步骤")
    _period_args(p)
    p.set_defaults(func=cmd_incident_stats)
