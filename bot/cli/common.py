"""Helpers every ``dutybot`` sub-command module shares: the exit codes, the settings of
this run, the working-day calendar they configure, arguments read in Chinese terms, and
the parser that reports usage errors in Chinese.

Every module of :mod:`bot.cli` imports these from here, and this module imports none of
them, so the command modules never reach back into the entry point.
"""

from __future__ import annotations

import argparse
import os
import unicodedata
from datetime import date, time
from typing import Literal, NoReturn

from bot.config import Settings, find_config, load_settings
from core.errors import InputError
from core.workdays import WorkdayCalendar

EXIT_OK = 0
EXIT_REFUSED = 1  # a refused operation, such as an out-of-date database
EXIT_USAGE = 2    # bad input or usage


def cli_settings(args: argparse.Namespace) -> Settings:
    """The configuration named by ``--config``, ``$DUTYBOT_CONFIG`` or ``./dutybot.toml``."""
    return load_settings(find_config(args.config, os.environ))


def cli_calendar(settings: Settings, cutoff: time | Literal["default"] | None = "default") -> WorkdayCalendar:
    """The working-day calendar with the configured holiday files and cut-off."""
    cut = settings.calendar.cutoff_time() if cutoff == "default" else cutoff
    return WorkdayCalendar.from_dir(settings.resolve(settings.calendar.holidays_dir), cutoff=cut)


def parse_day(text: str, what: str) -> date:
    """A ``YYYY-MM-DD`` argument; ``what`` names it in the error (``开始日期``).

    Raises:
        InputError: not a date.
    """
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"无效的{what} {text!r}：应为 YYYY-MM-DD，如 2026-11-01") from None


def parse_cutoff(text: str) -> time | None:
    """A ``HH:MM`` cut-off time; ``24:00`` (the end of the day) is ``None``.

    Raises:
        InputError: not a time.
    """
    if text == "24:00":
        return None
    try:
        hh, mm = text.split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise InputError(f"无效的截止时刻 {text!r}：应为 HH:MM，如 17:30 或 24:00") from None


def positive_int(text: str) -> int:
    """argparse ``type=`` for a positive integer, with a Chinese error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为正整数，收到 {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"应为正整数，收到 {value}")
    return value


def pad(text: str, width: int) -> str:
    """Left-justify ``text`` to ``width`` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)


class ChineseParser(argparse.ArgumentParser):
    """argparse that reports usage errors in one Chinese line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        message = (message.replace("the following arguments are required", "缺少参数")
                   .replace("one of the arguments", "以下参数必须给出一个")
                   .replace("is required", "")
                   .replace("argument ", "参数 ")
                   .replace("invalid choice", "无效的选项")
                   .replace("choose from", "可选")
                   .replace("unrecognized arguments", "无法识别的参数")
                   .replace("not allowed with argument", "不能与以下参数同时使用")
                   .replace("expected one argument", "需要一个值")
                   .replace("invalid int value", "应为整数，收到"))
        self.exit(EXIT_USAGE, f"dutybot: 用法错误：{message}（查看帮助：{self.prog} -h）\n")
