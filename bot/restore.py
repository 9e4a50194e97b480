"""Restoring a backup archive (:mod:`bot.backup`) into an empty target.

:func:`restore_backup` works in this order, and writes nothing to the target before the
archive passed every check:

1. the targets are empty (:func:`check_empty`): the database — a SQLite file that does not
   exist or has no tables, or a PostgreSQL database without tables — the evidence folder
   and the ``--to`` folder (missing or empty). A restore never overwrites;
2. the archive's SHA-256 equals the one in ``<archive>.sha256``;
3. every member is unpacked into a staging folder beside the evidence target — each a plain
   file with a name the format allows — and checked against the manifest: the format, each
   listed file present with its size and SHA-256, nothing unlisted;
4. the backup's database kind is the target's, and its schema revision is one this program
   knows (a backup made by a newer dutybot is refused);
5. the database is put in place — SQLite: the file, then ``PRAGMA integrity_check``;
   PostgreSQL: ``pg_restore`` into the empty database in one transaction — then the
   evidence folder;
6. an older schema is upgraded (:func:`core.db.upgrade`) and the schema checked
   (:func:`core.db.check_schema`); every evidence row is re-hashed against its file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.backup import (
    DB_MEMBERS,
    EVIDENCE_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BackupError,
    Progress,
    checksum_path,
    database_kind,
    libpq_target,
    pg_tool,
    pg_where,
    run_pg,
    sha256_of,
)
from bot.sandbox import sqlite_file
from core.db import (
    alembic_config,
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    normalize_url,
    upgrade,
)
from incidents.evidence import verify
from incidents.models import Evidence, Incident

KIND_ZH = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
HOW_TO_EMPTY = ("恢复不会覆盖现有数据，请选择空的目标：用 --to 指定一个空目录（或尚不存在的目录），数据库和证据目录都恢复到其中；"
                "PostgreSQL 的备份再用 --database 指定一个新建的空数据库（如 sudo -u postgres createdb -O dutybot dutybot_restored）。"
                "如要恢复到配置中的位置，请先停止服务，把现有的数据库和证据目录移到别处。")


@dataclass(frozen=True)
class RestoreTarget:
    """Where a backup goes: the database, the evidence folder, and the ``--to`` folder."""

    database_url: str
    evidence_dir: Path
    folder: Path | None = None


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_backup` did."""

    manifest: dict[str, Any]
    target: RestoreTarget
    evidence_files: int
    revision: str                 # the schema revision now (upgraded if the backup's was older)
    upgraded: bool
    evidence_problems: list[str] = field(default_factory=list)


def _quiet(_line: str) -> None:
    """A progress callback that says nothing."""


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    try:
        with contextlib.closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    except sqlite3.Error:
        return True   # not a database at all: not ours to replace either


def check_empty(target: RestoreTarget) -> None:
    """Refuse a target that holds anything.

    Raises:
        BackupError: what is not empty, and how to choose an empty target.
    """
    busy: list[str] = []
    if target.folder is not None and target.folder.exists() and (
            not target.folder.is_dir() or any(target.folder.iterdir())):
        busy.append(f"目录 {target.folder} 不是空的")
    if target.evidence_dir.exists() and (not target.evidence_dir.is_dir() or any(target.evidence_dir.iterdir())):
        busy.append(f"证据目录 {target.evidence_dir} 不是空的")
    kind = database_kind(target.database_url)
    if kind == "sqlite":
        path = sqlite_file(normalize_url(target.database_url))
        assert path is not None
        if _sqlite_has_tables(path):
            busy.append(f"数据库文件 {path} 已有数据")
    else:
        engine = make_engine(target.database_url)
        try:
            tables = inspect(engine).get_table_names()
        except SQLAlchemyError as exc:
            raise BackupError(f"无法连接数据库 {pg_where(target.database_url)}：{str(getattr(exc, 'orig', None) or exc).strip()}。"
                              "恢复到 PostgreSQL 需要一个已建好的空数据库（sudo -u postgres createdb -O dutybot 新库名）") from None
        finally:
            engine.dispose()
        if tables:
            busy.append(f"数据库 {pg_where(target.database_url)} 已有 {len(tables)} 张数据表")
    if busy:
        raise BackupError("恢复目标不是空的：" + "；".join(busy) + "。\n" + HOW_TO_EMPTY)


def verify_checksum(archive: Path) -> str:
    """The archive's SHA-256, when it equals the one written beside it.

    Raises:
        BackupError: the ``.sha256`` file is missing or malformed, or the archive differs.
    """
    check = checksum_path(archive)
    try:
        recorded = check.read_text(encoding="ascii").split()[0].lower()
    except FileNotFoundError:
        raise BackupError(f"找不到校验文件 {check}：备份文件要与同名的 .sha256 文件放在同一目录，才能确认它完好无损") from None
    except (IndexError, UnicodeDecodeError, OSError):
        recorded = ""
    if len(recorded) != 64 or any(c not in "0123456789abcdef" for c in recorded):
        raise BackupError(f"校验文件 {check} 格式不对：应为 sha256sum 的输出（64 位十六进制 SHA-256、两个空格、文件名）")
    actual = sha256_of(archive)
    if actual != recorded:
        raise BackupError(f"备份文件 {archive} 校验失败：其 SHA-256 为 {actual}，与 {check.name} 记录的 {recorded} 不符。"
                          "文件已损坏或被改动，不能用来恢复；请换用另一份备份。")
    return actual


def _allowed(name: str) -> bool:
    """A member name the format allows: the manifest, a database, or a file under evidence/."""
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        return False
    return name == MANIFEST or name in DB_MEMBERS.values() or (name.startswith(EVIDENCE_PREFIX) and len(path.parts) > 1)


def _copy_hashed(source: IO[bytes], out: IO[bytes]) -> tuple[int, str]:
    """Copy in blocks; the size and SHA-256 of what was copied."""
    hasher, size = hashlib.sha256(), 0
    for block in iter(lambda: source.read(1 << 20), b""):
        hasher.update(block)
        size += len(block)
        out.write(block)
    return size, hasher.hexdigest()


def unpack(archive: Path, staging: Path) -> dict[str, Any]:
    """Unpack into ``staging`` and check everything against the manifest; the manifest.

    Raises:
        BackupError: the archive is damaged or does not match its manifest.
    """
    seen: dict[str, tuple[int, str]] = {}
    damaged = f"备份文件 {archive} 已损坏，无法解包"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not member.isfile() or not _allowed(member.name) or member.name in seen:
                    raise BackupError(f"备份文件 {archive} 含有不应有的内容（{member.name}），不能用来恢复")
                dest = staging / member.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, dest.open("xb") as out:
                    seen[member.name] = _copy_hashed(source, out)
                os.utime(dest, (member.mtime, member.mtime))
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError(f"{damaged}（{exc}）。请换用另一份备份。") from None
    except OSError as exc:
        raise BackupError(f"解包到 {staging} 失败：{exc.strerror or exc}") from None
    if MANIFEST not in seen:
        raise BackupError(f"{damaged}：缺少清单 {MANIFEST}（不是 dutybot backup 生成的备份？）")
    try:
        manifest: dict[str, Any] = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
        listed = {str(f["path"]): (int(f["size"]), str(f["sha256"])) for f in manifest["files"]}
        kind = manifest["database"]["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{damaged}：清单 {MANIFEST} 无法读取（{exc}）") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} 不是 dutybot backup 生成的备份")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"备份格式版本 {manifest.get('format_version')} 不受本程序支持：请升级 dutybot 后再恢复")
    del seen[MANIFEST]
    problems = [f"{name}：缺失" for name in sorted(set(listed) - set(seen))]
    problems += [f"{name}：不在清单中" for name in sorted(set(seen) - set(listed))]
    problems += [f"{name}：SHA-256 或大小与清单不符" for name in sorted(set(seen) & set(listed))
                 if seen[name] != listed[name]]
    if kind not in DB_MEMBERS or DB_MEMBERS[kind] not in listed:
        problems.append(f"清单没有 {KIND_ZH.get(kind, kind)} 数据库")
    if problems:
        raise BackupError(f"备份文件 {archive} 的内容与清单不符，不能用来恢复：" + "；".join(problems[:5])
                          + (f" 等 {len(problems)} 处" if len(problems) > 5 else ""))
    return manifest


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory  # here: Alembic only when restoring

    engine = make_engine("sqlite://")
    try:
        return {rev.revision for rev in ScriptDirectory.from_config(alembic_config(engine)).walk_revisions()}
    finally:
        engine.dispose()


def _check_compatible(manifest: dict[str, Any], target: RestoreTarget) -> None:
    """The backup fits the target and this program.

    Raises:
        BackupError: another database kind, or a schema newer than this program.
    """
    kind, wanted = manifest["database"]["kind"], database_kind(target.database_url)
    if kind != wanted:
        raise BackupError(f"这是 {KIND_ZH[kind]} 数据库的备份，不能恢复到 {KIND_ZH[wanted]} 数据库："
                          f"请用 --database 指定一个空的 {KIND_ZH[kind]} 数据库")
    revision = manifest.get("alembic_revision")
    if revision not in _known_revisions():
        raise BackupError(f"备份的数据库结构版本 {revision} 比本程序新（备份由 dutybot {manifest.get('dutybot_version')} "
                          f"生成，本程序最新为 {head_revision()}）：请先把 dutybot 升级到不低于该版本，再恢复")


def _place_database(staging: Path, manifest: dict[str, Any], target: RestoreTarget, progress: Progress) -> None:
    """Put the staged database in place (the target was checked empty)."""
    kind = manifest["database"]["kind"]
    staged = staging / DB_MEMBERS[kind]
    if kind == "postgresql":
        exe = pg_tool("pg_restore")
        progress(f"正在用 pg_restore 恢复到空数据库 {pg_where(target.database_url)}（在一个事务中，失败则不留下任何数据）……")
        conninfo, env = libpq_target(target.database_url)
        run_pg([exe, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--no-password",
                f"--dbname={conninfo}", str(staged)], env, "pg_restore 恢复")
        return
    dest = sqlite_file(normalize_url(target.database_url))
    assert dest is not None
    progress(f"正在恢复 SQLite 数据库到 {dest} ……")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (dest, dest.with_name(dest.name + "-wal"), dest.with_name(dest.name + "-shm")):
        leftover.unlink(missing_ok=True)   # an empty database (checked), or nothing
    shutil.move(staged, dest)
    with contextlib.closing(sqlite3.connect(dest)) as conn:
        verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if verdict != ["ok"]:
        raise BackupError(f"恢复的数据库 {dest} 未通过完整性检查（{'；'.join(verdict[:3])}）：请换用另一份备份")


def _place_evidence(staging: Path, target: RestoreTarget, progress: Progress) -> None:
    staged = staging / EVIDENCE_PREFIX.rstrip("/")
    progress(f"正在恢复证据文件到 {target.evidence_dir} ……")
    if target.evidence_dir.exists():
        target.evidence_dir.rmdir()   # checked empty
    target.evidence_dir.parent.mkdir(parents=True, exist_ok=True)
    if staged.is_dir():
        shutil.move(staged, target.evidence_dir)
    else:
        target.evidence_dir.mkdir()


def _evidence_problems(session: Session, evidence_dir: Path) -> list[str]:
    """Every evidence row re-hashed against its restored file; the problems found."""
    with_evidence = select(Evidence.incident_id).distinct()
    incidents = session.exec(select(Incident).where(col(Incident.id).in_(with_evidence)).order_by(col(Incident.id)))
    return [f"{incident.number} 证据 #{check.evidence.id}（{check.evidence.filename or check.evidence.kind}）：{check.problem}"
            for incident in incidents
            for check in verify(session=session, incident=incident, evidence_dir=evidence_dir) if not check.ok]


def _restore_files(archive: Path, target: RestoreTarget, progress: Progress) -> tuple[dict[str, Any], int]:
    """Unpack and check the archive, then put the database and the evidence in place; the
    manifest and the number of evidence files."""
    target.evidence_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.evidence_dir.parent, prefix=".dutybot-restore-") as tmp:
        staging = Path(tmp)
        manifest = unpack(archive, staging)
        files = sum(1 for f in manifest["files"] if str(f["path"]).startswith(EVIDENCE_PREFIX))
        kind = manifest["database"]["kind"]
        progress(f"清单核对通过：备份生成于 {manifest.get('created_at')}（dutybot {manifest.get('dutybot_version')}），"
                 f"{KIND_ZH[kind]} 数据库，结构版本 {manifest.get('alembic_revision')}，证据文件 {files} 个。")
        _check_compatible(manifest, target)
        _place_database(staging, manifest, target, progress)
        try:
            _place_evidence(staging, target, progress)
        except OSError as exc:
            raise BackupError(f"数据库已恢复，但证据文件未能恢复到 {target.evidence_dir}（{exc.strerror or exc}）："
                              "请清空恢复目标后重新恢复") from None
    return manifest, files


def restore_backup(*, archive: Path, target: RestoreTarget, progress: Progress = _quiet) -> RestoreResult:
    """Restore ``archive`` into ``target`` (see the module docstring for the order).

    Raises:
        BackupError: a check failed (nothing was written), or the restore failed.
        SchemaOutOfDate: the restored schema does not match this program after upgrading.
    """
    check_empty(target)
    progress(f"正在校验备份文件 {archive}（SHA-256）……")
    verify_checksum(archive)
    progress("校验通过。正在解包并核对清单……")
    made = target.folder is not None and not target.folder.exists()
    try:
        manifest, files = _restore_files(archive, target, progress)
    except BaseException:
        if made and target.folder is not None and target.folder.is_dir() and not any(target.folder.iterdir()):
            target.folder.rmdir()   # refused: no empty folder of ours is left behind
        raise
    engine = make_engine(target.database_url)
    try:
        before = current_revision(engine)
        upgraded = before != head_revision()
        if upgraded:
            upgrade(engine)
            progress(f"数据库结构已升级：{before} → {head_revision()}")
        check_schema(engine)
        revision = current_revision(engine) or ""
        with Session(engine) as session:
            problems = _evidence_problems(session, target.evidence_dir)
    finally:
        engine.dispose()
    return RestoreResult(manifest=manifest, target=target, evidence_files=files, revision=revision,
                         upgraded=upgraded, evidence_problems=problems)
