"""The sandbox a drill runs on: a throw-away database and folders, never the live ones.

Drills — ``dutybot drill``, ``dutybot console`` without ``--live``, ``dutybot demo`` —
run on a :func:`sandbox`: a temporary folder holding

* the database: a copy of the configured SQLite database, made with SQLite's online
  backup API (consistent while ``dutybot run`` writes to it; the live file is only
  read), then migrated to the newest schema; or an empty database with ``empty=True``,
  or when the configured one does not exist yet. A PostgreSQL database has no cheap
  copy: the drill runs on an empty SQLite database and says so;
* the evidence folder, and with it the held pictures and files (``<evidence_dir>/held``).

The scheduled backup (``[backup] schedule``) is off in a sandbox.

Everything is deleted when the ``with`` block ends. The settings it yields are the
configured ones (rules, calendar, roster patterns, briefing …) with only those paths
changed, so a drill behaves like the live bot.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from core.db import check_schema, make_engine, upgrade
from core.errors import SchemaOutOfDate

DB_NAME = "drill.db"


@dataclass(frozen=True)
class Sandbox:
    """A drill's own database and folders.

    Attributes:
        settings: the configured settings, pointing at the sandbox.
        directory: the temporary folder (deleted at the end).
        note: one Chinese line telling the operator what the drill runs on.
        copied: the live database was copied (False: an empty database).
    """

    settings: Settings
    directory: Path
    note: str
    copied: bool


def copy_sqlite(source: Path, target: Path, *, pages: int = -1,
                progress: Callable[[int, int, int], object] | None = None) -> None:
    """Copy the SQLite database ``source`` to ``target`` with the online backup API.

    The copy is one consistent snapshot however busy the writers are: the source
    connection holds a single read transaction for the whole copy (a WAL reader blocks
    no writer), so a copy in steps of ``pages`` pages (``-1``: one step) never restarts;
    ``progress(status, remaining, total)`` (pages) is called after each step.

    Raises:
        sqlite3.Error: the source cannot be read.
    """
    try:
        src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:   # e.g. a read-only folder holding a WAL database
        src = sqlite3.connect(source, isolation_level=None)
    try:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()   # the snapshot starts here
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=pages, progress=progress)
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None: not SQLite, or in memory)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def _up_to_date(url: str) -> None:
    """Migrate the sandbox database to the newest schema (a copy of an older live
    database too: only the copy changes).

    Raises:
        SchemaOutOfDate: the copy is newer than this program.
    """
    engine = make_engine(url)
    try:
        try:
            check_schema(engine)
        except SchemaOutOfDate:
            from alembic.util import CommandError  # here: Alembic only when migrating

            with contextlib.suppress(CommandError):   # newer than us: check_schema says so
                upgrade(engine)
            check_schema(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def sandbox(settings: Settings, *, empty: bool = False, prefix: str = "dutybot-drill-") -> Iterator[Sandbox]:
    """A sandbox for a drill on ``settings``' deployment; see the module docstring.

    Args:
        settings: the configured settings (not changed).
        empty: start from an empty database instead of a copy of the live one.
        prefix: the temporary folder's name prefix.

    Raises:
        sqlite3.Error: the live SQLite database cannot be read.
        SchemaOutOfDate: the live database is newer than this program.
    """
    live_url = settings.database_url()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(tmp)
        target = folder / DB_NAME
        live = sqlite_file(live_url)
        copied = False
        if empty:
            note = "演练模式：在空的临时数据库上运行，不会写入正式数据库；退出后即删除。"
        elif live is None and live_url.startswith("postgres"):
            note = ("演练模式：正式数据库为 PostgreSQL，无法快速复制，本次在空的临时数据库上运行，"
                    "不会写入正式数据库；退出后即删除。")
        elif live is None or not live.exists():
            note = "演练模式：正式数据库尚不存在，本次在空的临时数据库上运行；退出后即删除。"
        else:
            copy_sqlite(live, target)
            copied = True
            note = (f"演练模式：在正式数据库（{live}）的临时副本上运行，不会写入正式数据库；"
                    "退出后副本即删除。")
        _up_to_date(f"sqlite:///{target}")
        drill = settings.model_copy(deep=True)
        drill.database.url = f"sqlite:///{target}"
        drill.incidents.evidence_dir = str(folder / "evidence")
        # A drill that moves its clock past the backup time must not back the drill up
        # into the live backup folder (and rotate the real backups away).
        drill.backup.schedule = ""
        # Nor page real phones (电话/短信提醒) about drill incidents.
        drill.paging.enabled = False
        yield Sandbox(settings=drill, directory=folder, note=note, copied=copied)
