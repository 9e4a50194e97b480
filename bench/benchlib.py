"""Shared by the benchmarks: a throw-away PostgreSQL schema, a free loopback port, a
percentile, and for the callback benchmarks a recorder of handled updates.

The benchmarks are run as scripts (``python bench/bench_tick.py``), so they import this
module by its bare name.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.app import App
from bot.models import ProcessedUpdate
from bot.one_use import SCOPE_SUFFIX
from core.db import make_engine
from core.messages import Inbound
from core.outbox import OutboxMessage


@contextmanager
def pg_schema(url: str) -> Iterator[Engine]:
    """An engine on a fresh schema that is dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, search_path=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by rank; NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def wait_until_up(url: str, *, method: str = "GET") -> None:
    """Wait until something answers HTTP at ``url`` (any status), up to 20 s."""
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            try:
                await client.request(method, url, json={} if method == "POST" else None)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class HandledRecorder:
    """Wraps the app's handler: when each update was handled (monotonic seconds)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.done: dict[str, float] = {}
        self.target = 0
        self.reached = asyncio.Event()

    async def __call__(self, inbound: Inbound) -> Any:
        try:
            return await self.app.handle(inbound)
        finally:
            self.done[inbound.update_id] = time.monotonic()
            if len(self.done) >= self.target:
                self.reached.set()

    def expect(self, total: int) -> None:
        """Set ``reached`` once ``total`` updates have been handled."""
        self.target = total
        self.reached.clear()
        if len(self.done) >= total:
            self.reached.set()


def ledger_and_outbox_counts(engine: Engine) -> tuple[int, int]:
    """Rows in the update ledger (not the one-use keys kept beside them) and in the outbox."""
    with Session(engine) as session:
        updates = session.exec(select(func.count()).select_from(ProcessedUpdate).where(
            col(ProcessedUpdate.platform).not_like(f"%{SCOPE_SUFFIX}"))).one()
        rows = session.exec(select(func.count()).select_from(OutboxMessage)).one()
    return int(updates), int(rows)
