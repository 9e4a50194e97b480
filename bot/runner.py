"""``dutybot run`` on a chat platform: the adapter chosen by name, the app, signals.

The console adapter has its own loop (:func:`bot.console_run.run_console`); every other
adapter runs here until SIGINT or SIGTERM, then stops cleanly: the scheduler and the
outbox sender end their current step, the HTTP service finishes its requests, the
adapter stops receiving (see :meth:`bot.app.App.run`). Nothing is lost on a stop — what was not sent yet is in the
outbox and goes out at the next start.

A running service holds its database's instance lock, shared (:mod:`bot.instance_lock`):
several workers may run together, and ``dutybot console --live`` is refused meanwhile.
A service that receives by polling or a stream (Telegram polling, DingTalk Stream) also
holds its bot's receiver lock, exclusive: a second ``dutybot run`` for the same bot on the
same database exits 1 with a Chinese line saying to use webhook (callback) mode for
several processes. Webhook and callback modes take no receiver lock.

The log of a running service masks every configured secret and personal data
(:mod:`bot.logs`), on every handler, uvicorn's included.

Every platform mode serves the HTTP service (``/healthz``, ``/readyz``, ``/metrics``:
:mod:`bot.http`) on ``[http] host/port`` — polling and Stream modes too — unless
``[http] enabled = false``; an address that cannot be listened on stops the start with a
Chinese line (:meth:`bot.app.App.start_http`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import IO

from bot import instance_lock, logs
from bot.adapters.base import Adapter
from bot.app import App
from bot.config import Settings
from bot.extras import import_adapter
from core.clock import SystemClock
from core.errors import AdapterError, ConfigError
from people.models import PLATFORM_ZH

log = logging.getLogger(__name__)


def build_adapter(name: str, settings: Settings) -> Adapter:
    """The adapter called ``name``, from the settings.

    Raises:
        ConfigError: its credentials are missing or malformed.
        InputError: no such adapter.
        MissingExtra: the platform's library is not installed (``dutybot[<platform>]``).
    """
    try:
        return _construct(name, settings)
    except AdapterError as exc:
        raise ConfigError([exc.message], settings.source) from None


def _construct(name: str, settings: Settings) -> Adapter:
    # Each platform's package is imported only when chosen: its library is an extra.
    module = import_adapter(name)
    adapter: Adapter
    if name == "telegram":
        adapter = module.TelegramAdapter(settings.telegram)
    elif name == "wecom":
        adapter = module.WeComAdapter(settings.wecom, max_media_bytes=settings.incidents.fetch_max_bytes)
    else:
        adapter = module.DingTalkAdapter(settings.dingtalk, max_media_bytes=settings.incidents.fetch_max_bytes)
    return adapter


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


def receiver_identity(name: str, settings: Settings) -> str | None:
    """The bot whose updates adapter ``name`` fetches itself (polling, a stream), which
    one process only may do; None when the platform posts them to us (webhook, callback).
    """
    if name == "telegram" and settings.telegram.mode == "polling" and settings.telegram.token:
        # The bot id (the token's public half): the same bot whatever the token's version.
        return settings.telegram.token.get_secret_value().split(":", 1)[0]
    if name == "dingtalk" and settings.dingtalk.mode == "stream":
        return settings.dingtalk.client_id
    return None


async def run_adapter(settings: Settings, name: str, *, out: IO[str] | None = None,
                      stop: asyncio.Event | None = None, worker: bool = False) -> int:
    """Run the bot on adapter ``name`` until a signal (or ``stop``) ends it.

    ``worker`` (``dutybot run --worker``): one of several processes on the database; a
    polling or Stream connection is opened by whichever leads (:mod:`bot.leader`) rather
    than refused to the second process.

    Returns:
        0 after a clean stop; 1 when a worker lost the lead while running.

    Raises:
        DatabaseInUse: ``dutybot console --live`` is using the database.
        ReceiverInUse: another process polls (or streams) for the same bot.
    """
    with contextlib.ExitStack() as stack:
        log_filter = stack.enter_context(logs.installed(settings))
        adapter = build_adapter(name, settings)
        stack.enter_context(instance_lock.hold(settings, exclusive=False))
        identity = receiver_identity(name, settings)
        receiver = None if identity is None else instance_lock.receiver_name(name, identity)
        if receiver is not None and not worker:
            stack.enter_context(instance_lock.hold_receiver(settings, platform=name, identity=identity or ""))
        app = App(settings, clock=SystemClock(), adapter=adapter, worker=worker, receiver=receiver if worker else None)
        return await _serve(app, settings, name, out=out, stop=stop, on_started=log_filter.refresh)


async def _serve(app: App, settings: Settings, name: str, *, out: IO[str] | None,
                 stop: asyncio.Event | None, on_started: Callable[[], None] | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows loops: Ctrl+C then ends the
        # process the default way, and the outbox keeps what was not sent.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        def started() -> None:
            if on_started is not None:
                on_started()   # handlers made while starting (uvicorn's) get the log filter
            print(describe(name, settings), file=out or sys.stderr)
            if (note := app.http_note()) is not None:
                print(note, file=out or sys.stderr)

        await app.run(stop, on_started=started)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    print("值班机器人已停止。未发出的消息保存在发送队列中，下次启动时继续发送。", file=out or sys.stderr)
    return app.role.exit_code if app.role is not None else 0
