"""The ``dutybot`` command line: the parser, :func:`main`, and the top-level commands
(``init``, ``db``, ``due``, ``rules``, ``calendar``). Each command group (``people``,
``roster``, ``incidents`` …) adds itself to the parser from its own module of
:mod:`bot.cli`.

Every sub-command reads the configuration, does one thing and exits. Bad input or a bad
configuration prints one clear Chinese line per problem on stderr and exits 2; a
refused operation (such as an out-of-date database) exits 1. No tracebacks unless
``--debug`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path

from bot import logs
from bot.cli.accounts import register as register_accounts
from bot.cli.backup import register as register_backup
from bot.cli.chat import register as register_chat
from bot.cli.checks import register as register_checks
from bot.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    ChineseParser,
    cli_calendar,
    cli_settings,
    pad,
    parse_cutoff,
    positive_int,
)
from bot.cli.doctor import register as register_doctor
from bot.cli.incidents import register as register_incidents
from bot.cli.outbox import register as register_outbox
from bot.cli.playbooks import register as register_playbooks
from bot.cli.replies import register as register_replies
from bot.cli.roster import register as register_roster
from bot.cli.roster_log import add_commands as add_roster_log
from bot.cli.roster_plan import add_commands as add_roster_plan
from bot.cli.service import register as register_service
from bot.cli.sites import register as register_sites
from bot.cli.watch import register as register_watch
from bot.cli.web import register as register_web
from bot.config import CONFIG_NAME, Settings, example_config, load_settings
from core import words_zh
from core.clock import SystemClock, check_year_range, local
from core.db import current_revision, head_revision, make_engine, upgrade
from core.errors import (
    CalendarError,
    ConfigError,
    DutybotError,
    InputError,
    MissingExtra,
    ProfileError,
    SchemaOutOfDate,
)
from core.profiles import CATALOG, load_profile

log = logging.getLogger("dutybot")


# ---------------------------------------------------------------- commands

def cmd_due(args: argparse.Namespace) -> int:
    """dutybot due START (--workdays N | --days N | --months N) [--cutoff HH:MM] [--json]"""
    try:   # the chat's words too: 明天, 下周一, 12月3日 (core.words_zh)
        start = words_zh.parse_start(args.start, SystemClock().now())
    except InputError:
        raise InputError(
            f"无效的开始时间 {args.start!r}：应为日期或时间，如 2026-10-08、2026-10-08T09:30、明天、下周一、12月3日"
        ) from None
    check_year_range(start, "开始时间")
    settings = cli_settings(args)
    cutoff = parse_cutoff(args.cutoff) if args.cutoff else "default"
    cal = cli_calendar(settings, cutoff)
    if args.workdays is not None:
        deadline = cal.add_workdays(start, args.workdays)
    elif args.days is not None:
        deadline = cal.add_days(start, args.days)
    else:
        deadline = cal.add_months(start, args.months)
    if args.json:
        print(json.dumps(deadline.as_dict(), ensure_ascii=False))
    else:
        print(deadline.zh())
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    """dutybot rules [--profile NAME] [--json]"""
    settings = cli_settings(args)
    name = args.profile or settings.rules.profile
    overrides = settings.rules.overrides if name == settings.rules.profile else {}
    profile = load_profile(name, overrides=overrides)
    rows = []
    for rule_id in CATALOG:
        entry = profile.rule(rule_id)
        values = profile.values_of(rule_id)
        rows.append({
            "rule": rule_id,
            "regulated": entry.regulated,
            "origin": entry.origin or "none",
            "citation": entry.citation,
            "summary": entry.summary,
            "values": {k: v.plain() for k, v in values.items()},
            "values_zh": "；".join(f"{k}={v.zh()}" for k, v in values.items()),
            # Where each value comes from: own article, a parent's (参照), or the config.
            "provenance": {k: {"citation": v.citation, "origin": v.origin, "source": v.source,
                               "article": v.article, "quote": v.quote} for k, v in values.items()},
            "not_stated": [k for k in CATALOG[rule_id] if k not in values],
            "inherited": entry.inherited,
            "overridden": sorted(k for k, v in values.items() if v.overridden),
        })
    if args.json:
        print(json.dumps({"profile": profile.name, "jurisdiction": profile.jurisdiction,
                          "document": profile.document,
                          "parents": [d.title for d in profile.parents], "rules": rows},
                         ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"规则配置档：{profile.name}（{profile.jurisdiction}，《{profile.document}》）")
    if profile.parents:
        print("本地规定未作要求时参照：" + "、".join(f"《{d.title}》" for d in profile.parents))
    print("“参照”表示取自其他文件；“本地规定未作要求”的条目不设期限；标注 ! 的取值被本地配置覆盖。")
    print(pad("规则", 9) + pad("依据", 34) + "要求")
    for row in rows:
        print(pad(row["rule"], 9) + pad(str(row["citation"]), 34) + str(row["summary"]))
        for key, prov in row["provenance"].items():
            value = profile.value(row["rule"], key)
            mark = "!" if value.overridden else ""
            print(" " * 9 + f"· {key} = {value.zh()}{mark}（{prov['citation']}）")
    return EXIT_OK


def cmd_calendar_check(args: argparse.Namespace) -> int:
    """dutybot calendar check: covered years, and a warning when next year is missing."""
    settings = cli_settings(args)
    cal = cli_calendar(settings)
    today = local(SystemClock().now()).date()
    covered = cal.covered_years(today.year)
    package_years = sorted(y for y, src in covered.items() if src == "package")
    if package_years:
        print(f"内置日历（chinese-calendar）覆盖：{package_years[0]}–{package_years[-1]} 年")
    for year, src in covered.items():
        if src == "override":
            ov = cal.override(year)
            assert ov is not None
            notice = f"，依据：{ov.notice}" if ov.notice else ""
            print(f"{year} 年：本地补充文件 {ov.path}（放假 {len(ov.holidays)} 天，调休上班 {len(ov.workdays)} 天{notice}）")
    holidays_dir = settings.resolve(settings.calendar.holidays_dir)
    code = EXIT_OK
    for year, level in ((today.year, EXIT_USAGE), (today.year + 1, EXIT_REFUSED)):
        if year not in covered:
            print(f"警告：缺少 {year} 年的节假日数据。涉及 {year} 年的期限按“周末 + 固定日期法定节假日”暂定计算，"
                  f"并标注“暂定”。国务院发布放假通知后，请填写 {holidays_dir / f'{year}.toml'}。",
                  file=sys.stderr)
            code = max(code, level)
    if code == EXIT_OK:
        print(f"正常：{today.year} 年和 {today.year + 1} 年的节假日数据齐全。")
    return code


def cmd_init(args: argparse.Namespace) -> int:
    """dutybot init: write a commented config, create the holidays folder and the database."""
    path = Path(args.config or CONFIG_NAME)
    if path.exists() and not args.force:
        print(f"{path} 已存在，未改动（如需重写请加 --force）。")
    else:
        path.write_text(example_config(), encoding="utf-8")
        print(f"已生成配置文件 {path}")
    settings = load_settings(path)
    holidays = settings.resolve(settings.calendar.holidays_dir)
    holidays.mkdir(parents=True, exist_ok=True)
    _db_upgrade(settings)
    print("下一步：dutybot calendar check 检查节假日数据；dutybot demo 观看演示；dutybot run 启动。")
    return EXIT_OK


def _db_upgrade(settings: Settings) -> None:
    engine = make_engine(settings.database_url())
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    if before == after:
        print(f"数据库已是最新结构（{after}）。")
    else:
        print(f"数据库结构已升级：{before or '空'} → {after}")
    engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """dutybot db upgrade"""
    _db_upgrade(cli_settings(args))
    return EXIT_OK


def cmd_db_status(args: argparse.Namespace) -> int:
    """dutybot db status"""
    settings = cli_settings(args)
    engine = make_engine(settings.database_url())
    current, head = current_revision(engine), head_revision()
    engine.dispose()
    print(f"数据库：{settings.database_url().split('@')[-1]}")
    print(f"当前结构版本：{current or '未初始化'}；程序需要：{head}")
    if current != head:
        print("需要升级：请运行 dutybot db upgrade", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


# ---------------------------------------------------------------- parser

def dutybot_version() -> str:
    """The version of the installed ``dutybot`` distribution (``[project] version``)."""
    try:
        return distribution_version("dutybot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "（版本未知：未安装）"


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; every parser in it is a :class:`ChineseParser`."""
    parser = ChineseParser(prog="dutybot", description="政府网站与政务新媒体值班读网、舆情处置机器人")
    parser.add_argument("--version", action="version", version=f"%(prog)s {dutybot_version()}",
                        help="显示版本号并退出")
    parser.add_argument("--config", help=f"配置文件路径（默认 ./{CONFIG_NAME} 或 $DUTYBOT_CONFIG）")
    parser.add_argument("--debug", action="store_true", help="出错时显示完整的调试信息")
    parser.add_argument("--log-format", choices=["text", "json"], metavar="格式",
                        help="日志格式：text（默认，便于阅读）或 json（每行一个 JSON 对象，便于日志系统检索）；"
                             "默认取配置 logging.format")
    sub = parser.add_subparsers(dest="command", metavar="命令", parser_class=ChineseParser)

    p = sub.add_parser("init", help="生成示例配置并创建数据库")
    p.add_argument("--force", action="store_true", help="覆盖已有的配置文件")
    p.set_defaults(func=cmd_init)

    db = sub.add_parser("db", help="数据库维护")
    dbsub = db.add_subparsers(dest="db_command", metavar="操作", parser_class=ChineseParser, required=True)
    dbsub.add_parser("upgrade", help="把数据库升级到最新结构").set_defaults(func=cmd_db_upgrade)
    dbsub.add_parser("status", help="查看数据库结构版本").set_defaults(func=cmd_db_status)

    p = sub.add_parser("due", help="计算期限（工作日、自然日、月）")
    p.add_argument("start", metavar="START", help="起算时间，如 2026-10-08T09:30（默认北京时间）、2026-10-08、明天、下周一、12月3日")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--workdays", type=positive_int, metavar="N", help="N 个工作日")
    group.add_argument("--days", type=positive_int, metavar="N", help="N 日（自然日）")
    group.add_argument("--months", type=positive_int, metavar="N", help="N 个月")
    p.add_argument("--cutoff", metavar="HH:MM", help="期限最后一日的截止时刻（默认取配置，通常 24:00）")
    p.add_argument("--json", action="store_true", help="输出 JSON")
    p.set_defaults(func=cmd_due)

    p = sub.add_parser("rules", help="查看当前规则配置档")
    p.add_argument("--profile", help="配置档名称（默认取配置）")
    p.add_argument("--json", action="store_true", help="输出 JSON")
    p.set_defaults(func=cmd_rules)

    cal = sub.add_parser("calendar", help="节假日日历")
    calsub = cal.add_subparsers(dest="calendar_command", metavar="操作", parser_class=ChineseParser, required=True)
    calsub.add_parser("check", help="检查节假日数据覆盖的年份").set_defaults(func=cmd_calendar_check)

    register_chat(sub)
    register_outbox(sub)
    register_replies(sub)
    register_incidents(sub)
    register_playbooks(sub)
    register_sites(sub)
    register_watch(sub)
    register_accounts(sub)
    register_checks(sub)
    register_backup(sub)
    register_service(sub)
    register_doctor(sub)
    register_web(sub)
    roster_sub = register_roster(sub)
    add_roster_plan(roster_sub)
    add_roster_log(roster_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dutybot`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = _log_settings(args)
    # Text unless --log-format or [logging] format says json (one JSON object a line).
    logs.configure(args.log_format or (settings.logging.format if settings else "text"),
                   logging.DEBUG if args.debug else logging.WARNING)
    # Secrets and personal data never reach a log handler (bot/logs.py); with --debug the
    # libraries log their URLs, so the configured secrets are masked by value too.
    with logs.installed(settings if args.debug else None):
        return _run(parser, args)


def _log_settings(args: argparse.Namespace) -> Settings | None:
    """The settings whose secrets the log must not show (None: they cannot be read; the
    command will say why)."""
    try:
        return cli_settings(args)
    except (DutybotError, OSError):
        return None


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the chosen command; its refusals and errors become Chinese lines and exit codes."""
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (ConfigError, InputError, ProfileError, CalendarError, MissingExtra) as exc:
        print(f"dutybot: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaOutOfDate as exc:
        print(f"dutybot: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except DutybotError as exc:
        print(f"dutybot: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        if args.debug:
            log.exception("unexpected error %s in %s", error_id, args.command)
        else:
            print(f"dutybot: 内部错误（错误编号 {error_id}）。加 --debug 重新运行可查看详细信息。",
                  file=sys.stderr)
        return EXIT_REFUSED

