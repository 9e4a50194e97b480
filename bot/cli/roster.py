"""CLI commands for the duty roster: ``dutybot roster import|export|ical``.

``register(sub)`` adds the ``roster`` group and returns its sub-parsers, so other roster
commands are added to the same group by their own ``add_commands(roster_sub)`` functions
(:mod:`bot.cli.roster_plan`, :mod:`bot.cli.roster_log`).
Bad input raises :class:`~core.errors.InputError`, which ``bot.cli.main`` turns into
Chinese lines on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_calendar, cli_settings, parse_day
from core.clock import SystemClock
from core.errors import InputError
from core.tables import read_table
from people.models import Person
from roster import training
from roster.export import export_xlsx, person_ical, write_atomic
from roster.importer import COLUMNS_HINT, REQUIRED, check_rows, import_roster, span_zh
from roster.service import local_day

ICAL_DAYS = 60


def cmd_roster_import(args: argparse.Namespace) -> int:
    """dutybot roster import FILE [--check]"""
    settings = cli_settings(args)
    path = Path(args.file)
    rows = read_table(path, required=REQUIRED, columns_hint=COLUMNS_HINT)
    calendar, patterns, profile = cli_calendar(settings), settings.roster.patterns(), settings.profile()
    engine = open_database(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            if args.check:
                checked = check_rows(session=session, rows=rows, calendar=calendar, patterns=patterns)
                days = [r.day for r in checked]
                print(f"检查通过：{span_zh(min(days), max(days))}，{len(checked)} 个班次。未导入（去掉 --check 即导入）。")
                if training.required(profile):
                    late = [f"{r.day.isoformat()} {r.shift_name}：{p.name}" for r in checked for p in r.officers
                            if not training.trained_for(p, r.day)]
                    if late:
                        print("注意：以下值班员尚未登记培训：" + "；".join(late[:training.MAX_LINES]))
                        print(f"{profile.basis(training.RULE)}。{training.HINT}")
                return 0
            now = SystemClock().now()
            result = import_roster(session=session, rows=rows, calendar=calendar, patterns=patterns,
                                   now=now, actor="cli", source=path.name)
            untrained = training.untrained_on(session, result.shifts) if training.required(profile) else []
            training.record(session, untrained, now=now, actor="cli", how=f"导入值班表 {path.name}")
            session.commit()
    finally:
        engine.dispose()
    print("\n".join([result.summary_zh(), *training.warning(profile, untrained)]))
    return 0


def cmd_roster_export(args: argparse.Namespace) -> int:
    """dutybot roster export --from YYYY-MM-DD --to YYYY-MM-DD --xlsx FILE"""
    settings = cli_settings(args)
    start, end = parse_day(args.from_, "开始日期"), parse_day(args.to, "结束日期")
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            count = export_xlsx(session=session, start=start, end=end, path=Path(args.xlsx))
    finally:
        engine.dispose()
    print(f"已写入 {args.xlsx}：{span_zh(start, end)}，{count} 个班次。")
    return 0


def cmd_roster_ical(args: argparse.Namespace) -> int:
    """dutybot roster ical NAME [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--out FILE]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    if args.from_:
        start = parse_day(args.from_, "开始日期")
    else:
        start = local_day(now, settings.roster.patterns(), cli_calendar(settings))
    end = parse_day(args.to, "结束日期") if args.to else start + timedelta(days=ICAL_DAYS - 1)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            person = session.exec(select(Person).where(Person.name == args.name.strip())).first()
            if person is None:
                raise InputError(f"没有找到人员“{args.name}”（可用 dutybot people list 查看）")
            data, count = person_ical(session=session, person=person, start=start, end=end, now=now)
    finally:
        engine.dispose()
    if not args.out:
        sys.stdout.write(data.decode("utf-8"))
        return 0
    write_atomic(Path(args.out), lambda tmp: tmp.write_bytes(data))
    print(f"已写入 {args.out}：{args.name} {span_zh(start, end)} 共 {count} 个值班。")
    return 0


def _add_import(rsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = rsub.add_parser("import", help="从单位的值班表（CSV/xlsx；表头：日期、班次、带班领导、值班员）导入排班，全部无误才导入")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--check", action="store_true", help="只检查，不导入")
    p.set_defaults(func=cmd_roster_import)


def _add_export(rsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = rsub.add_parser("export", help="导出可打印的值班表（xlsx，可再导入）")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", required=True, help="开始日期")
    p.add_argument("--to", metavar="YYYY-MM-DD", required=True, help="结束日期")
    p.add_argument("--xlsx", metavar="FILE", required=True, help="写出的 Excel 文件")
    p.set_defaults(func=cmd_roster_export)


def _add_ical(rsub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = rsub.add_parser("ical", help="导出某人的值班日历（iCalendar .ics，可导入手机日历）")
    p.add_argument("name", metavar="姓名")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="开始日期（默认今天）")
    p.add_argument("--to", metavar="YYYY-MM-DD", help=f"结束日期（默认开始日期起 {ICAL_DAYS} 天）")
    p.add_argument("--out", metavar="FILE", help="写出的 .ics 文件（默认输出到屏幕）")
    p.set_defaults(func=cmd_roster_ical)


def register(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """Add ``dutybot roster …`` to the dutybot parser; returns the group's sub-parsers."""
    roster = sub.add_parser("roster", help="值班排班：导入、导出、日历")
    rsub = roster.add_subparsers(dest="roster_command", metavar="操作", parser_class=ChineseParser, required=True)
    _add_import(rsub)
    _add_export(rsub)
    _add_ical(rsub)
    return rsub
