"""``dutybot run`` on a chat platform: the adapter chosen by name, the app, signals.

The console adapter has its own loop (:func:`bot.console_run.run_console`); every other
adapter runs here until SIGINT or SIGTERM, then stops cleanly: the scheduler and the
outbox sender end their current step, the HTTP service finishes its requests, the
adapter stops receiving (see :meth:`bot.app.App.run`). Nothing is lost on a stop — what was not sent yet is in the
outbox and goes out at the next start.

A running service holds its database's instance lock, shared (:mod:`bot.instance_lock`):
several workers may run together, and ``dutybot console --live`` is refused meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import IO

from bot import instance_lock
from bot.adapters.base import Adapter
from bot.app import App
from bot.config import Settings
from core.clock import SystemClock
from core.errors import AdapterError, ConfigError, InputError
from people.models import PLATFORM_ZH

log = logging.getLogger(__name__)


def build_adapter(name: str, settings: Settings) -> Adapter:
    """The adapter called ``name``, from the settings.

    Raises:
        ConfigError: its credentials are missing or malformed.
        InputError: no such adapter.
    """
    try:
        return _construct(name, settings)
    except AdapterError as exc:
        raise ConfigError([exc.message], settings.source) from None


def _construct(name: str, settings: Settings) -> Adapter:
    if name == "telegram":
        from bot.adapters.telegram import TelegramAdapter
        return TelegramAdapter(settings.telegram)
    if name == "wecom":
        from bot.adapters.wecom import WeComAdapter
        return WeComAdapter(settings.wecom, max_media_bytes=settings.incidents.fetch_max_bytes)
    if name == "dingtalk":
        from bot.adapters.dingtalk import DingTalkAdapter
        return DingTalkAdapter(settings.dingtalk, max_media_bytes=settings.incidents.fetch_max_bytes)
    raise InputError(f"没有名为 {name} 的适配器；可用：console、telegram、wecom、dingtalk")


def describe(name: str, settings: Settings) -> str:
    """One Chinese line saying what is running, for the person who started it."""
    if name == "telegram":
        mode = ("Webhook 模式，监听 "
                f"{settings.http.host}:{settings.http.port}" if settings.telegram.mode == "webhook"
                else "长轮询模式")
        return f"值班机器人已启动（Telegram，{mode}）。按 Ctrl+C 停止。"
    listen = f"{settings.http.host}:{settings.http.port}"
    if name == "wecom":
        return f"值班机器人已启动（企业微信，回调地址 {listen}/wecom/callback）。按 Ctrl+C 停止。"
    if name == "dingtalk":
        mode = ("Stream 模式，无需公网地址" if settings.dingtalk.mode == "stream"
                else f"HTTP 回调模式，回调地址 {listen}/dingtalk/callback")
        return f"值班机器人已启动（钉钉，{mode}）。按 Ctrl+C 停止。"
    return f"值班机器人已启动（{PLATFORM_ZH.get(name, name)}）。按 Ctrl+C 停止。"


async def run_adapter(settings: Settings, name: str, *, out: IO[str] | None = None,
                      stop: asyncio.Event | None = None) -> int:
    """Run the bot on adapter ``name`` until a signal (or ``stop``) ends it.

    Raises:
        DatabaseInUse: ``dutybot console --live`` is using the database.
    """
    adapter = build_adapter(name, settings)
    with instance_lock.hold(settings, exclusive=False):
        return await _serve(settings, name, adapter, out=out, stop=stop)


async def _serve(settings: Settings, name: str, adapter: Adapter, *, out: IO[str] | None,
                 stop: asyncio.Event | None) -> int:
    app = App(settings, clock=SystemClock(), adapter=adapter)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows loops: Ctrl+C then ends the
        # process the default way, and the outbox keeps what was not sent.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await app.run(stop, on_started=lambda: print(describe(name, settings), file=out or sys.stderr))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    print("值班机器人已停止。未发出的消息保存在发送队列中，下次启动时继续发送。", file=out or sys.stderr)
    return 0
