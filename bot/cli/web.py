"""``dutybot web``: the web board's sessions and iCal subscription addresses.

``web sessions`` lists who is signed in (live sessions), ``web revoke ID`` / ``--person
NAME`` / ``--all`` signs them out, ``web ical NAME`` makes a person's subscription address
(the old one stops working) and ``web ical NAME --revoke`` stops it.
"""

from __future__ import annotations

import argparse

from sqlmodel import Session

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_settings, positive_int
from bot.web import auth
from core.clock import SystemClock, fmt_short_zh
from core.db import session_scope
from core.errors import InputError
from people.service import find_person


def cmd_web_sessions(args: argparse.Namespace) -> int:
    """dutybot web sessions"""
    engine = open_database(cli_settings(args))
    now = SystemClock().now()
    try:
        with Session(engine) as session:
            rows = auth.live_sessions(session=session, now=now)
    finally:
        engine.dispose()
    if not rows:
        print("当前没有登录值班看板的会话。")
        return 0
    print(f"值班看板会话（共 {len(rows)} 个）：")
    for row, person in rows:
        agent = f"｜{row.user_agent[:40]}" if row.user_agent else ""
        print(f"  #{row.id}  {person.name}（{person.unit or '未登记单位'}）｜登录 {fmt_short_zh(row.created_at)}"
              f"｜最近访问 {fmt_short_zh(row.last_seen_at)}｜到期 {fmt_short_zh(row.expires_at)}{agent}")
    print("撤销：dutybot web revoke 编号（或 --person 姓名、--all）")
    return 0


def cmd_web_revoke(args: argparse.Namespace) -> int:
    """dutybot web revoke [ID] [--person NAME] [--all]"""
    chosen = sum(x is not None and x is not False for x in (args.id, args.person, args.all))
    if chosen != 1:
        raise InputError("请指定一个会话编号，或 --person 姓名，或 --all（三者选一）。")
    engine = open_database(cli_settings(args))
    now = SystemClock().now()
    try:
        with session_scope(engine) as session:
            person = find_person(session=session, name=args.person) if args.person else None
            count = auth.revoke(session=session, now=now, actor="cli", session_id=args.id, person=person)
    finally:
        engine.dispose()
    if count == 0:
        print("没有可撤销的会话（编号不存在、已过期或已撤销）。")
        return 1 if args.id is not None else 0
    print(f"已撤销 {count} 个会话；对方需在聊天中重新发送 /web 登录。")
    return 0


def cmd_web_ical(args: argparse.Namespace) -> int:
    """dutybot web ical NAME [--revoke]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    now = SystemClock().now()
    try:
        with session_scope(engine) as session:
            person = find_person(session=session, name=args.name)
            count, token = 0, ""
            if args.revoke:
                count = auth.revoke_feeds(session=session, person=person, now=now, actor="cli")
            else:
                token = auth.issue_feed(session=session, person=person, now=now, actor="cli")
    finally:
        engine.dispose()
    if args.revoke:
        print(f"已停用 {args.name} 的值班日历订阅地址。" if count else f"{args.name} 没有在用的订阅地址。")
        return 0
    print(f"{args.name} 的值班日历订阅地址（旧地址已停用；请只发给本人）：")
    print(f"{settings.web.base_url}/web/ical/{token}.ics")
    if not settings.web.enabled:
        print("注意：[web] enabled 未开启，开启后此地址才能访问。")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot web …`` to the dutybot parser."""
    web = sub.add_parser("web", help="值班看板：登录会话的查看与撤销、值班日历订阅地址")
    wsub = web.add_subparsers(dest="web_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = wsub.add_parser("sessions", help="列出当前登录值班看板的会话")
    p.set_defaults(func=cmd_web_sessions)
    p = wsub.add_parser("revoke", help="撤销会话（对方需重新发送 /web 登录）")
    p.add_argument("id", nargs="?", type=positive_int, metavar="ID", help="会话编号（dutybot web sessions 列出的 #编号）")
    p.add_argument("--person", metavar="姓名", help="撤销此人的全部会话")
    p.add_argument("--all", action="store_true", help="撤销全部会话")
    p.set_defaults(func=cmd_web_revoke)
    p = wsub.add_parser("ical", help="生成某人的值班日历订阅地址（旧地址随即停用）")
    p.add_argument("name", metavar="姓名")
    p.add_argument("--revoke", action="store_true", help="停用其订阅地址，不生成新的")
    p.set_defaults(func=cmd_web_ical)
