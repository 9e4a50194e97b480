"""Who is using the live database: the instance lock.

``dutybot run`` (every adapter, the console included) holds the lock of its database
*shared*: several workers may run together. ``dutybot console --live`` holds it
*exclusive*: a console never acts on a database a running service uses, and a service
does not start under an open live console. Drills (``dutybot drill``, ``dutybot console``
without ``--live``, ``dutybot demo``) run on a sandbox (:mod:`bot.sandbox`) and take no
lock.

The lock ends with its process, however the process ends:

* **SQLite** — ``flock`` on ``<database file>.lock`` beside the database file (the file is
  left in place; only the lock on it matters). An in-memory database has no lock.
* **PostgreSQL** — a session advisory lock (``pg_try_advisory_lock[_shared]``) held on a
  connection of its own, keyed by the database and schema; the server drops it when that
  connection closes.

Usage::

    with hold(settings, exclusive=True):     # raises DatabaseInUse when refused
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from bot.config import Settings
from core.db import make_engine
from core.errors import DutybotError

SUFFIX = ".lock"


class Holder(StrEnum):
    """Who holds the lock that refused us."""

    service = "service"   # dutybot run (shared)
    console = "console"   # dutybot console --live (exclusive)


class DatabaseInUse(DutybotError):
    """The database is in use by another dutybot; the message says what to do.

    Attributes:
        holder: who holds it.
        where: the database (file path, or the PostgreSQL URL without password).
    """

    def __init__(self, *, exclusive: bool, holder: Holder, where: str) -> None:
        if not exclusive:
            message = f"dutybot console --live 正在使用该数据库（{where}），请先退出该控制台再启动服务。"
        elif holder is Holder.service:
            message = f"dutybot run 正在使用该数据库（{where}），请先停止服务或去掉 --live 以演练模式运行。"
        else:
            message = (f"另一个 dutybot console --live 正在使用该数据库（{where}），"
                       "请先退出它或去掉 --live 以演练模式运行。")
        super().__init__(message)
        self.holder, self.where = holder, where


class InstanceLock:
    """A held lock; :meth:`release` (or leaving its ``with`` block) gives it up."""

    def __init__(self, *, file: IO[bytes] | None = None, conn: Connection | None = None,
                 key: int = 0, exclusive: bool = False) -> None:
        self._file, self._conn, self._key, self.exclusive = file, conn, key, exclusive

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            unlock = "pg_advisory_unlock" if self.exclusive else "pg_advisory_unlock_shared"
            with contextlib.suppress(Exception):
                self._conn.execute(text(f"SELECT {unlock}(:k)"), {"k": self._key})
            # Closing for real (not back to the pool) ends the session and any lock left.
            self._conn.invalidate()
            self._conn.close()
            self._conn = None

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(engine: Engine) -> Path | None:
    """The lock file of a SQLite database (None: in memory, or not SQLite)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + SUFFIX)


def acquire(engine: Engine, *, exclusive: bool) -> InstanceLock:
    """Take the instance lock of ``engine``'s database, without waiting.

    Args:
        engine: the database; on PostgreSQL one of its connections is kept for the lock.
        exclusive: True for ``console --live``, False for ``dutybot run``.

    Raises:
        DatabaseInUse: someone holds it in a conflicting mode.
    """
    if engine.dialect.name == "postgresql":
        return _acquire_pg(engine, exclusive)
    path = lock_path(engine)
    if path is None:
        return InstanceLock(exclusive=exclusive)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "ab")  # noqa: SIM115  (kept open while the lock is held)
    try:
        fcntl.flock(file.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = Holder.console
        if exclusive:
            # Shared still possible: only services (shared) hold it.
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
                holder = Holder.service
        file.close()
        raise DatabaseInUse(exclusive=exclusive, holder=holder, where=str(path.with_suffix(""))) from None
    except BaseException:
        file.close()
        raise
    return InstanceLock(file=file, exclusive=exclusive)


def _key(conn: Connection) -> int:
    """A signed 64-bit advisory-lock key for this database and schema."""
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    digest = hashlib.blake2b(f"dutybot-instance:{database}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _acquire_pg(engine: Engine, exclusive: bool) -> InstanceLock:
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        key = _key(conn)
        take = "pg_try_advisory_lock" if exclusive else "pg_try_advisory_lock_shared"
        if conn.execute(text(f"SELECT {take}(:k)"), {"k": key}).scalar():
            return InstanceLock(conn=conn, key=key, exclusive=exclusive)
        holder = Holder.console
        if exclusive and conn.execute(text("SELECT pg_try_advisory_lock_shared(:k)"), {"k": key}).scalar():
            conn.execute(text("SELECT pg_advisory_unlock_shared(:k)"), {"k": key})
            holder = Holder.service
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    conn.invalidate()
    conn.close()
    where = engine.url.render_as_string(hide_password=True)
    raise DatabaseInUse(exclusive=exclusive, holder=holder, where=where)


@contextlib.contextmanager
def hold(settings: Settings, *, exclusive: bool) -> Iterator[InstanceLock]:
    """The lock of the configured database, held for the ``with`` block.

    Raises:
        DatabaseInUse: someone holds it in a conflicting mode.
    """
    engine = make_engine(settings.database_url())
    try:
        with acquire(engine, exclusive=exclusive) as lock:
            yield lock
    finally:
        engine.dispose()
