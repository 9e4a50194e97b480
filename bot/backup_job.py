"""Backing up a deployment: :func:`run_backup` (``dutybot backup`` and the daily job), the
rotation of old archives, and the daily job itself.

:func:`run_backup` writes one archive (:func:`bot.backup.make_backup`) of the configured
database and evidence folder into ``[backup] dir`` — or a folder given with ``--to`` — and,
when it went into ``[backup] dir``, deletes old archives there (:func:`rotate`): those
beyond the newest ``keep`` and those older than ``keep_days`` days, the newest always kept.

The daily job (``[backup] schedule``, :func:`register_backup`) is a cron job that starts
the backup on a thread of its own and returns at once: a backup takes minutes, and neither
the scheduler's tick nor — on SQLite — the write lock of the cron transaction may wait for
it. The result is logged; a failure is also told to every active admin in chat
(:func:`tell_admins_failed`: what failed, why, and the command to try it by hand), once per
scheduled time. A backup still running when the next is due is not doubled.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.backup import (
    ARCHIVE_RE,
    BackupError,
    BackupResult,
    Progress,
    checksum_path,
    database_kind,
    make_backup,
    pg_tool,
)
from bot.config import Settings
from bot.scheduler import Scheduler
from core.clock import SHANGHAI, fmt_short_zh, local
from core.db import session_scope
from core.messages import Outbound
from core.outbox import enqueue
from people.models import Role
from people.service import people_with_role

log = logging.getLogger(__name__)

#: The daily job's name on the scheduler.
BACKUP_JOB = "bot.backup"


def _quiet(_line: str) -> None:
    """A progress callback that says nothing (the daily job)."""


def backups_in(folder: Path) -> list[tuple[datetime, Path]]:
    """The archives in ``folder`` (by their names), newest first."""
    if not folder.is_dir():
        return []
    found: list[tuple[datetime, int, Path]] = []
    for path in folder.iterdir():
        match = ARCHIVE_RE.match(path.name)
        if match and path.is_file():
            at = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=SHANGHAI)
            found.append((at, int(match.group(2) or 1), path))
    found.sort(key=lambda row: (row[0], row[1]), reverse=True)
    return [(at, path) for at, _n, path in found]


def rotate(*, folder: Path, keep: int, keep_days: int, now: datetime) -> list[Path]:
    """Delete the archives (and their ``.sha256``) beyond the newest ``keep`` or older than
    ``keep_days`` days (0: no such limit); the newest is always kept. Returns those deleted."""
    doomed = [path for index, (at, path) in enumerate(backups_in(folder))
              if index > 0 and ((keep and index >= keep) or (keep_days and at < now - timedelta(days=keep_days)))]
    for path in doomed:
        path.unlink(missing_ok=True)
        checksum_path(path).unlink(missing_ok=True)
    return doomed


def rotation_zh(keep: int, keep_days: int) -> str:
    """The rotation rule in words: ``保留最近 14 份、30 天内的备份``."""
    parts = ([f"最近 {keep} 份"] if keep else []) + ([f"{keep_days} 天内"] if keep_days else [])
    return f"保留{'、'.join(parts)}的备份" if parts else "不自动删除旧备份"


def run_backup(settings: Settings, *, now: datetime, to: Path | None = None,
               progress: Progress = _quiet) -> tuple[BackupResult, list[Path]]:
    """A backup of ``settings``' deployment into ``to`` (default ``[backup] dir``), then, when
    it went into ``[backup] dir``, its rotation. Returns the archive and the archives deleted.

    Raises:
        BackupError: with what went wrong and what to do.
    """
    configured = settings.resolve(settings.backup.dir)
    folder = to if to is not None else configured
    result = make_backup(database_url=settings.database_url(),
                         evidence_dir=settings.resolve(settings.incidents.evidence_dir),
                         folder=folder, now=now, progress=progress)
    removed: list[Path] = []
    if folder.resolve() == configured.resolve():
        removed = rotate(folder=folder, keep=settings.backup.keep, keep_days=settings.backup.keep_days, now=now)
        if removed:
            progress(f"已删除旧备份 {len(removed)} 份（{rotation_zh(settings.backup.keep, settings.backup.keep_days)}）："
                     + "、".join(p.name for p in removed))
    return result, removed


def tell_admins_failed(engine: Engine, *, fire: datetime, now: datetime, error: Exception) -> int:
    """Queue 【备份失败】 to every active admin (once per scheduled time); how many."""
    why = error.message if isinstance(error, BackupError) else f"{type(error).__name__}: {error}"
    text = (f"【备份失败】{fmt_short_zh(fire)} 的定时备份没有完成。\n原因：{why}\n"
            "请在服务器上运行 dutybot backup 重试，并查看日志；在备份恢复正常之前，"
            "数据库和证据文件没有新的备份。")
    key = f"backup:failed:{local(fire):%Y%m%d%H%M}"
    with session_scope(engine) as session:
        admins = people_with_role(session=session, role=Role.admin)
        for admin in admins:
            enqueue(session=session, message=Outbound(text=text, person_id=admin.id), now=now, event_key=key)
    if not admins:
        log.error("scheduled backup failed and there is no active admin to tell")
    return len(admins)


class ScheduledBackup:
    """The cron job of ``[backup] schedule``: starts :func:`run_backup` on its own thread
    and returns at once; a backup still running when the next is due is not doubled."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings, self.engine = settings, engine   # engine: where admins are told of a failure
        self.last: BackupResult | None = None
        self.last_error: Exception | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, session: Session, fire: datetime, now: datetime) -> None:
        if self._thread is not None and self._thread.is_alive():
            log.warning("the previous backup is still running; the backup due at %s is skipped", local(fire))
            return
        self._thread = threading.Thread(target=self._run, args=(fire, now), name="dutybot-backup", daemon=True)
        self._thread.start()

    def _run(self, fire: datetime, now: datetime) -> None:
        try:
            result, removed = run_backup(self.settings, now=now)
        except Exception as exc:
            self.last_error = exc
            log.error("scheduled backup failed: %s", exc, exc_info=not isinstance(exc, BackupError))
            if self.engine is not None:
                try:
                    tell_admins_failed(self.engine, fire=fire, now=now, error=exc)
                except Exception:
                    log.exception("the admins could not be told that the backup failed")
            return
        self.last, self.last_error = result, None
        log.info("backup written: %s (%d bytes, %s database at %s, %d evidence files); %d old backup(s) deleted",
                 result.path, result.size, result.database_kind, result.revision, result.evidence_files,
                 len(removed))

    def wait(self, timeout: float | None = None) -> BackupResult | None:
        """Wait for the backup in progress (if any) to end; the newest result."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.last


def register_backup(scheduler: Scheduler, *, settings: Settings,
                    engine: Engine | None = None) -> ScheduledBackup | None:
    """The daily backup at ``[backup] schedule`` (Beijing time); None when it is off."""
    schedule = settings.backup.schedule
    if not schedule:
        return None
    hour, minute = map(int, schedule.split(":"))
    try:
        if database_kind(settings.database_url()) == "postgresql":
            pg_tool("pg_dump")
    except BackupError as exc:   # said at start, not first at 03:30
        log.warning("[backup] schedule is set, but the backups will fail: %s", exc.message)
    job = ScheduledBackup(settings, engine)
    scheduler.register_cron(BACKUP_JOB, job, hour=hour, minute=minute)
    return job
