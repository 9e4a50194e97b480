"""The optional parts of dutybot: pyproject's extras, and what happens when one is missing.

The core (``pip install dutybot``) runs the console, drills and the demo on SQLite. Each
chat platform's library is an extra — ``telegram`` (python-telegram-bot), ``dingtalk``
(websockets, for Stream mode), ``wecom`` (nothing beyond the core today; named so that
the install line reads the same for every platform) — and so is the PostgreSQL driver,
``postgres`` (psycopg; :func:`core.db.make_engine` raises for that one itself).

A platform chosen without its library is one Chinese line and exit 2, never a traceback:
:func:`import_adapter` turns the ``ModuleNotFoundError`` of the library into
:class:`~core.errors.MissingExtra`. A module missing for any other reason (a broken
installation) is not disguised as a missing extra: it propagates.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from core.errors import InputError, MissingExtra


@dataclass(frozen=True)
class Extra:
    """One extra of ``[project.optional-dependencies]``.

    Attributes:
        name: the extra (``pip install 'dutybot[<name>]'``).
        what: what needs it, as the admin names it.
        modules: the top-level modules it provides.
    """

    name: str
    what: str
    modules: tuple[str, ...]


EXTRAS = {
    "telegram": Extra("telegram", "Telegram", ("telegram",)),
    "wecom": Extra("wecom", "企业微信", ()),
    "dingtalk": Extra("dingtalk", "钉钉", ("websockets",)),
    "postgres": Extra("postgres", "PostgreSQL", ("psycopg",)),
}

PLATFORMS = ("telegram", "wecom", "dingtalk")


def missing(name: str) -> MissingExtra:
    """The error saying that extra ``name`` is to be installed."""
    extra = EXTRAS[name]
    return MissingExtra(extra.name, extra.what)


def import_adapter(platform: str) -> ModuleType:
    """The adapter package ``bot.adapters.<platform>``, imported.

    Raises:
        MissingExtra: the platform's library (its extra) is not installed.
        InputError: no such platform.
    """
    if platform not in PLATFORMS:
        raise InputError(f"没有名为 {platform} 的适配器；可用：console、telegram、wecom、dingtalk")
    try:
        return importlib.import_module(f"bot.adapters.{platform}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in EXTRAS[platform].modules:
            raise missing(platform) from None
        raise
