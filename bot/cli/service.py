"""``dutybot service install`` and ``dutybot service show``: the systemd unit of
``dutybot run`` (the unit itself: :mod:`bot.service_unit`).

``install`` writes the unit (default ``/etc/systemd/system/dutybot.service``; an existing
file only with ``--force``; a folder it cannot write is refused, exit 1) and prints the
commands that finish the job: the system user, the data folders' owner, ``systemctl``.
``show`` prints the unit and writes nothing. Both read the config the service will run
with, the environment file's ``DUTYBOT_*`` values included, and refuse the console
adapter (exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path

from bot import service_unit
from bot.cli.common import EXIT_OK, ChineseParser
from bot.config import find_config, load_settings
from bot.extras import import_adapter
from core.errors import InputError, MissingExtra


def _unit(args: argparse.Namespace) -> tuple[service_unit.UnitPlan, str]:
    """The unit the options and the config describe, and its text."""
    config = find_config(args.config, os.environ)
    if config is None:
        raise InputError("请用 --config 指定服务使用的配置文件（如 /srv/dutybot/dutybot.toml）；"
                         "还没有配置文件时先运行 dutybot --config 路径 init")
    env = service_unit.environment(args.env_file, os.environ)
    settings = load_settings(config, env)
    unit = service_unit.plan(settings, config=config, user=args.user,
                             workdir=Path(args.workdir) if args.workdir else None,
                             adapter=args.adapter, env_file=args.env_file, worker=args.worker)
    name = Path(getattr(args, "path", service_unit.DEFAULT_PATH)).name.removesuffix(".service")
    return unit, service_unit.render(unit, version=_version(), unit_name=name)


def _version() -> str:
    """The installed dutybot's version, for the unit's header comment."""
    try:
        return distribution_version("dutybot")
    except PackageNotFoundError:
        return "未安装"


def _library_note(adapter: str) -> None:
    """Say so when the platform's library is missing: the service would not start."""
    try:
        import_adapter(adapter)
    except MissingExtra as exc:
        print(f"注意：{exc.message}，否则服务无法启动。", file=sys.stderr)


def cmd_service_show(args: argparse.Namespace) -> int:
    """dutybot service show: print the unit, write nothing."""
    _unit_plan, text = _unit(args)
    print(text, end="")
    return EXIT_OK


def cmd_service_install(args: argparse.Namespace) -> int:
    """dutybot service install: write the unit and print the commands that follow."""
    unit, text = _unit(args)
    path = Path(args.path).expanduser()
    service_unit.write_unit(path, text, force=args.force)
    name = path.name.removesuffix(".service")
    print(f"已写入 {path}（用户 {unit.user}，聊天平台 {unit.adapter}，"
          f"可写目录：{'、'.join(str(d) for d in unit.data_dirs)}）。")
    _library_note(unit.adapter)
    print("接下来请依次运行（已有该用户时第一行什么也不做）：")
    for line in service_unit.setup_commands(unit, name):
        print(f"  {line}")
    if unit.env_file:
        print(f"密钥（令牌、Secret、数据库密码）请写在环境文件 {unit.env_file} 中（属主 root:{unit.user}，"
              "权限 640），不要写进配置文件。")
    return EXIT_OK


def _options(p: argparse.ArgumentParser) -> None:
    """The options install and show share."""
    # SUPPRESS: without it this --config would reset `dutybot --config X service …` to None.
    p.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE",
                   help="服务使用的配置文件（默认同 dutybot --config，或 $DUTYBOT_CONFIG、./dutybot.toml）")
    p.add_argument("--user", default=service_unit.DEFAULT_USER, metavar="用户",
                   help=f"运行服务的系统用户和组（默认 {service_unit.DEFAULT_USER}）")
    p.add_argument("--workdir", metavar="DIR", help="工作目录（默认为配置文件所在目录）")
    p.add_argument("--adapter", choices=["telegram", "wecom", "dingtalk"],
                   help="聊天平台（默认取配置 bot.adapter）")
    p.add_argument("--worker", action="store_true",
                   help="服务以 dutybot run --worker 运行（多台服务器共用一个 PostgreSQL 时，每台都这样安装）")
    p.add_argument("--env-file", default=service_unit.DEFAULT_ENV_FILE, metavar="FILE",
                   help=f"存放密钥的环境文件（默认 {service_unit.DEFAULT_ENV_FILE}，不存在时忽略；"
                        "其中的 DUTYBOT_* 设置也用于生成本文件）")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot service`` to the dutybot parser."""
    service = sub.add_parser("service", help="系统服务（systemd）")
    ssub = service.add_subparsers(dest="service_command", metavar="操作", parser_class=ChineseParser,
                                  required=True)
    p = ssub.add_parser("install", help="写入 systemd 服务文件，并给出创建用户、启动服务的命令")
    p.add_argument("--path", default=service_unit.DEFAULT_PATH, metavar="FILE",
                   help=f"服务文件的位置（默认 {service_unit.DEFAULT_PATH}）")
    p.add_argument("--force", action="store_true", help="覆盖已有的服务文件")
    _options(p)
    p.set_defaults(func=cmd_service_install)
    p = ssub.add_parser("show", help="显示将要写入的 systemd 服务文件，不写入")
    _options(p)
    p.set_defaults(func=cmd_service_show)
