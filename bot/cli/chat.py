"""CLI commands of the chat core: people, console, drill, run, demo.

The console runs a drill on a sandbox (:mod:`bot.sandbox`) unless ``--live`` is given:
``dutybot console`` and ``dutybot drill`` never write to the live database.
``dutybot console --live`` and ``dutybot run`` act on it, holding its instance lock
(:mod:`bot.instance_lock`); see :mod:`bot.console_live` for what a live console may do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_settings, parse_day, positive_int
from bot.cli.people_edit import add_commands as add_people_edits
from bot.console_live import ConsoleMode
from bot.console_run import run_console
from bot.demo import run_demo
from bot.runner import run_adapter
from core.clock import SystemClock, fmt_short_zh, local
from core.errors import InputError
from core.profiles import Profile
from people import filings
from people.io import read_table
from people.models import PLATFORM_ZH, ChatIdentity, Person, Role, StaffChange
from people.service import (
    add_person,
    create_invite,
    find_person,
    import_people,
    list_people,
    record_training,
    set_phone,
    validate,
)
from roster import training

_NAMES = re.compile(r"[、,，;；]+")


def _filed(session: Session, profile: Profile, changes: list[tuple[Person, StaffChange, str]]) -> list[str]:
    """Record staff changes for 备案 (STAFF-2: the admins are told); the lines to print."""
    rows = filings.record_changes(session=session, profile=profile, changes=changes, now=SystemClock().now(),
                                  actor="cli")
    note = filings.reply_note(profile, rows)
    return [note] if note else []

# ---------------------------------------------------------------- people

def cmd_people_add(args: argparse.Namespace) -> int:
    settings = cli_settings(args)
    engine = open_database(settings)
    now = SystemClock().now()
    new = validate(args.name, args.phone or "", args.unit or "", args.roles, args.organization or "",
                   args.trained or "", today=local(now).date())
    with Session(engine) as session:
        person = add_person(session=session, new=new, now=now, actor="cli")
        lines = [f"已添加 {person.name}（{person.roles_zh()}）。生成绑定码：dutybot people invite {person.name}",
                 *_filed(session, settings.profile(), [(person, StaffChange.added, "")])]
        session.commit()
        print("\n".join(lines))
    return 0


def cmd_people_list(args: argparse.Namespace) -> int:
    settings = cli_settings(args)
    profile = settings.profile()
    engine = open_database(settings)
    with Session(engine) as session:
        people = list_people(session=session, include_inactive=args.all)
        if not people:
            print("还没有任何人员。添加：dutybot people add 姓名 --roles 值班员 --phone 电话")
            return 0
        accounts: dict[int, list[str]] = {}
        for ident in session.exec(select(ChatIdentity).order_by(col(ChatIdentity.id))):
            mark = "（已屏蔽机器人）" if ident.blocked_at else ""
            accounts.setdefault(ident.person_id, []).append(
                f"{PLATFORM_ZH.get(ident.platform, ident.platform)}:{ident.external_id}{mark}")
        for p in people:
            state = "" if p.active else "（已停用）"
            bound = "、".join(accounts.get(p.id or -1, [])) or "未绑定"
            trained = (f"培训 {p.trained_on.isoformat()}" if p.trained_on
                       else "未登记培训" if training.required(profile) and Role.officer in p.role_set() else "—")
            print(f"{p.name}{state}\t{p.roles_zh()}\t{p.unit or '—'}\t{p.phone or '—'}\t{trained}\t{bound}")
        print(f"共 {len(people)} 人")
        waiting = filings.open_filings(session=session)
        if waiting:
            print(f"待备案的人员变动 {len(waiting)} 项：dutybot people filings")
    return 0


def cmd_people_import(args: argparse.Namespace) -> int:
    settings = cli_settings(args)
    engine = open_database(settings)
    rows = read_table(Path(args.file))
    with Session(engine) as session:
        people = import_people(session=session, rows=rows, now=SystemClock().now(), actor="cli")
        names = "、".join(p.name for p in people)
        notes = _filed(session, settings.profile(), [(p, StaffChange.added, "") for p in people])
        session.commit()
    print("\n".join([f"已导入 {len(people)} 人：{names}", *notes]))
    return 0


def cmd_people_trained(args: argparse.Namespace) -> int:
    """dutybot people trained 姓名[、姓名…] [日期] | --all 日期"""
    settings = cli_settings(args)
    profile = settings.profile()
    now = SystemClock().now()
    names, day_text = (None, args.day or args.names) if args.all else (args.names, args.day)
    if args.all and args.day and args.names:
        raise InputError("--all 与姓名不能同时给出。")
    day = parse_day(day_text, "培训日期") if day_text else local(now).date()
    engine = open_database(settings)
    with Session(engine) as session:
        if args.all:
            people = [p for p in list_people(session=session)
                      if Role.officer in p.role_set() and p.trained_on is None]
            if not people:
                print("没有尚未登记培训的在岗值班员。")
                return 0
        elif names:
            people = [find_person(session=session, name=n) for n in _NAMES.split(names) if n]
        else:
            raise InputError("请给出已培训人员的姓名（多人以顿号分隔），或用 --all 登记全部未登记的值班员。")
        for person in people:
            record_training(session=session, person=person, day=day, now=now, actor="cli")
        session.commit()
        print(f"已登记培训：{'、'.join(p.name for p in people)}，培训日期 {day.isoformat()}。"
              + (f"自该日起可安排值班（{profile.basis(training.RULE)}）。" if training.required(profile) else ""))
    return 0


def cmd_people_phone(args: argparse.Namespace) -> int:
    """dutybot people phone 姓名 电话"""
    settings = cli_settings(args)
    engine = open_database(settings)
    with Session(engine) as session:
        person = find_person(session=session, name=args.name)
        old = set_phone(session=session, person=person, phone=args.phone, now=SystemClock().now(), actor="cli")
        lines = [f"已将 {person.name} 的电话由 {old or '（无）'} 改为 {person.phone}。",
                 *_filed(session, settings.profile(), [(person, StaffChange.phone, old)])]
        session.commit()
    print("\n".join(lines))
    return 0


def cmd_people_filings(args: argparse.Namespace) -> int:
    """dutybot people filings"""
    engine = open_database(cli_settings(args))
    with Session(engine) as session:
        waiting = filings.open_filings(session=session)
        if not waiting:
            print("没有待备案的人员变动。")
            return 0
        print("\n".join([f"待备案的人员变动（{len(waiting)} 项）：", *(f"  {filings.line(r)}" for r in waiting),
                         f"{filings.DONE_HINT}。"]))
    return 0


def cmd_people_filed(args: argparse.Namespace) -> int:
    """dutybot people filed 编号"""
    engine = open_database(cli_settings(args))
    with Session(engine) as session:
        row = filings.mark_filed(session=session, filing_id=args.id, now=SystemClock().now(), actor="cli")
        text = f"已登记为已备案：{filings.line(row)}。"
        session.commit()
    print(text)
    return 0


def cmd_people_invite(args: argparse.Namespace) -> int:
    settings = cli_settings(args)
    engine = open_database(settings)
    now = SystemClock().now()
    with Session(engine) as session:
        person = find_person(session=session, name=args.name)
        invite = create_invite(session=session, person=person, now=now,
                               ttl=timedelta(hours=settings.bot.invite_ttl_hours), actor="cli")
        session.commit()
        print(f"{person.name} 的绑定码：{invite.code}（{fmt_short_zh(invite.expires_at)} 前有效，仅可使用一次）")
        print(f"请告知本人在与机器人的私聊中发送：/bind {invite.code}")
    return 0


# ---------------------------------------------------------------- console, drill, run, demo

def _console_command(args: argparse.Namespace, mode: ConsoleMode) -> int:
    settings = cli_settings(args)
    if mode is ConsoleMode.live and (args.now or args.empty):
        raise InputError(f"{'--now' if args.now else '--empty'} 只用于演练，不能与 --live 同用。")
    with contextlib.ExitStack() as stack:
        script = stack.enter_context(open(args.script, encoding="utf-8")) if args.script else None
        transcript = (stack.enter_context(open(args.transcript, "w", encoding="utf-8"))
                      if args.transcript else None)
        return asyncio.run(run_console(settings, as_name=args.as_name, now_text=args.now,
                                       script=script, transcript=transcript, mode=mode,
                                       empty=args.empty))


def cmd_console(args: argparse.Namespace) -> int:
    """dutybot console [--live]: a drill on a sandbox, or the live database with --live."""
    return _console_command(args, ConsoleMode.live if args.live else ConsoleMode.drill)


def cmd_drill(args: argparse.Namespace) -> int:
    """dutybot drill: the console on a sandbox, never the live database."""
    return _console_command(args, ConsoleMode.drill)


def cmd_run(args: argparse.Namespace) -> int:
    settings = cli_settings(args)
    adapter = args.adapter or settings.bot.adapter
    if args.host:
        settings.http.host = args.host
    if args.port is not None:
        settings.http.port = args.port
    if adapter == "console" and args.worker:
        raise InputError("--worker 用于在同一数据库上运行多个服务进程，需要聊天平台适配器"
                         "（--adapter telegram、wecom 或 dingtalk），控制台适配器不支持。")
    if adapter == "console":
        # The live service on the console: the deployment's chat platform (bot.console_live).
        return asyncio.run(run_console(settings, as_name=None, now_text=None, script=None,
                                       transcript=None, mode=ConsoleMode.service))
    if not args.debug:
        logging.getLogger().setLevel(logging.INFO)  # a service's log: what it connected to
        for noisy in ("apscheduler", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # httpx logs every request line at INFO: noise for a service (the secrets in those
    # URLs are masked anyway, bot.adapters.redact).
    for leaky in ("httpx", "httpcore"):
        logging.getLogger(leaky).setLevel(logging.WARNING)
    return asyncio.run(run_adapter(settings, adapter, worker=args.worker))


def cmd_demo(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        transcript = (stack.enter_context(open(args.transcript, "w", encoding="utf-8"))
                      if args.transcript else None)
        return asyncio.run(run_demo(transcript=transcript, full=args.full))


def _console_options(p: argparse.ArgumentParser) -> None:
    """The options console and drill share."""
    p.add_argument("--as", dest="as_name", metavar="姓名", help="以此人身份发言")
    p.add_argument("--now", metavar="ISO", help="模拟时钟的起点，如 2026-10-08T09:00（仅演练）")
    p.add_argument("--script", metavar="FILE", help="逐行执行脚本文件")
    p.add_argument("--transcript", metavar="FILE.jsonl", help="把每条消息记录为 JSON 行")
    p.add_argument("--empty", action="store_true", help="演练时使用空数据库，而不是正式数据库的副本")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the chat-core commands to the dutybot parser."""
    people = sub.add_parser("people", help="人员管理")
    psub = people.add_subparsers(dest="people_command", metavar="操作", parser_class=ChineseParser,
                                 required=True)
    p = psub.add_parser("add", help="添加人员")
    p.add_argument("name", metavar="姓名")
    p.add_argument("--roles", "--role", dest="roles", default="值班员",
                   help="角色，以顿号或逗号分隔：值班员、带班领导、主要负责人、管理员、外部联系人、技术保障"
                        "（技术保障：网站出现无法访问、内容错误、篡改时由机器人通知，--unit 为其负责的单位，留空表示各单位）")
    p.add_argument("--phone", help="电话：11 位手机号码，或带区号的固定电话如 023-67881234")
    p.add_argument("--unit", help="单位")
    p.add_argument("--organization", help="外部联系人或技术保障的机构，如 区委网信办、某网络科技公司")
    p.add_argument("--trained", metavar="YYYY-MM-DD", help="培训日期（先培训后上岗：未登记培训的值班员不排班）")
    p.set_defaults(func=cmd_people_add)
    p = psub.add_parser("list", help="人员名单")
    p.add_argument("--all", action="store_true", help="包括已停用的人员")
    p.set_defaults(func=cmd_people_list)
    p = psub.add_parser("import", help="从 CSV/xlsx 导入人员（表头：姓名、电话、单位、角色、机构、培训日期）")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_people_import)
    p = psub.add_parser("trained", help="登记培训日期（先培训后上岗）")
    p.add_argument("names", metavar="姓名", nargs="?", help="一人或多人，以顿号分隔")
    p.add_argument("day", metavar="日期", nargs="?", help="培训日期 YYYY-MM-DD（默认今天，不能晚于今天）")
    p.add_argument("--all", action="store_true", help="为所有尚未登记培训的在岗值班员登记")
    p.set_defaults(func=cmd_people_trained)
    p = psub.add_parser("phone", help="修改电话（人员变动备案）")
    p.add_argument("name", metavar="姓名")
    p.add_argument("phone", metavar="电话")
    p.set_defaults(func=cmd_people_phone)
    add_people_edits(psub)    # role, unit, deactivate (with handover), reactivate
    p = psub.add_parser("filings", help="待报区政府办公室备案的人员变动")
    p.set_defaults(func=cmd_people_filings)
    p = psub.add_parser("filed", help="登记一项人员变动已备案")
    p.add_argument("id", metavar="编号", type=positive_int)
    p.set_defaults(func=cmd_people_filed)
    p = psub.add_parser("invite", help="生成一次性绑定码")
    p.add_argument("name", metavar="姓名")
    p.set_defaults(func=cmd_people_invite)

    p = sub.add_parser("console", help="控制台对话（默认在正式数据库的临时副本上演练；--live 在正式数据库上操作）")
    _console_options(p)
    p.add_argument("--live", action="store_true",
                   help="在正式数据库上操作（dutybot run 运行时不可用；不能与 --now、--empty 同用）")
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("drill", help="演练：在正式数据库的临时副本（或空数据库）上使用控制台，不写入正式数据库")
    _console_options(p)
    p.set_defaults(func=cmd_drill)

    p = sub.add_parser("run", help="启动机器人（默认控制台适配器）")
    p.add_argument("--adapter", choices=["console", "telegram", "wecom", "dingtalk"],
                   help="聊天平台（默认取配置 bot.adapter，即 console）")
    p.add_argument("--host", help="HTTP 服务（平台回调、健康检查、监控指标）监听地址（默认 127.0.0.1，取配置 http.host）")
    p.add_argument("--port", type=int, help="HTTP 服务端口（默认 8080，取配置 http.port）")
    p.add_argument("--worker", action="store_true",
                   help="作为多个工作进程之一运行（可在多台服务器上共用一个 PostgreSQL 数据库）："
                        "各进程分担消息发送、到期事项与网站巡检，定时任务和轮询连接由主进程负责，"
                        "主进程退出后其他进程在数秒内接替")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="在临时数据库上演示机器人能做什么（不写入正式数据库）")
    p.add_argument("--transcript", metavar="FILE.jsonl", help="把每条消息记录为 JSON 行")
    p.add_argument("--full", action="store_true", help="显示每条消息的全文（默认只显示前三行）")
    p.set_defaults(func=cmd_demo)


