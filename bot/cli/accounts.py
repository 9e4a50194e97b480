"""CLI commands for the register of 政务新媒体 accounts (issue 18): import, export, list,
add, filed, status.

``dutybot accounts import FILE`` loads the office's register (.xlsx or .csv; all or
nothing, ``第N行：…`` errors; importing the same file again changes nothing),
``dutybot accounts export FILE`` writes it back in the same columns, ``add`` registers or
updates one account, ``filed`` records its 备案 and ``status`` shows where each account
stands (``--json`` for scripts). The posts commands are added by
:mod:`bot.cli.account_posts`. Bad input raises :class:`~core.errors.InputError`, which
``bot.cli.main`` turns into Chinese lines on stderr and exit code 2; an unknown account
exits 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sqlmodel import Session

from accounts.fields import COLUMNS_HINT, PLATFORMS_ZH, parse_fields
from accounts.io import export_accounts, import_accounts, read_rows
from accounts.register import (
    Outcome,
    account_line,
    add_account,
    find_account,
    list_accounts,
    set_filing,
    site_of,
)
from accounts.status import status_dicts, status_text
from bot.app import open_database
from bot.cli.account_posts import add_commands as add_post_commands
from bot.cli.common import ChineseParser, cli_settings, parse_day
from core.clock import SystemClock, local


def cmd_accounts_import(args: argparse.Namespace) -> int:
    """dutybot accounts import FILE"""
    settings = cli_settings(args)
    rows = read_rows(Path(args.file))
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            result = import_accounts(session=session, rows=rows, now=SystemClock().now(), actor="cli")
            session.commit()
    finally:
        engine.dispose()
    print(result.summary_zh() + "查看：dutybot accounts list")
    return 0


def cmd_accounts_export(args: argparse.Namespace) -> int:
    """dutybot accounts export FILE [--unit UNIT]"""
    settings = cli_settings(args)
    path = Path(args.file)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            count = export_accounts(session=session, path=path, unit=args.unit)
    finally:
        engine.dispose()
    print(f"已导出 {count} 个账号到 {path}")
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    """dutybot accounts list [--unit UNIT]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            lines = [account_line(a, s) for a, s in list_accounts(session=session, unit=args.unit)]
    finally:
        engine.dispose()
    if not lines:
        print("还没有登记政务新媒体账号。登记：dutybot accounts add 名称 --platform 平台 --unit 主办单位，"
              f"或 dutybot accounts import 文件（表头：{COLUMNS_HINT}）")
        return 0
    print("\n".join(lines))
    print(f"共 {len(lines)} 个")
    return 0


def cmd_accounts_add(args: argparse.Namespace) -> int:
    """dutybot accounts add NAME --platform P --unit U [--id ID] [--operator] [--approver]
    [--government | --department] [--opened DAY]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    today = local(now).date()
    cells = {"账号名称": args.name, "平台": args.platform, "主办单位": args.unit}
    for column, value in (("账号ID", args.id), ("运维人员", args.operator), ("主管领导", args.approver)):
        if value is not None:
            cells[column] = value
    if args.government or args.department:
        cells["账号类型"] = "政府账号" if args.government else "部门账号"
    if args.opened is not None:
        cells["开通日期"] = parse_day(args.opened, "开通日期", today).isoformat()
    new = parse_fields(cells, today=today)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            account, outcome = add_account(session=session, new=new, now=now, actor="cli")
            line = account_line(account, site_of(session, account))
            session.commit()
    finally:
        engine.dispose()
    said = {Outcome.created: "已登记：", Outcome.updated: "已更新：", Outcome.unchanged: "无变化："}[outcome]
    print(said + line)
    return 0


def cmd_accounts_filed(args: argparse.Namespace) -> int:
    """dutybot accounts filed NAME --number N [--date DAY] [--unit UNIT]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    today = local(now).date()
    day = parse_day(args.date, "备案日期", today) if args.date else today
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            account = find_account(session=session, name=args.name, unit=args.unit)
            set_filing(session=session, account=account, number=args.number, filed_on=day, now=now, actor="cli")
            line = account_line(account, site_of(session, account))
            session.commit()
    finally:
        engine.dispose()
    print(f"已登记备案（{day.isoformat()}）：{line}")
    return 0


def cmd_accounts_status(args: argparse.Namespace) -> int:
    """dutybot accounts status [--unit UNIT] [--json]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            if args.json:
                out = json.dumps({"accounts": status_dicts(session=session, now=now, unit=args.unit)},
                                 ensure_ascii=False, indent=2)
            else:
                out = status_text(session=session, now=now, unit=args.unit)
    finally:
        engine.dispose()
    print(out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot accounts …`` to the dutybot parser."""
    accounts = sub.add_parser("accounts", help="政务新媒体账号登记：导入、导出、列表、登记、备案、状态")
    asub = accounts.add_subparsers(dest="accounts_command", metavar="操作", parser_class=ChineseParser,
                                   required=True)
    p = asub.add_parser("import", help="从 xlsx/CSV 导入账号登记表（全部无误才导入；已登记的则更新）")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_accounts_import)
    p = asub.add_parser("export", help="导出账号登记表（.xlsx 或 .csv，列与导入相同）")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--unit", help="只导出此主办单位的账号")
    p.set_defaults(func=cmd_accounts_export)
    p = asub.add_parser("list", help="列出已登记的账号")
    p.add_argument("--unit", help="只看此主办单位的账号")
    p.set_defaults(func=cmd_accounts_list)
    p = asub.add_parser("add", help="登记一个账号（同名同主办单位则更新所给的项）")
    p.add_argument("name", metavar="名称")
    p.add_argument("--platform", required=True, metavar="平台", help="平台：" + PLATFORMS_ZH)
    p.add_argument("--unit", required=True, metavar="单位", help="主办单位")
    p.add_argument("--id", metavar="账号ID", help="在平台上的账号或 ID")
    p.add_argument("--operator", metavar="姓名", help="运维人员")
    p.add_argument("--approver", metavar="姓名", help="主管领导")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--government", action="store_true", help="市县政府账号（默认为部门账号）")
    kind.add_argument("--department", action="store_true", help="部门账号")
    p.add_argument("--opened", metavar="日期", help="开通日期，如 2024-03-01")
    p.set_defaults(func=cmd_accounts_add)
    p = asub.add_parser("filed", help="登记账号已备案：备案编号和备案日期")
    p.add_argument("name", metavar="名称")
    p.add_argument("--number", required=True, metavar="编号", help="备案编号")
    p.add_argument("--date", metavar="日期", help="备案日期（默认今天）")
    p.add_argument("--unit", metavar="单位", help="主办单位（同名账号登记在多个单位时必填）")
    p.set_defaults(func=cmd_accounts_filed)
    p = asub.add_parser("status", help="各账号的状态、备案、最近发布和待办事项")
    p.add_argument("--unit", metavar="单位", help="只看此主办单位的账号")
    p.add_argument("--json", action="store_true", help="输出 JSON")
    p.set_defaults(func=cmd_accounts_status)
    add_post_commands(asub)
