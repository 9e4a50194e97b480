"""``dutybot accounts posts`` and ``dutybot accounts fetch``: an account's posts (issue 18
item 3), added to ``dutybot accounts`` by :func:`add_commands`.

``dutybot accounts posts 名称 FILE`` records the posts of a platform back-end's export
(CSV or xlsx; columns 日期、标题、原创 or the back-end's own names, ``accounts.posts``): all
or nothing, every bad row listed as ``第N行：…``; it says how many were new and how many
were recorded before (importing the same file again adds nothing).
``dutybot accounts fetch [名称]`` reads the feeds now (every active account's, or one),
with a line per account as it goes; it exits 1 when a feed could not be read. Feeds go
through the guarded fetcher with ``[incidents] fetch_allow``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sqlmodel import Session

from accounts.duties import account_name
from accounts.feeds import feed_targets, read_feed, record_feed
from accounts.posts import COLUMNS_HINT, parse_export, record_posts
from accounts.register import find_account
from bot.app import open_database
from bot.cli.common import EXIT_OK, EXIT_REFUSED, cli_settings
from bot.config import Settings
from core.clock import SystemClock
from core.fetcher import GuardedFetcher
from core.tables import read_table


def feed_fetcher(settings: Settings) -> GuardedFetcher:
    """The guarded fetcher feeds are read with (``[incidents] fetch_allow``)."""
    return settings.incidents.fetcher()


def cmd_accounts_posts(args: argparse.Namespace) -> int:
    """dutybot accounts posts NAME FILE [--unit UNIT]"""
    settings = cli_settings(args)
    now = SystemClock().now()
    posts = parse_export(read_table(Path(args.file), required=(), columns_hint=COLUMNS_HINT), now=now)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            account = find_account(session=session, name=args.name, unit=args.unit)
            done = record_posts(session=session, account=account, posts=posts, source="import", now=now,
                                actor="cli")
            name = account_name(session, account)
            session.commit()
    finally:
        engine.dispose()
    print(f"{name}：读取 {len(posts)} 条发布记录，{done.zh()}。"
          f"查看发布情况：在聊天中发送 /post {name}")
    return EXIT_OK


def cmd_accounts_fetch(args: argparse.Namespace) -> int:
    """dutybot accounts fetch [NAME] [--unit UNIT]"""
    settings = cli_settings(args)
    fetcher = feed_fetcher(settings)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            targets = feed_targets(session=session, name=args.name, unit=args.unit)
        if not targets:
            print("没有登记订阅地址的在用账号（账号登记表的“订阅地址”列）。")
            return EXIT_OK
        new = failed = 0
        for index, target in enumerate(targets, start=1):
            now = SystemClock().now()
            result = asyncio.run(read_feed(target, fetcher=fetcher, now=now))
            if result.error:
                failed += 1
                print(f"[{index}/{len(targets)}] {target.name}：读取失败，{result.error}", flush=True)
                continue
            with Session(engine) as session:
                done = record_feed(session=session, result=result, now=now)
                session.commit()
            new += done.new if done else 0
            said = done.zh() if done else "账号已不存在，未登记"
            print(f"[{index}/{len(targets)}] {target.name}：订阅中 {len(result.posts)} 条，{said}", flush=True)
    finally:
        engine.dispose()
    print(f"共 {len(targets)} 个账号，新增 {new} 条" + (f"，{failed} 个读取失败" if failed else "") + "。")
    return EXIT_REFUSED if failed else EXIT_OK


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the posts subcommands under ``dutybot accounts``."""
    p = sub.add_parser("posts", help="从平台导出的 xlsx/CSV 登记账号的发布记录（有误则不导入；重复导入不重复计数）")
    p.add_argument("name", metavar="名称", help="账号名称")
    p.add_argument("file", metavar="FILE", help="表头：" + COLUMNS_HINT)
    p.add_argument("--unit", metavar="单位", help="主办单位（同名账号登记在多个单位时必填）")
    p.set_defaults(func=cmd_accounts_posts)
    p = sub.add_parser("fetch", help="立即读取订阅（RSS/Atom/JSON Feed），登记新的发布")
    p.add_argument("name", metavar="名称", nargs="?", help="只读此账号（默认：所有登记了订阅地址的在用账号）")
    p.add_argument("--unit", metavar="单位", help="主办单位（同名账号登记在多个单位时必填）")
    p.set_defaults(func=cmd_accounts_fetch)
