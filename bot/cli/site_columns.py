"""``dutybot sites column …``: the columns (栏目) of a website that site watch reads for
freshness and emptiness (FRESH-1). Added to ``dutybot sites`` by ``bot.cli.sites``.

``column add SITE 名称 --url URL --kind 动态|通知公告|政策文件|其他`` registers one (the same
name again updates it), ``column list [SITE]`` shows them, ``column remove SITE 名称``
deactivates one, ``column import FILE`` loads a CSV/xlsx table (all or nothing). The sites
workbook may carry the same table as its sheet ``栏目`` (``dutybot sites import``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_settings
from core.clock import SystemClock
from core.tables import read_table
from roster.models import Site
from watch.columns import (
    COLUMNS_HINT,
    KIND_WORDS_ZH,
    REQUIRED,
    add_column,
    column_line,
    columns_of,
    import_columns,
    remove_column,
    validate_column,
    website_named,
)


def cmd_column_add(args: argparse.Namespace) -> int:
    """dutybot sites column add SITE NAME --url URL [--kind KIND] [--unit UNIT]"""
    settings = cli_settings(args)
    new = validate_column(args.name, args.url, args.kind or "")
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            site = website_named(session=session, name=args.site, unit=args.unit)
            column, created = add_column(session=session, site=site, new=new, now=SystemClock().now(), actor="cli")
            line = f"{site.name}｜{column_line(column)}"
            session.commit()
    finally:
        engine.dispose()
    print(("已登记栏目：" if created else "已更新栏目：") + line)
    return 0


def cmd_column_remove(args: argparse.Namespace) -> int:
    """dutybot sites column remove SITE NAME [--unit UNIT]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            site = website_named(session=session, name=args.site, unit=args.unit)
            column = remove_column(session=session, site=site, name=args.name, now=SystemClock().now(), actor="cli")
            line = f"{site.name}｜{column_line(column)}"
            session.commit()
    finally:
        engine.dispose()
    print(f"已停用栏目：{line}（不再巡检；重新登记：dutybot sites column add）")
    return 0


def cmd_column_list(args: argparse.Namespace) -> int:
    """dutybot sites column list [SITE] [--unit UNIT] [--all]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            site_id = website_named(session=session, name=args.site, unit=args.unit).id if args.site else None
            rows = columns_of(session=session, site_id=site_id, include_inactive=args.all)
            names = {s.id: s.name for s in (session.get(Site, i) for i in {r.site_id for r in rows}) if s}
    finally:
        engine.dispose()
    if not rows:
        print("还没有登记栏目。登记：dutybot sites column add 网站名称 栏目名称 --url https://… --kind 通知公告"
              f"（类型：{KIND_WORDS_ZH}）")
        return 0
    for row in rows:
        print(f"{names.get(row.site_id, row.site_id)}｜{column_line(row)}" + ("" if row.active else "（已停用）"))
    print(f"共 {len(rows)} 个栏目")
    return 0


def cmd_column_import(args: argparse.Namespace) -> int:
    """dutybot sites column import FILE"""
    settings = cli_settings(args)
    rows = read_table(Path(args.file), required=REQUIRED, columns_hint=COLUMNS_HINT)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            stored, created = import_columns(session=session, rows=rows, now=SystemClock().now(), actor="cli")
            session.commit()
    finally:
        engine.dispose()
    print(f"已导入 {len(stored)} 个栏目（新增 {created} 个，更新 {len(stored) - created} 个）。"
          "查看：dutybot sites column list")
    return 0


def add_commands(ssub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``column …`` to ``dutybot sites``."""
    column = ssub.add_parser("column", help="网站栏目（网站巡检据此检查栏目更新是否及时、有无空白栏目）")
    csub = column.add_subparsers(dest="column_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = csub.add_parser("add", help="登记一个栏目（同一网站同名栏目则更新）")
    p.add_argument("site", metavar="网站")
    p.add_argument("name", metavar="栏目名称")
    p.add_argument("--url", required=True, help="栏目列表页网址")
    p.add_argument("--kind", default="news", help=f"栏目类型：{KIND_WORDS_ZH}（或 news、notices、other）；"
                   "默认动态要闻（更新时限按配置档 FRESH-1）")
    p.add_argument("--unit", help="网站所属单位（同名网站登记在多个单位时必填）")
    p.set_defaults(func=cmd_column_add)
    p = csub.add_parser("list", help="列出栏目")
    p.add_argument("site", metavar="网站", nargs="?", help="只看此网站的栏目")
    p.add_argument("--unit", help="网站所属单位（同名网站登记在多个单位时必填）")
    p.add_argument("--all", action="store_true", help="包括已停用的")
    p.set_defaults(func=cmd_column_list)
    p = csub.add_parser("remove", help="停用一个栏目")
    p.add_argument("site", metavar="网站")
    p.add_argument("name", metavar="栏目名称")
    p.add_argument("--unit", help="网站所属单位（同名网站登记在多个单位时必填）")
    p.set_defaults(func=cmd_column_remove)
    p = csub.add_parser("import", help=f"从 CSV/xlsx 导入栏目（表头：{COLUMNS_HINT}）")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_column_import)
