"""CLI commands for the registry of what is read (DUTY-5): import, list, add, remove, support.

``dutybot sites import FILE`` loads a CSV/xlsx list (all or nothing; ``第N行：…`` errors),
``dutybot sites add`` registers one, ``dutybot sites remove`` deactivates one,
``dutybot sites support NAME PERSON`` sets the site's 技术保障 (pinged when it is down,
wrong or tampered with; ``--clear`` goes back to the unit's) and ``dutybot sites list``
shows them; ``dutybot sites column …`` (``bot.cli.site_columns``) registers the columns site
watch reads, ``sites add --intranet`` lets it fetch a site on a private address. Bad input raises :class:`~core.errors.InputError`,
which ``bot.cli.main`` turns into Chinese lines on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_settings
from bot.cli.site_columns import add_commands as add_column_commands
from core.clock import SystemClock
from core.errors import InputError
from core.tables import read_sheet, read_table
from people.service import find_person, support_of_unit
from roster.models import Site
from roster.sites import (
    COLUMNS_HINT,
    KIND_ZH,
    REQUIRED,
    add_site,
    import_sites,
    list_sites,
    remove_site,
    set_support,
    site_line,
    support_name,
    validate,
)
from watch import columns as site_columns

#: The sheets of a sites workbook: the sites (else the active sheet) and their columns.
SITES_SHEET, COLUMNS_SHEET = "网站", "栏目"


def cmd_sites_import(args: argparse.Namespace) -> int:
    """dutybot sites import FILE"""
    settings = cli_settings(args)
    path = Path(args.file)
    rows = read_sheet(path, SITES_SHEET, required=REQUIRED, columns_hint=COLUMNS_HINT)
    if rows is None:
        rows = read_table(path, required=REQUIRED, columns_hint=COLUMNS_HINT)
    column_rows = read_sheet(path, COLUMNS_SHEET, required=site_columns.REQUIRED,
                             columns_hint=site_columns.COLUMNS_HINT)
    engine = open_database(settings)
    column_count = 0
    try:
        with Session(engine) as session:
            now = SystemClock().now()
            sites, created = import_sites(session=session, rows=rows, now=now, actor="cli")
            if column_rows is not None:
                try:
                    stored, _ = site_columns.import_columns(session=session, rows=column_rows, now=now, actor="cli")
                    column_count = len(stored)
                except site_columns.ColumnImportFailed as exc:
                    raise InputError(f"导入失败，未导入任何网站、账号或栏目（工作表“{COLUMNS_SHEET}”）：\n"
                                     + "\n".join(exc.problems)) from None
            session.commit()
    finally:
        engine.dispose()
    print(f"已导入 {len(sites)} 个网站和账号（新增 {created} 个，更新 {len(sites) - created} 个）"
          + (f"，栏目 {column_count} 个" if column_rows is not None else "") + "。查看：dutybot sites list")
    return 0


def cmd_sites_add(args: argparse.Namespace) -> int:
    """dutybot sites add NAME --kind KIND [--url URL] [--unit UNIT] [--support PERSON]"""
    settings = cli_settings(args)
    new = validate(args.name, args.kind, args.url or "", args.unit or "", args.intranet)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            now = SystemClock().now()
            site, created = add_site(session=session, new=new, now=now, actor="cli")
            if args.support:
                person = find_person(session=session, name=args.support)
                site = set_support(session=session, name=site.name, unit=site.unit, person=person, now=now,
                                   actor="cli")
            line = site_line(site, with_unit=True) + _support_suffix(session, site)
            session.commit()
    finally:
        engine.dispose()
    print(("已登记：" if created else "已更新：") + line)
    return 0


def cmd_sites_remove(args: argparse.Namespace) -> int:
    """dutybot sites remove NAME [--unit UNIT]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            site = remove_site(session=session, name=args.name, unit=args.unit, now=SystemClock().now(),
                               actor="cli")
            line = site_line(site, with_unit=True)
            session.commit()
    finally:
        engine.dispose()
    print(f"已停用：{line}（读网提醒不再列出；重新登记：dutybot sites add）")
    return 0


def _support_suffix(session: Session, site: Site) -> str:
    name = support_name(session, site)
    return f"｜技术保障：{name}" if name else ""


def cmd_sites_support(args: argparse.Namespace) -> int:
    """dutybot sites support NAME [PERSON | --clear] [--unit UNIT]"""
    settings = cli_settings(args)
    if bool(args.person) == bool(args.clear):
        raise InputError("请给出技术保障人员的姓名，或用 --clear 清除（如：dutybot sites support 门户网站 张工）。")
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            person = find_person(session=session, name=args.person) if args.person else None
            site = set_support(session=session, name=args.name, unit=args.unit, person=person,
                               now=SystemClock().now(), actor="cli")
            line = site_line(site, with_unit=True)
            fallback = "、".join(p.name for p in support_of_unit(session=session, unit=site.unit)) or "未设置"
            who = person.name if person is not None else ""
            session.commit()
    finally:
        engine.dispose()
    if who:
        print(f"已设置：{line}｜技术保障：{who}（网站无法访问、内容错误或被篡改时由机器人通知）")
    else:
        print(f"已清除：{line} 的技术保障；改由单位的技术保障负责：{fallback}")
    return 0


def cmd_sites_list(args: argparse.Namespace) -> int:
    """dutybot sites list [--unit UNIT] [--all]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            sites = list_sites(session=session, unit=args.unit, include_inactive=args.all)
            lines = [site_line(s, with_unit=True) + _support_suffix(session, s) + ("" if s.active else "（已停用）")
                     for s in sites]
    finally:
        engine.dispose()
    if not lines:
        print("还没有登记网站和账号。登记：dutybot sites add 名称 --kind 网站 --url https://… --unit 单位，"
              f"或 dutybot sites import 文件（表头：{COLUMNS_HINT}）")
        return 0
    print("\n".join(lines))
    print(f"共 {len(lines)} 个")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot sites …`` to the dutybot parser."""
    sites = sub.add_parser("sites", help="值班读网的网站和政务新媒体账号：导入、列表、登记、停用")
    ssub = sites.add_subparsers(dest="sites_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = ssub.add_parser("import", help=f"从 CSV/xlsx 导入（表头：{COLUMNS_HINT}）；xlsx 可另附"
                                         f"工作表“{COLUMNS_SHEET}”登记栏目（表头：{site_columns.COLUMNS_HINT}）")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_sites_import)
    p = ssub.add_parser("list", help="列出网站和账号")
    p.add_argument("--unit", help="只看此单位（含各单位共用的）")
    p.add_argument("--all", action="store_true", help="包括已停用的")
    p.set_defaults(func=cmd_sites_list)
    p = ssub.add_parser("add", help="登记一个网站或账号（同名同单位则更新）")
    p.add_argument("name", metavar="名称")
    p.add_argument("--kind", required=True, help="类型：" + "、".join(KIND_ZH.values()))
    p.add_argument("--url", help="网址（网站必填）或账号")
    p.add_argument("--unit", help="单位（留空表示各单位都读）")
    p.add_argument("--support", metavar="姓名", help="该网站的技术保障（已添加的人员）")
    p.add_argument("--intranet", action=argparse.BooleanOptionalAction, default=None,
                   help="本单位内网网站（内网、本机或保留地址）：允许机器人巡检时抓取该网站；"
                        "其他内网地址仍一律拒绝。--no-intranet 取消")
    p.set_defaults(func=cmd_sites_add)
    p = ssub.add_parser("support", help="设置网站的技术保障（无法访问、内容错误、被篡改时由机器人通知）")
    p.add_argument("name", metavar="名称")
    p.add_argument("person", metavar="姓名", nargs="?", help="技术保障人员（先用 dutybot people add 添加）")
    p.add_argument("--clear", action="store_true", help="清除，改由单位的技术保障负责")
    p.add_argument("--unit", help="单位（同名登记在多个单位时必填）")
    p.set_defaults(func=cmd_sites_support)
    p = ssub.add_parser("remove", help="停用一个网站或账号")
    p.add_argument("name", metavar="名称")
    p.add_argument("--unit", help="单位（同名登记在多个单位时必填）")
    p.set_defaults(func=cmd_sites_remove)
    add_column_commands(ssub)
