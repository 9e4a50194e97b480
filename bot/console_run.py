"""The console's loop for ``dutybot console``, ``dutybot drill`` and ``dutybot run
--adapter console``: a prompt (terminal) or a script (file or piped stdin).

A drill runs on a sandbox (:mod:`bot.sandbox`); ``live`` and ``service`` run on the
configured database under its instance lock (:mod:`bot.instance_lock`), with the console
delivering only its own messages (:mod:`bot.console_live`). ``service`` (``dutybot run``)
also serves the HTTP service (``/healthz``, ``/readyz``, ``/metrics``: :mod:`bot.http`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import IO

from sqlmodel import Session

from bot import instance_lock
from bot.adapters.console import ConsoleAdapter, ConsoleSession
from bot.app import App
from bot.config import Settings
from bot.console_live import ConsoleMode, ConsoleOnlySender, forget_all
from bot.sandbox import sandbox
from core.clock import FakeClock, SystemClock, parse_local
from core.errors import InputError

LIVE_NOTE = "正在正式数据库上操作（--live）：命令立即生效；发给他人的消息由 dutybot run 在其聊天平台上发送。"


async def run_console(settings: Settings, *, as_name: str | None, now_text: str | None,
                      script: IO[str] | None, transcript: IO[str] | None,
                      out: IO[str] | None = None, interactive: bool | None = None,
                      mode: ConsoleMode = ConsoleMode.drill, empty: bool = False) -> int:
    """The console: a prompt (terminal) or a script (file or piped stdin).

    ``drill`` runs on a sandbox of ``settings`` (a copy of the database; ``empty``: an
    empty one); ``live`` and ``service`` on the configured database, holding its instance
    lock (exclusive for ``live``).

    Raises:
        InputError: ``--now`` or ``--empty`` outside a drill.
        DatabaseInUse: the lock is held by someone else.
    """
    out = out or sys.stdout
    if mode is not ConsoleMode.drill and (now_text or empty):
        raise InputError(f"{'--now' if now_text else '--empty'} 只用于演练，不能与 --live 同用。")
    with contextlib.ExitStack() as stack:
        if mode is ConsoleMode.drill:
            box = stack.enter_context(sandbox(settings, empty=empty))
            settings = box.settings
            print(f"{box.note}加 --live 在正式数据库上操作（dutybot console --live）。", file=out)
        else:
            stack.enter_context(instance_lock.hold(settings, exclusive=mode is ConsoleMode.live))
            if mode is ConsoleMode.live:
                print(LIVE_NOTE, file=out)
        return await _console(settings, as_name=as_name, now_text=now_text, script=script,
                              transcript=transcript, out=out, interactive=interactive, mode=mode)


async def _console(settings: Settings, *, as_name: str | None, now_text: str | None,
                   script: IO[str] | None, transcript: IO[str] | None, out: IO[str],
                   interactive: bool | None, mode: ConsoleMode) -> int:
    start = parse_local(now_text) if now_text else SystemClock().now()
    clock = FakeClock(start)
    session_holder: list[ConsoleSession] = []
    adapter = ConsoleAdapter(lambda chat, text: session_holder[0].show(chat, text))
    app = App(settings, clock=clock, adapter=adapter)
    if mode is not ConsoleMode.drill:
        # On the live database the console delivers only its own rows (bot.console_live).
        app.sender = ConsoleOnlySender(engine=app.engine, adapter=adapter, clock=clock,
                                       settings=settings.outbox)
        app.sender.park_unbound = mode is ConsoleMode.service
    if interactive is None:
        interactive = script is None and sys.stdin.isatty()
    console = ConsoleSession(app, clock, out=out, transcript=transcript,
                             follow_real_time=interactive and now_text is None, mode=mode)
    session_holder.append(console)
    try:
        if mode is ConsoleMode.service:   # dutybot run: /healthz, /readyz, /metrics (bot.http)
            await app.start_http()
            if (note := app.http_note()) is not None:
                print(note, file=out)
        return await _converse(app, console, settings, as_name=as_name, script=script,
                               interactive=interactive, out=out)
    finally:
        await app.stop_http()
        console.close()
        app.engine.dispose()


async def _converse(app: App, console: ConsoleSession, settings: Settings, *, as_name: str | None,
                    script: IO[str] | None, interactive: bool, out: IO[str]) -> int:
    if console.mode is ConsoleMode.live:
        with Session(app.engine) as session:
            forget_all(session=session)   # temporary identities a crashed console left
            session.commit()
    name = console.ensure_first_admin(as_name)
    console.bind()
    if console.mode is not ConsoleMode.live:
        app.scheduler.catch_up()
    await app.drain()
    if name:
        console.act_as(name)
    if not interactive:
        source = script if script is not None else sys.stdin
        await console.run_lines(source)
        return 0
    print("值班机器人控制台。输入 /help 查看命令，:help 查看控制台指令，:quit 退出。", file=out)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.bot.tick_seconds)
            if not stop.is_set():
                await console.tick_real_time()

    task = asyncio.create_task(ticker())
    try:
        while True:
            try:
                raw = await loop.run_in_executor(None, input, f"{console.speaker or '?'}> ")
            except EOFError:
                break
            if not await console.line(raw):
                break
    finally:
        stop.set()
        await task
    return 0
