"""``dutybot backup`` and ``dutybot restore``: an archive of the database and the evidence
files made while the bot runs (:mod:`bot.backup`, :mod:`bot.backup_job`), and its checked restore into an empty
target (:mod:`bot.restore`). A refused or failed one raises
:class:`~bot.backup.BackupError` (a Chinese line on stderr, exit 1, via ``bot.cli.main``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.backup_job import rotation_zh, run_backup
from bot.cli.common import EXIT_OK, EXIT_REFUSED, cli_settings
from bot.restore import RestoreTarget, restore_backup
from bot.sandbox import sqlite_file
from core.clock import SystemClock
from core.db import normalize_url
from core.errors import InputError

DB_FILE = "dutybot.db"
EVIDENCE_FOLDER = "evidence"


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_backup(args: argparse.Namespace) -> int:
    """dutybot backup [--to DIR]"""
    settings = cli_settings(args)
    to = Path(args.to).expanduser().resolve() if args.to else None
    result, _removed = run_backup(settings, now=SystemClock().now(), to=to, progress=_say)
    if to is None:
        _say(f"保留规则（[backup] keep、keep_days）：{rotation_zh(settings.backup.keep, settings.backup.keep_days)}。")
    _say(f"恢复时使用：dutybot restore {result.path}")
    return EXIT_OK


def _database_arg(url: str) -> str:
    """``--database``: a relative SQLite path is relative to the current folder."""
    url = normalize_url(url)
    path = sqlite_file(url)
    return f"sqlite:///{path.expanduser().resolve()}" if path is not None else url


def cmd_restore(args: argparse.Namespace) -> int:
    """dutybot restore FILE [--to DIR] [--database URL]"""
    settings = cli_settings(args)
    archive = Path(args.file).expanduser()
    if not archive.is_file():
        raise InputError(f"找不到备份文件 {archive}")
    folder = Path(args.to).expanduser().resolve() if args.to else None
    if folder is not None:
        database = _database_arg(args.database) if args.database else f"sqlite:///{folder / DB_FILE}"
        target = RestoreTarget(database, folder / EVIDENCE_FOLDER, folder)
    else:
        database = _database_arg(args.database) if args.database else settings.database_url()
        target = RestoreTarget(database, settings.resolve(settings.incidents.evidence_dir))
    result = restore_backup(archive=archive, target=target, progress=_say)
    _say(f"恢复完成：数据库结构版本 {result.revision}，证据文件 {result.evidence_files} 个。")
    if folder is not None or args.database:
        _say("要让机器人使用恢复的数据，请在配置文件中设置（并停止服务后再改）：")
        _say(f'  [database] url = "{make_url(database).render_as_string(hide_password=True)}"'
             + ("（*** 处填写数据库密码，或用环境变量 DUTYBOT_DATABASE_URL）" if make_url(database).password else ""))
        _say(f'  [incidents] evidence_dir = "{target.evidence_dir}"')
        _say("然后运行 dutybot db status 核对，再启动服务。")
    else:
        _say("运行 dutybot db status 核对后即可启动服务。")
    if result.evidence_problems:
        lines = "\n".join(f"  - {p}" for p in result.evidence_problems)
        print(f"dutybot: 警告：{len(result.evidence_problems)} 份证据文件缺失或与记录的 SHA-256 不符"
              f"（备份时即已如此），请核查：\n{lines}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot backup`` and ``dutybot restore`` to the dutybot parser."""
    p = sub.add_parser("backup", help="备份数据库和证据文件（服务运行中也可备份），生成一个带校验值的压缩包")
    p.add_argument("--to", metavar="DIR",
                   help="备份写到此目录（默认取配置 [backup] dir；只有写到默认目录时才按保留规则删除旧备份）")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="校验备份文件，恢复到空的数据库和证据目录")
    p.add_argument("file", metavar="FILE", help="备份文件（dutybot-backup-….tar.gz，同目录下要有它的 .sha256 文件）")
    p.add_argument("--to", metavar="DIR",
                   help="恢复到此空目录：SQLite 数据库为 DIR/dutybot.db，证据文件在 DIR/evidence（默认：配置中的位置，须为空）")
    p.add_argument("--database", metavar="URL",
                   help="恢复到此空数据库，如 postgresql+psycopg://dutybot@127.0.0.1/dutybot_restored 或 sqlite:///路径")
    p.set_defaults(func=cmd_restore)
