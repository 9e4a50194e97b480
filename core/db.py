"""Storage: engines, sessions, the UTC column type, and Alembic migrations.

SQLite (embedded default) runs in WAL mode with foreign keys on and a busy timeout;
PostgreSQL is reached through psycopg 3, the ``postgres`` extra (without it
:func:`make_engine` raises :class:`~core.errors.MissingExtra`). The schema is only ever
created by Alembic (``dutybot db upgrade``); the bot refuses to start on an out-of-date
schema.

Alembic itself is imported only when it is needed (issue 21: it is a tenth of a start): to
migrate, and to say why a database is not at the newest migration. A database that is
(every start of a deployed service) is recognised without it: its ``alembic_version`` row
is read with SQLAlchemy and compared with the newest migration read from the version
files' ``revision``/``down_revision`` lines (:func:`_shipped_head`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from sqlalchemy import DateTime, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session
from sqlmodel.sql.expression import Select

from core.errors import MissingExtra, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 10_000
_T0 = TypeVar("_T0")
_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")
_T4 = TypeVar("_T4")
_T5 = TypeVar("_T5")
_T6 = TypeVar("_T6")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; SQLite's naive values come back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, *, search_path: str | None = None, echo: bool = False) -> Engine:
    """An engine for ``url``; ``search_path`` pins a PostgreSQL schema (used by tests).

    Raises:
        MissingExtra: a PostgreSQL URL, and psycopg (``dutybot[postgres]``) is not installed.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, open transactions (savepoints work)
            # and take the write lock at BEGIN: a deferred transaction that reads, then
            # writes after another thread committed, fails with SQLITE_BUSY at once.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if search_path:
        connect_args["options"] = f"-csearch_path={search_path}"
    try:
        engine = create_engine(url, echo=echo, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        # The driver is the ``postgres`` extra (pyproject.toml), not a core dependency.
        if (exc.name or "").partition(".")[0] == "psycopg":
            raise MissingExtra("postgres", "PostgreSQL") from None
        raise
    _ping_when_idle(engine)
    return engine


#: A pooled PostgreSQL connection that has been idle this long is pinged before use.
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "core.db.idle_since"
_monotonic = time.monotonic   # the clock the idle time is read from (tests move it)


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use when it has been idle for
    :data:`PING_AFTER_IDLE_S` seconds; a failed ping drops the pool's connections
    and the checkout gets a new one (as ``pool_pre_ping`` does, whose ping on every
    checkout was a round trip per transaction: three per command round trip, issue 21).

    A connection checked in within the last second is used as it is. A database restart
    or failover takes longer than that, so the connections it broke have been idle longer
    and are pinged; one that breaks all the same fails its statement, which SQLAlchemy
    reports as a disconnect (the pool is emptied) and the bot as a failed command: the
    update is not marked processed and is apologised for (docs/architecture.md).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = _monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or _monotonic() - since < PING_AFTER_IDLE_S:
            return   # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise InvalidatePoolError(f"ping after {(_monotonic() - since):.0f} s idle failed: {exc}") from exc


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "core:migrations")
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str:
    """The newest migration this program ships."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(create_engine("sqlite://")))
    head = script.get_current_head()
    assert head is not None
    return head


#: Alembic's version table (its default name: core/migrations/env.py names no other).
VERSION_TABLE = "alembic_version"
#: The migrations (``script_location = core:migrations``).
VERSIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"
# A version file's own lines ``revision = '0020'`` and ``down_revision = '0019'`` (or None),
# and a ``branch_labels`` or ``depends_on`` line saying anything but None.
_REVISION_LINE = re.compile(r"""^revision\s*(?::[^=\n]*)?=\s*(['"])([^'"\n]+)\1\s*$""", re.MULTILINE)
_DOWN_REVISION_LINE = re.compile(
    r"""^down_revision\s*(?::[^=\n]*)?=\s*(?:None|(['"])([^'"\n]+)\1)\s*$""", re.MULTILINE)
_BRANCHING_LINE = re.compile(r"^(?:branch_labels|depends_on)\s*(?::[^=\n]*)?=(?!\s*None\s*$)", re.MULTILINE)


def _shipped_head() -> str | None:
    """The newest migration this program ships, read from the version files' text without
    importing Alembic; None whenever that reading is not plainly certain (a file without
    exactly one literal ``revision`` and ``down_revision`` line, branch labels or
    dependencies, anything but one line of revisions from the first to the newest):
    :func:`head_revision` is then asked instead.

    The files are those Alembic loads from ``VERSIONS_DIR`` (``*.py``, not ``__init__``
    nor an editor's ``.#`` lock file).
    """
    parents: dict[str, str | None] = {}
    try:
        for path in VERSIONS_DIR.iterdir():
            if path.suffix != ".py" or path.name.startswith(("__init__", ".#")) or not path.is_file():
                continue
            source = path.read_text(encoding="utf-8")
            revisions = _REVISION_LINE.findall(source)
            downs = _DOWN_REVISION_LINE.findall(source)
            if (len(revisions) != 1 or len(downs) != 1 or revisions[0][1] in parents
                    or _BRANCHING_LINE.search(source)):
                return None
            parents[revisions[0][1]] = downs[0][1] or None
    except (OSError, UnicodeDecodeError):
        return None
    heads = set(parents) - set(parents.values())
    if len(heads) != 1:
        return None
    head = heads.pop()
    # From the head down to the first revision, through every revision once: one line.
    revision: str | None = head
    for _ in parents:
        if revision is None or revision not in parents:
            return None   # the line ends early (a second line), or a parent no file holds
        revision = parents[revision]
    return head if revision is None else None


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = [row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
        if len(rows) <= 1:
            return rows[0] if rows else None
        # Several heads stored: Alembic's own refusal (CommandError), as ever.
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database that is not at the newest migration.

    Raises:
        SchemaOutOfDate: with the command that fixes it.
    """
    current = current_revision(engine)
    if current is not None and current == _shipped_head():
        return   # the newest: no need to import Alembic (every start of a deployed service)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDate("数据库尚未初始化：请先运行 dutybot db upgrade（或 dutybot init）")
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(engine))
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise SchemaOutOfDate(
            f"数据库结构版本 {current} 比本程序更新：请升级 dutybot 程序后再启动")
    raise SchemaOutOfDate(
        f"数据库结构版本 {current} 已过期（最新 {head}）：请运行 dutybot db upgrade")


@overload
def select_row(c0: _T0, c1: _T1, c2: _T2, c3: _T3, c4: _T4, /) -> Select[_T0, _T1, _T2, _T3, _T4]: ...
@overload
def select_row(c0: _T0, c1: _T1, c2: _T2, c3: _T3, c4: _T4, c5: _T5, /) -> Select[_T0, _T1, _T2, _T3, _T4, _T5]: ...
@overload
def select_row(c0: _T0, c1: _T1, c2: _T2, c3: _T3, c4: _T4, c5: _T5, c6: _T6, /
               ) -> Select[_T0, _T1, _T2, _T3, _T4, _T5, _T6]: ...


def select_row(*columns: Any) -> Select[*tuple[Any, ...]]:
    """``sqlmodel.select`` of five to seven model attributes (``Model.field``, not ``col()``
    or a whole model), typed as the row of their types: SQLModel's own overloads stop at four.
    """
    return Select(*columns)


def no_flush_wait(conn: Connection) -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL reaches the disk
    (``SET LOCAL synchronous_commit TO OFF``; a disk flush is 4 ms on the test machine).
    Only for writes whose loss in a database crash (the last ~0.2 s of such commits) costs
    a repeat, never a loss: the outbox sender's bookkeeping (a claim, its release, a sent
    mark), a chunk of escalations that runs again, a question's answer. Never for what
    people report."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def flush_wait_off() -> ColumnElement[bool]:
    """:func:`no_flush_wait` inside a statement, for PostgreSQL: a condition that is
    always true and, evaluated once before the statement's rows (an InitPlan, the plan's
    one-time filter), sets ``synchronous_commit`` off for the transaction it runs in.
    A write that carries it needs no ``SET LOCAL`` round trip first, and may run on its
    own (autocommit): the setting still holds when its implicit transaction commits."""
    return select(func.set_config("synchronous_commit", "off", True)).scalar_subquery() == "off"
