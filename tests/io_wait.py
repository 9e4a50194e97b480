"""Waiting on real I/O in tests (a loopback server, a thread), never on time logic: time
logic moves a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll until ``check()`` is true; fail after ``timeout`` seconds of real time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
