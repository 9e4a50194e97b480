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

Named locks, by the same means (``<database file>.locks/<name>.lock`` on SQLite, an
advisory lock keyed by database, schema and name on PostgreSQL), always exclusive:

* **One receiver per bot connection** (:func:`hold_receiver`): Telegram polling and
  DingTalk Stream deliver each update to one connection, and two processes polling the
  same bot fight over updates (Telegram answers the second ``409 Conflict``). ``dutybot
  run`` in such a mode holds ``receive-<platform>-<bot>``; a second one on the same
  database is refused with :class:`ReceiverInUse`. Webhook and callback modes take none.
* **A worker is alive while it holds its lock** (:func:`try_acquire`, :func:`is_free`):
  each outbox sender holds ``worker-<id>`` and records the id on the rows it claims; a
  row whose claimer's lock is free belonged to a process that is gone
  (:mod:`bot.outbox`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
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
LOCKS_SUFFIX = ".locks"   # the folder of named locks beside a SQLite database


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


#: What a second receiver is told, by platform (and the mode that receives).
RECEIVER_REFUSALS = {
    "telegram": ("另一个 dutybot run 已在使用同一个 Telegram 机器人接收消息（轮询模式），"
                 "同一机器人只能有一个进程轮询。如需多个进程，请改用 webhook 模式。"),
    "dingtalk": ("另一个 dutybot run 已在使用同一个钉钉应用接收消息（Stream 模式），"
                 "同一应用只能有一个进程接收。如需多个进程，请改用 HTTP 回调模式（dingtalk.mode = \"callback\"）。"),
}


class ReceiverInUse(DutybotError):
    """Another ``dutybot run`` on this database receives for the same bot by polling or a
    stream; the message says what to do.

    Attributes:
        platform: ``telegram`` or ``dingtalk``.
    """

    def __init__(self, *, platform: str) -> None:
        super().__init__(RECEIVER_REFUSALS.get(
            platform, f"另一个 dutybot run 已在使用同一个 {platform} 机器人接收消息，同一机器人只能有一个进程接收。"))
        self.platform = platform


class InstanceLock:
    """A held lock; :meth:`release` (or leaving its ``with`` block) gives it up."""

    def __init__(self, *, file: IO[bytes] | None = None, conn: Connection | None = None,
                 key: int = 0, exclusive: bool = False, remove: Path | None = None) -> None:
        self._file, self._conn, self._key, self.exclusive = file, conn, key, exclusive
        self._remove = remove   # a lock file of one process's life, deleted on release

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._file is not None:
            if self._remove is not None:   # while still locked: nobody is inside it
                with contextlib.suppress(OSError):
                    self._remove.unlink()
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

    def held(self) -> bool:
        """Whether the lock still holds: False once a PostgreSQL lock's own connection was
        lost (the server dropped the lock with the session)."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
            except Exception:
                return False
        return True

    def set_keepalives(self, idle: int, interval: int, count: int) -> None:
        """PostgreSQL: have the server drop this lock's session (and the lock) when its
        peer is gone for ``idle`` + ``interval`` × ``count`` seconds — a machine that
        vanished rather than a process that ended. Nothing to do for a lock file."""
        if self._conn is None:
            return
        for setting, value in (("idle", idle), ("interval", interval), ("count", count)):
            self._conn.execute(text(f"SET tcp_keepalives_{setting} = {int(value)}"))

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


# ---------------------------------------------------------------- named locks

def named_path(engine: Engine, name: str) -> Path | None:
    """The file of lock ``name`` of a SQLite database (None: in memory, or not SQLite)."""
    base = lock_path(engine)
    if base is None:
        return None
    folder = base.with_name(base.name.removesuffix(SUFFIX) + LOCKS_SUFFIX)
    return folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + SUFFIX)


def _named_key(conn: Connection, name: str) -> int:
    """A signed 64-bit advisory-lock key for lock ``name`` of this database and schema."""
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    digest = hashlib.blake2b(f"dutybot-lock:{database}:{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def try_acquire(engine: Engine, name: str, *, remove_on_release: bool = False) -> InstanceLock | None:
    """Take lock ``name`` of ``engine``'s database, exclusive, without waiting.

    Args:
        engine: the database; on PostgreSQL one of its connections is kept for the lock.
        name: what the lock is for (``receive-telegram-123456``, ``worker-3f9a…``).
        remove_on_release: delete the SQLite lock file on release (a name used once, such
            as a worker's: nobody waits for it afterwards).

    Returns:
        The held lock, or None when someone else holds it. An in-memory database is
        nobody else's: its lock is always granted.
    """
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            key = _named_key(conn, name)
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                return InstanceLock(conn=conn, key=key, exclusive=True)
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        conn.close()
        return None
    path = named_path(engine, name)
    if path is None:
        return InstanceLock(exclusive=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "ab")  # noqa: SIM115  (kept open while the lock is held)
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    except BaseException:
        file.close()
        raise
    return InstanceLock(file=file, exclusive=True, remove=path if remove_on_release else None)


def is_free(engine: Engine, name: str, *, remove: bool = False) -> bool | None:
    """Whether nobody holds lock ``name`` now (so its holder, if it had one, is gone).

    Args:
        remove: delete a free SQLite lock file (only for names used once, as a worker's:
            a file deleted under someone about to lock it would give two holders).

    Returns:
        True: free (a SQLite lock file that does not exist is free too); False: held;
        None: cannot tell (an in-memory database).
    """
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            key = _named_key(conn, name)
            free = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            if free:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        except BaseException:
            conn.invalidate()   # never back to the pool holding what it may have taken
            conn.close()
            raise
        conn.close()
        return free
    path = named_path(engine, name)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if remove:
            with contextlib.suppress(OSError):
                path.unlink()
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def receiver_name(platform: str, identity: str) -> str:
    """The lock of the one connection that receives for bot ``identity`` on ``platform``."""
    return f"receive-{platform}-{identity}"


@contextlib.contextmanager
def hold_receiver(settings: Settings, *, platform: str, identity: str) -> Iterator[InstanceLock]:
    """The receiver lock of ``platform``'s bot ``identity`` on the configured database,
    held for the ``with`` block.

    Raises:
        ReceiverInUse: another process receives for that bot.
    """
    engine = make_engine(settings.database_url())
    try:
        lock = try_acquire(engine, receiver_name(platform, identity))
        if lock is None:
            raise ReceiverInUse(platform=platform)
        with lock:
            yield lock
    finally:
        engine.dispose()
