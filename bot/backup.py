"""Backups: one archive holding a consistent copy of the database and the evidence files.

:func:`make_backup` writes one archive; ``dutybot backup`` and the daily job reach it
through :mod:`bot.backup_job` (which also rotates old archives), and ``dutybot restore``
reads an archive back (:mod:`bot.restore`). An archive
``dutybot-backup-YYYYMMDD-HHMMSS.tar.gz`` (Beijing time) holds, in this order:

* ``database/dutybot.db``: the SQLite database, copied with SQLite's online backup API in
  one read transaction (:func:`bot.sandbox.copy_sqlite`): one snapshot, taken while the
  bot goes on writing, checked with ``PRAGMA integrity_check``; or
  ``database/dutybot.pgdump``: ``pg_dump --format=custom`` of the PostgreSQL database (one
  snapshot too);
* ``evidence/…``: every file under ``[incidents] evidence_dir``, the held pictures and
  files (``held/``) included. They are read after the database snapshot, and evidence is
  written before its row and never changed, so every row of the snapshot finds its file
  (a file newer than the snapshot may come along; it harms nothing);
* ``manifest.json``: when and by which dutybot version it was made, the schema revision,
  the database kind, and every file with its size and SHA-256.

Beside it, ``<archive>.sha256`` holds the SHA-256 of the whole archive in ``sha256sum``
format. An archive is written under a temporary name and renamed when complete; one backup
at a time writes to a folder (``flock`` on ``.dutybot-backup.lock``, which also makes any
``.part`` file found there a leftover of an interrupted backup, deleted). Progress goes
to a callback as Chinese lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import IO, Literal, cast

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.sandbox import copy_sqlite, sqlite_file
from core.clock import local
from core.db import current_revision, make_engine, normalize_url
from core.errors import DutybotError
from incidents.evidence import fmt_size

FORMAT, FORMAT_VERSION = "dutybot-backup", 1
MANIFEST = "manifest.json"
DB_MEMBERS = {"sqlite": "database/dutybot.db", "postgresql": "database/dutybot.pgdump"}
EVIDENCE_PREFIX = "evidence/"
ARCHIVE_RE = re.compile(r"^dutybot-backup-(\d{8}-\d{6})(?:-(\d+))?\.tar\.gz$")
LOCK_NAME = ".dutybot-backup.lock"
PART_PREFIX = ".dutybot-backup-"
#: Pages (4 KiB) a SQLite copy takes per step; progress is reported between steps.
SQLITE_PAGES_PER_STEP = 4096
#: The Debian package with pg_dump and pg_restore.
PG_CLIENT_PACKAGE = "postgresql-client"

DatabaseKind = Literal["sqlite", "postgresql"]
Progress = Callable[[str], None]


class BackupError(DutybotError):
    """A backup or restore was refused or failed; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    """One archive written by :func:`make_backup`."""

    path: Path
    checksum_path: Path
    sha256: str
    size: int
    database_kind: DatabaseKind
    revision: str
    evidence_files: int


def _quiet(_line: str) -> None:
    """A progress callback that says nothing (the scheduled job)."""


def program_version() -> str:
    """The installed dutybot version, as the manifest records it."""
    try:
        return distribution_version("dutybot")
    except PackageNotFoundError:   # a source tree never installed
        return "unknown"


def database_kind(url: str) -> DatabaseKind:
    """``sqlite`` or ``postgresql``.

    Raises:
        BackupError: any other database, or SQLite in memory.
    """
    url = normalize_url(url)
    if url.startswith("postgresql"):
        return "postgresql"
    if url.startswith("sqlite") and sqlite_file(url) is not None:
        return "sqlite"
    raise BackupError(f"无法备份或恢复此数据库（{url.split('@')[-1]}）：只支持 SQLite 数据库文件和 PostgreSQL")


def checksum_path(archive: Path) -> Path:
    """Where the archive's SHA-256 is written: ``<archive>.sha256``."""
    return archive.with_name(archive.name + ".sha256")


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


# ---- PostgreSQL client tools -------------------------------------------------------------

def pg_tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``.

    Raises:
        BackupError: not installed, naming the Debian package to install.
    """
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"找不到 {name}：PostgreSQL 数据库的备份和恢复要用它。请安装 Debian 软件包 {PG_CLIENT_PACKAGE}"
            f"（sudo apt install {PG_CLIENT_PACKAGE}），其主版本不低于数据库服务器的版本。")
    return found


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The database as a libpq URI without the password, and the environment carrying it
    (``PGPASSWORD``): a password on a command line is visible to every user of the host."""
    parsed = make_url(normalize_url(url))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def pg_where(url: str) -> str:
    """``host:port/database`` for messages (no user, no password)."""
    parsed = make_url(normalize_url(url))
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def run_pg(argv: list[str], env: dict[str, str], what: str) -> None:
    """Run a PostgreSQL client tool.

    Raises:
        BackupError: it failed, with the last lines it wrote.
    """
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        said = "\n".join(proc.stderr.strip().splitlines()[-5:]) or "（没有输出）"
        raise BackupError(f"{what}失败（退出码 {proc.returncode}）：\n{said}")


# ---- writing an archive --------------------------------------------------------------------

class _HashingReader:
    """A file read through it is hashed on the way (what the archive got is what is hashed)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.hasher = fh, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.hasher.update(data)
        return data


@dataclass(frozen=True)
class _Entry:
    """One file of the archive, as the manifest lists it."""

    path: str
    size: int
    sha256: str


def _add_file(tar: tarfile.TarFile, path: Path, member: str) -> _Entry | None:
    """Add one file; its manifest entry, or None when it vanished (a held file expired)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        stat = os.fstat(fh.fileno())
        info = tarfile.TarInfo(member)
        info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
        reader = _HashingReader(fh)
        tar.addfile(info, cast(IO[bytes], reader))   # tarfile only calls read()
    return _Entry(member, stat.st_size, reader.hasher.hexdigest())


def _size(path: Path) -> int:
    """The file's size (0: it vanished)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _evidence_files(evidence_dir: Path, skip: Path) -> list[tuple[Path, str]]:
    """(file, relative POSIX path) under the evidence folder, sorted; symbolic links,
    half-written temporary files and the backup folder (should it lie inside) left out."""
    if not evidence_dir.is_dir():
        return []
    found: list[tuple[Path, str]] = []
    skip = skip.resolve()
    for root, dirs, files in os.walk(evidence_dir):
        folder = Path(root)
        dirs[:] = sorted(d for d in dirs if (folder / d).resolve() != skip and not (folder / d).is_symlink())
        for name in sorted(files):
            path = folder / name
            if path.is_symlink() or (name.startswith(".tmp-") and name.endswith(".part")):
                continue
            found.append((path, path.relative_to(evidence_dir).as_posix()))
    return found


class _Percent:
    """Reports ``label 40%`` each time another tenth is done."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label, self.shown = progress, label, 0

    def __call__(self, done: float, total: float) -> None:
        tenth = int(done * 10 // total) if total else 10
        if tenth > self.shown and tenth < 10:
            self.shown = tenth
            self.progress(f"  {self.label} {tenth * 10}%")


def _copy_sqlite(source: Path, target: Path, progress: Progress) -> str:
    """Copy, check and date the SQLite database; returns its schema revision.

    Raises:
        BackupError: missing, unreadable, damaged or never initialised.
    """
    if not source.is_file():
        raise BackupError(f"找不到数据库文件 {source}：请检查配置 [database] url")
    progress(f"正在复制 SQLite 数据库 {source}（在线备份，服务可照常运行，复制的是同一时刻的完整数据）……")
    percent = _Percent(progress, "数据库已复制")
    try:
        copy_sqlite(source, target, pages=SQLITE_PAGES_PER_STEP,
                    progress=lambda _status, remaining, total: percent(total - remaining, total))
        with contextlib.closing(sqlite3.connect(target)) as check:
            verdict = [row[0] for row in check.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        raise BackupError(f"无法读取数据库 {source}：{exc}") from None
    if verdict != ["ok"]:
        raise BackupError(f"数据库副本未通过完整性检查（{'；'.join(verdict[:3])}）：数据库 {source} 可能已损坏，"
                          "请停止服务后用 sqlite3 检查")
    engine = make_engine(f"sqlite:///{target}")
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if revision is None:
        raise BackupError(f"数据库 {source} 尚未初始化，没有可备份的数据（初始化：dutybot db upgrade）")
    progress(f"数据库已复制：{fmt_size(target.stat().st_size)}，结构版本 {revision}")
    return revision


def _dump_postgres(url: str, target: Path, progress: Progress) -> str:
    """``pg_dump`` the database into ``target``; returns its schema revision.

    Raises:
        BackupError: pg_dump is missing or failed, or the database was never initialised.
    """
    exe = pg_tool("pg_dump")
    engine = make_engine(url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        raise BackupError(f"无法连接数据库 {pg_where(url)}：{str(getattr(exc, 'orig', None) or exc).strip()}") from None
    finally:
        engine.dispose()
    if revision is None:
        raise BackupError(f"数据库 {pg_where(url)} 尚未初始化，没有可备份的数据（初始化：dutybot db upgrade）")
    progress(f"数据库是 PostgreSQL：正在用 pg_dump 导出 {pg_where(url)}（自定义格式；pg_dump 导出同一时刻的快照，"
             "服务可照常运行）……")
    conninfo, env = libpq_target(url)
    run_pg([exe, "--format=custom", "--no-password", f"--file={target}", f"--dbname={conninfo}"], env, "pg_dump 导出")
    progress(f"数据库已导出：{fmt_size(target.stat().st_size)}，结构版本 {revision}")
    return revision


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's backup lock (one backup at a time writes there).

    Raises:
        BackupError: another backup holds it.
    """
    with (folder / LOCK_NAME).open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"另一个备份正在写入 {folder}，请等它完成后再备份") from None
        yield


def archive_name(now: datetime, folder: Path) -> str:
    """``dutybot-backup-20261123-033000.tar.gz``; ``-2``, ``-3`` … when that name is taken."""
    stamp = local(now).strftime("%Y%m%d-%H%M%S")
    name, n = f"dutybot-backup-{stamp}.tar.gz", 1
    while (folder / name).exists():
        n += 1
        name = f"dutybot-backup-{stamp}-{n}.tar.gz"
    return name


def make_backup(*, database_url: str, evidence_dir: Path, folder: Path, now: datetime,
                progress: Progress = _quiet) -> BackupResult:
    """Write one archive of the database and the evidence files into ``folder``.

    Args:
        database_url: the database (SQLite file or PostgreSQL).
        evidence_dir: ``[incidents] evidence_dir``, resolved.
        folder: where the archive goes (made if missing, readable by its owner only).
        now: names and dates the archive.
        progress: receives Chinese progress lines.

    Raises:
        BackupError: with what went wrong and what to do.
    """
    kind = database_kind(database_url)
    if kind == "postgresql":
        pg_tool("pg_dump")   # before anything is written
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"无法创建备份目录 {folder}：{exc.strerror}") from None
    with folder_lock(folder):
        for stale in folder.glob(PART_PREFIX + "*.part"):   # an interrupted backup's leftovers
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=PART_PREFIX, suffix=".part") as work:
            db_copy = Path(work) / Path(DB_MEMBERS[kind]).name
            if kind == "sqlite":
                source = sqlite_file(normalize_url(database_url))
                assert source is not None
                revision = _copy_sqlite(source, db_copy, progress)
            else:
                revision = _dump_postgres(database_url, db_copy, progress)
            return _write_archive(kind=kind, revision=revision, db_copy=db_copy, evidence_dir=evidence_dir,
                                  folder=folder, now=now, progress=progress)


def _write_archive(*, kind: DatabaseKind, revision: str, db_copy: Path, evidence_dir: Path,
                   folder: Path, now: datetime, progress: Progress) -> BackupResult:
    evidence = _evidence_files(evidence_dir, folder)
    total = sum(_size(path) for path, _ in evidence)
    fd, part_name = tempfile.mkstemp(dir=folder, prefix=PART_PREFIX, suffix=".tar.gz.part")
    part = Path(part_name)
    try:
        entries: list[_Entry] = []
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                entry = _add_file(tar, db_copy, DB_MEMBERS[kind])
                assert entry is not None
                entries.append(entry)
                if evidence:
                    progress(f"正在打包证据文件（含待保存的图片和文件）：{len(evidence)} 个，{fmt_size(total)}，"
                             f"来自 {evidence_dir}")
                percent, done = _Percent(progress, "证据文件已打包"), 0
                for path, relative in evidence:
                    entry = _add_file(tar, path, EVIDENCE_PREFIX + relative)
                    if entry is not None:
                        entries.append(entry)
                        done += entry.size
                        percent(done, total)
                manifest = {
                    "format": FORMAT, "format_version": FORMAT_VERSION,
                    "created_at": local(now).isoformat(timespec="seconds"),
                    "dutybot_version": program_version(), "alembic_revision": revision,
                    "database": {"kind": kind, "member": DB_MEMBERS[kind]},
                    "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in entries],
                }
                body = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(body), int(now.timestamp()), 0o600
                tar.addfile(info, io.BytesIO(body))
            raw.flush()
            os.fsync(raw.fileno())
        digest = sha256_of(part)
        size = part.stat().st_size
        final = folder / archive_name(now, folder)
        os.replace(part, final)
        check = checksum_path(final)
        check_part = folder / f"{PART_PREFIX}{check.name}.part"
        check_part.write_text(f"{digest}  {final.name}\n", encoding="ascii")
        os.replace(check_part, check)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    progress(f"备份完成：{final}（{fmt_size(size)}，证据文件 {len(entries) - 1} 个）；"
             f"SHA-256 已写入 {check.name}")
    return BackupResult(path=final, checksum_path=check, sha256=digest, size=size, database_kind=kind,
                        revision=revision, evidence_files=len(entries) - 1)
