"""CLI commands of the periodic checks (CHECK-1, STAFF-3; issue 18 item 4).

``dutybot checks plan`` creates the period's inspection round where the rule profile states
a check interval (else 本地规定未作要求; ``--adhoc`` runs a 专项检查 of the office's own
choice); ``checks record`` scores a unit on the score sheet and opens its rectification
items; ``checks report`` writes the round's 通报 (``--xlsx``, ``--docx``); ``checks items``
and ``checks done`` list and close rectification items; ``checks sheet`` shows the score
sheet; ``checks training add|list`` records trainings and attendance; ``checks annual``
shows the annual report duties and ``checks annual done`` closes one. Bad input raises
:class:`~core.errors.InputError`, which ``bot.cli.main`` turns into Chinese lines on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_calendar, cli_settings, parse_day, positive_int
from bot.config import Settings
from checks import annual, report, rounds, service, training
from checks.indicators import Sheet
from core.clock import SystemClock, local
from people.service import parse_training_day

ACTOR = "cli"


def _sheet(settings: Settings) -> Sheet:
    return settings.check_sheet()


def _policy(settings: Settings) -> service.CheckPolicy:
    return settings.check_policy(cli_calendar(settings))


def cmd_plan(args: argparse.Namespace) -> int:
    """dutybot checks plan [--next | --adhoc]"""
    settings = cli_settings(args)
    profile, sheet = settings.profile(), _sheet(settings)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            planned = rounds.plan_round(session=session, profile=profile, sheet=sheet, now=SystemClock().now(),
                                        actor=ACTOR, adhoc=args.adhoc, ahead=1 if args.next else 0)
            r = planned.round
            lines = [f"{'已建立' if planned.created else '已有'}：编号 {r.id}｜{r.title}"
                     f"（{r.starts_on.isoformat()} 至 {r.ends_on.isoformat()}），"
                     f"检查单位 {len(planned.units)} 个：{'、'.join(planned.units)}",
                     rounds.basis_zh(r), f"评分表：{r.sheet}（查看条目：dutybot checks sheet）",
                     "登记结果：dutybot checks record 单位 --items 条目编号,…（没有问题写“无”）"]
            session.commit()
    finally:
        engine.dispose()
    print("\n".join(lines))
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """dutybot checks record UNIT --items CODES [--due DAY] [--note TEXT] [--round N]"""
    settings = cli_settings(args)
    sheet, policy = _sheet(settings), _policy(settings)
    due = parse_day(args.due, "整改期限") if args.due else None
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            done = rounds.record_result(session=session, sheet=sheet, policy=policy, unit=args.unit,
                                        hits_text=args.items, now=SystemClock().now(), actor=ACTOR,
                                        round_id=args.round, due=due, note=args.note or "")
            text = rounds.result_message(sheet=sheet, round_=done.round, result=done.result, hits=done.hits,
                                         items=done.items, due_basis=done.items[0].due_basis if done.items else "")
            told = "、".join(p.name for p in done.notified)
            session.commit()
    finally:
        engine.dispose()
    print(text)
    print(f"已通知：{told}" if told else "没有可通知的人员（该单位没有带班领导或管理员，也没有管理员）。")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """dutybot checks report [--round N] [--xlsx FILE] [--docx FILE]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            bulletin = report.build_bulletin(session=session, now=SystemClock().now(), round_id=args.round)
    finally:
        engine.dispose()
    if args.xlsx:
        report.write_xlsx(bulletin, Path(args.xlsx))
        print(f"已写入通报（Excel）：{args.xlsx}")
    if args.docx:
        report.write_docx(bulletin, Path(args.docx))
        print(f"已写入通报（Word）：{args.docx}")
    if not (args.xlsx or args.docx):
        print(report.render_text(bulletin))
    return 0


def cmd_items(args: argparse.Namespace) -> int:
    """dutybot checks items [--open] [--unit UNIT] [--round N]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            rows = service.items(session=session, unit=args.unit, open_only=args.open, round_id=args.round)
            lines = [rounds.item_line(r) for r in rows]
    finally:
        engine.dispose()
    if not lines:
        print("没有待整改的事项。" if args.open else "还没有整改事项。")
        return 0
    print("\n".join(lines))
    print(f"共 {len(lines)} 项。办结：dutybot checks done 编号 [--note 整改说明]")
    return 0


def cmd_done(args: argparse.Namespace) -> int:
    """dutybot checks done ID [--note TEXT]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            item = rounds.mark_done(session=session, item_id=args.id, now=SystemClock().now(), actor=ACTOR,
                                    note=args.note or "")
            line = rounds.item_line(item)
            left = len(service.items(session=session, unit=item.unit, open_only=True))
            unit = item.unit
            session.commit()
    finally:
        engine.dispose()
    print(f"已登记整改完成：{line}")
    print(f"{unit}尚有 {left} 项待整改。" if left else f"{unit}的整改事项已全部完成。")
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    """dutybot checks sheet"""
    sheet = _sheet(cli_settings(args))
    print(f"{sheet.name}（满分 {sheet.full_score}，合格线 {sheet.pass_score}）")
    if sheet.basis:
        print(sheet.basis)
    for item in sheet.items:
        print(f"{item.zh()}｜{item.scope}｜{item.standard}")
    return 0


def cmd_training_add(args: argparse.Namespace) -> int:
    """dutybot checks training add DAY TITLE [--people NAMES] [--pre-duty] [--organiser UNIT]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    day = parse_training_day(args.day, local(now).date())
    names = training.parse_names(args.people or "")
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            done = training.add_training(session=session, day=day, title=args.title, names=names, now=now,
                                         actor=ACTOR, pre_duty=args.pre_duty, organiser=args.organiser or "")
            line = training.line(done.session, done.people)
            trained = "、".join(p.name for p in done.trained)
            session.commit()
    finally:
        engine.dispose()
    print(f"已登记：{line}")
    if trained:
        print(f"已记录培训日期 {day.isoformat()}（先培训后上岗）：{trained}")
    return 0


def _training_status(settings: Settings, year: int, recorded: bool) -> str:
    profile = settings.profile()
    if service.annual_training(profile) is None:
        return f"年度业务培训：{service.not_required(profile, '每年组织业务培训（STAFF-3）')}"
    state = "已登记" if recorded else "尚未登记"
    return f"{year}年业务培训：{state}（{profile.basis(service.TRAINING_RULE)}）"


def cmd_training_list(args: argparse.Namespace) -> int:
    """dutybot checks training list [--year N]"""
    settings = cli_settings(args)
    year = args.year or local(SystemClock().now()).year
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            rows = training.sessions(session=session, year=year)
            lines = [training.line(row, people) for row, people in rows]
            recorded = training.has_annual(session=session, year=year)
    finally:
        engine.dispose()
    print("\n".join(lines) if lines else f"{year}年还没有登记培训。{training.ADD_HINT}")
    print(_training_status(settings, year, recorded))
    return 0


def cmd_annual(args: argparse.Namespace) -> int:
    """dutybot checks annual [--year N]"""
    settings = cli_settings(args)
    profile = settings.profile()
    value = service.annual_report_by(profile)
    if value is None:
        print(f"{service.not_required(profile, '年度工作报表的公开期限（CHECK-1.annual_report_by）')}，不设年度报表事项。")
        return 0
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            rows = service.annual_reports(session=session, year=args.year)
            lines = [annual.line(r) for r in rows]
    finally:
        engine.dispose()
    print(f"年度工作报表：每年{value.quantity.zh()}向社会公开上一年度{annual.WHAT}（依据：{value.citation}）")
    print("\n".join(lines) if lines else "还没有年度工作报表事项（每年1月1日起自动为各单位建立）。")
    return 0


def cmd_annual_done(args: argparse.Namespace) -> int:
    """dutybot checks annual done UNIT URL [--year N]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            row = annual.mark_published(session=session, unit=args.unit, url=args.url, now=SystemClock().now(),
                                        actor=ACTOR, year=args.year)
            line = annual.line(row)
            session.commit()
    finally:
        engine.dispose()
    print(f"已登记公开：{line}")
    return 0


def _year(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为年份，如 2026，收到 {text!r}") from None
    if not 2000 <= year <= 2100:
        raise argparse.ArgumentTypeError(f"年份应在 2000—2100 之间，收到 {year}")
    return year


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot checks …`` to the dutybot parser."""
    checks = sub.add_parser("checks", help="定期检查、整改、年度工作报表与培训")
    csub = checks.add_subparsers(dest="checks_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = csub.add_parser("plan", help="建立本期（季度）检查；本地规定未作要求时只能 --adhoc 开展专项检查")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--next", action="store_true", help="建立下一期的检查")
    group.add_argument("--adhoc", action="store_true", help="开展专项检查（本单位安排，非条款规定）")
    p.set_defaults(func=cmd_plan)
    p = csub.add_parser("record", help="登记一个单位的检查结果，并建立整改事项")
    p.add_argument("unit", metavar="单位")
    p.add_argument("--items", required=True, metavar="条目", help="发现的问题条目编号，如 V2,D01×2；没有问题写“无”")
    p.add_argument("--due", metavar="日期", help="整改期限（默认按工作要求的工作日数计算）")
    p.add_argument("--note", metavar="说明", help="检查说明")
    p.add_argument("--round", type=positive_int, metavar="编号", help="检查轮次编号（默认最近一次）")
    p.set_defaults(func=cmd_record)
    p = csub.add_parser("report", help="检查通报：输出文字，或写出 Excel / Word 文件")
    p.add_argument("--round", type=positive_int, metavar="编号", help="检查轮次编号（默认最近一次）")
    p.add_argument("--xlsx", metavar="FILE", help="写出 Excel 文件")
    p.add_argument("--docx", metavar="FILE", help="写出 Word 文件")
    p.set_defaults(func=cmd_report)
    p = csub.add_parser("items", help="列出整改事项")
    p.add_argument("--open", action="store_true", help="只看待整改的")
    p.add_argument("--unit", metavar="单位", help="只看此单位")
    p.add_argument("--round", type=positive_int, metavar="编号", help="只看此检查轮次")
    p.set_defaults(func=cmd_items)
    p = csub.add_parser("done", help="登记整改事项已完成")
    p.add_argument("id", type=positive_int, metavar="编号")
    p.add_argument("--note", metavar="说明", help="整改说明")
    p.set_defaults(func=cmd_done)
    p = csub.add_parser("sheet", help="查看检查评分表的条目")
    p.set_defaults(func=cmd_sheet)
    p = csub.add_parser("training", help="培训登记：add 登记，list 列表")
    tsub = p.add_subparsers(dest="training_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = tsub.add_parser("add", help="登记一次培训及参训人员")
    p.add_argument("day", metavar="日期", help="培训日期 YYYY-MM-DD")
    p.add_argument("title", metavar="标题")
    p.add_argument("--people", metavar="姓名", help="参训人员，以逗号分隔")
    p.add_argument("--pre-duty", action="store_true", help="岗前培训：同时记录参训人员的培训日期（先培训后上岗）")
    p.add_argument("--organiser", metavar="单位", help="组织单位")
    p.set_defaults(func=cmd_training_add)
    p = tsub.add_parser("list", help="列出一年的培训及年度培训情况")
    p.add_argument("--year", type=_year, metavar="年份", help="默认今年")
    p.set_defaults(func=cmd_training_list)
    p = csub.add_parser("annual", help="年度工作报表事项；done 登记已公开")
    p.add_argument("--year", type=_year, metavar="年份", help="报表所属年度")
    p.set_defaults(func=cmd_annual)
    asub = p.add_subparsers(dest="annual_command", metavar="操作", parser_class=ChineseParser)
    p = asub.add_parser("done", help="登记单位已公开年度工作报表")
    p.add_argument("unit", metavar="单位")
    p.add_argument("url", metavar="网址")
    p.add_argument("--year", type=_year, metavar="年份", help="报表所属年度（默认待公开的）")
    p.set_defaults(func=cmd_annual_done)

