"""``dutybot doctor``: check this installation, one Chinese line per check (正常, 警告,
错误) and a summary; ``--json`` for machines. Exit 0 when nothing is 错误, else 1.
The checks themselves: :mod:`bot.doctor`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from bot.cli.common import EXIT_OK, EXIT_REFUSED
from bot.config import find_config
from bot.doctor import diagnose
from core.clock import SystemClock


def cmd_doctor(args: argparse.Namespace) -> int:
    """dutybot doctor [--adapter NAME] [--json]"""
    report = asyncio.run(diagnose(config=find_config(args.config, os.environ), env=os.environ,
                                  clock=SystemClock(), adapter=args.adapter, timeout=args.timeout))
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_REFUSED


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot doctor`` to the dutybot parser."""
    p = sub.add_parser("doctor", help="检查运行环境：配置、数据库、节假日数据、平台凭据、时钟、磁盘空间、HTTP 端口")
    p.add_argument("--adapter", choices=["console", "telegram", "wecom", "dingtalk"],
                   help="检查这个聊天平台（默认取配置 bot.adapter）")
    p.add_argument("--timeout", type=float, default=10.0, metavar="秒",
                   help="等待聊天平台回应的秒数（默认 10）")
    p.add_argument("--json", action="store_true", help="输出 JSON（供监控脚本使用）")
    p.set_defaults(func=cmd_doctor)
