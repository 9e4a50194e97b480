"""Keeping evidence before anything is deleted (DOMAIN SEC-2: keep the evidence and data
first, then delete).

Three kinds of evidence: a web page fetched as it stands now, a photo or file someone
sent with a message, and a text record. Files are stored under the evidence directory
as ``<incident number>/<NNN>-<kind>-<sha256[:12]><ext>``, written atomically; the row
keeps the path relative to that directory and the SHA-256 of the stored bytes, which
:func:`verify` re-checks before a report is built. Every store appends an ``evidence``
audit event to the incident's timeline in the caller's transaction; nothing here
commits.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlmodel import Session, col, func, select

from core import audit
from core.clock import ensure_utc, fmt_short_zh, from_db
from core.errors import InputError
from core.messages import Attachment
from incidents.fetch import FetchedPage
from incidents.models import Evidence, Incident
from people.models import Person

MAX_TEXT = 2000
MAX_FILENAME = 200
MAX_CONTENT_TYPE = 100

KIND_ZH = {"page": "网页", "photo": "照片", "file": "文件", "text": "文字记录"}
PROBLEM_MISSING = "文件缺失"
PROBLEM_CHANGED = "内容已被改动（SHA-256 不符）"
PROBLEM_UNREADABLE = "文件无法读取"
PROBLEM_BAD_PATH = "文件路径无效"

# Deterministic extensions for common types (mimetypes depends on the host's tables).
_EXTENSIONS = {
    "text/html": ".html", "application/xhtml+xml": ".html", "text/plain": ".txt",
    "application/pdf": ".pdf", "application/json": ".json", "text/xml": ".xml",
    "application/xml": ".xml", "image/png": ".png", "image/jpeg": ".jpg",
    "image/gif": ".gif", "image/webp": ".webp", "image/bmp": ".bmp",
    "video/mp4": ".mp4", "application/zip": ".zip",
}
_SAFE_EXT = re.compile(r"^\.[a-z0-9]{1,10}$")
_SAFE_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class EvidenceCheck:
    """The result of re-checking one piece of evidence."""

    evidence: Evidence
    ok: bool
    problem: str   # "" when ok


# ---- storing ---------------------------------------------------------------------------

def store_page(*, session: Session, incident: Incident, page: FetchedPage, evidence_dir: Path,
               person: Person | None, actor: str) -> Evidence:
    """Keep a fetched page's body as a file, and its row; audit it."""
    media = _media_type(page.content_type)
    ext = ".html" if media in ("", "text/html", "application/xhtml+xml") else _ext_for(media, "")
    evidence = Evidence(
        incident_id=_incident_id(incident), kind="page", url=page.url,
        content_type=page.content_type[:MAX_CONTENT_TYPE] or None, http_status=page.status,
        added_by_id=person.id if person else None, captured_at=ensure_utc(page.fetched_at),
        sha256="", size=0)
    extra = {"final_url": page.final_url} if page.final_url != page.url else {}
    return _store_file(session=session, incident=incident, evidence=evidence, data=page.body,
                       ext=ext, evidence_dir=evidence_dir, person=person, actor=actor, **extra)


def store_attachment(*, session: Session, incident: Incident, attachment: Attachment,
                     evidence_dir: Path, person: Person | None, actor: str, now: datetime,
                     note: str = "") -> Evidence:
    """Keep a photo or file sent in chat; ``note`` (optional) says what it shows.

    The sender's filename is kept in the row only, cleaned; it never names the stored file.

    Raises:
        InputError: the attachment is empty, or the note is too long.
    """
    if not attachment.data:
        raise InputError("附件是空的（0 字节），请重新发送")
    note = note.strip()
    if len(note) > MAX_TEXT:
        raise InputError(f"说明最长 {MAX_TEXT} 字，当前 {len(note)} 字，请精简")
    kind = attachment.kind if attachment.kind in ("photo", "file") else "file"
    filename = clean_filename(attachment.filename)
    evidence = Evidence(
        incident_id=_incident_id(incident), kind=kind, filename=filename,
        content_type=attachment.content_type[:MAX_CONTENT_TYPE] or None, text=note or None,
        added_by_id=person.id if person else None, captured_at=ensure_utc(now),
        sha256="", size=0)
    return _store_file(session=session, incident=incident, evidence=evidence,
                       data=attachment.data, ext=_ext_for(attachment.content_type, filename or ""),
                       evidence_dir=evidence_dir, person=person, actor=actor)


def store_text(*, session: Session, incident: Incident, text: str, person: Person | None,
               actor: str, now: datetime) -> Evidence:
    """Keep a text record (who said what, where) in the row itself; audit it.

    Raises:
        InputError: empty, or longer than ``MAX_TEXT`` characters.
    """
    text = text.strip()
    if not text:
        raise InputError("文字记录不能为空，请写明看到的内容、位置和时间")
    if len(text) > MAX_TEXT:
        raise InputError(f"文字记录最长 {MAX_TEXT} 字，当前 {len(text)} 字，请分几条记录")
    data = text.encode("utf-8")
    evidence = Evidence(
        incident_id=_incident_id(incident), kind="text", text=text,
        sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        added_by_id=person.id if person else None, captured_at=ensure_utc(now))
    _add_and_audit(session=session, incident=incident, evidence=evidence, person=person,
                   actor=actor)
    return evidence


def _store_file(*, session: Session, incident: Incident, evidence: Evidence, data: bytes,
                ext: str, evidence_dir: Path, person: Person | None, actor: str,
                **extra: str) -> Evidence:
    digest = hashlib.sha256(data).hexdigest()
    folder = evidence_dir / _safe_number(incident)
    folder.mkdir(parents=True, exist_ok=True)
    seq = _next_seq(session=session, incident=incident, folder=folder)
    name = f"{seq:03d}-{evidence.kind}-{digest[:12]}{ext}"
    write_atomically(folder / name, data)
    evidence.path = str(PurePosixPath(_safe_number(incident), name))
    evidence.sha256 = digest
    evidence.size = len(data)
    _add_and_audit(session=session, incident=incident, evidence=evidence, person=person,
                   actor=actor, **extra)
    return evidence


def _add_and_audit(*, session: Session, incident: Incident, evidence: Evidence,
                   person: Person | None, actor: str, **extra: str) -> None:
    session.add(evidence)
    session.flush()
    audit.record(session=session, at=evidence.captured_at, entity_type="incident",
                 entity_id=incident.number, action="evidence", actor=actor,
                 actor_id=person.id if person else None, zh="保全证据：" + describe(evidence),
                 evidence_id=evidence.id, sha256=evidence.sha256, **extra)


def _incident_id(incident: Incident) -> int:
    if incident.id is None:
        raise ValueError("the incident must be flushed before evidence is added")
    return incident.id


def _safe_number(incident: Incident) -> str:
    # The number becomes a directory name; refuse anything that could leave evidence_dir.
    if not _SAFE_NUMBER.match(incident.number):
        raise ValueError(f"unsafe incident number for a directory: {incident.number!r}")
    return incident.number


def _next_seq(*, session: Session, incident: Incident, folder: Path) -> int:
    """The evidence's ordinal within the incident, skipping numbers a file already uses
    (a file left by a rolled-back transaction is never overwritten)."""
    count = session.exec(select(func.count()).select_from(Evidence)
                         .where(Evidence.incident_id == incident.id)).one()
    seq = int(count) + 1
    while any(folder.glob(f"{seq:03d}-*")):
        seq += 1
    return seq


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder, synced
    and renamed into place: a reader sees the whole file or none (the folder must exist)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_filename(name: str) -> str | None:
    """A sender's filename fit to show: last path part, no control characters, ≤200 chars."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = " ".join(name.split()).strip(" .")
    return name[:MAX_FILENAME] or None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _ext_for(content_type: str, filename: str) -> str:
    """A safe extension: the filename's if plain, else from the content type, else .bin."""
    suffix = PurePosixPath(filename).suffix.lower() if filename else ""
    if _SAFE_EXT.match(suffix):
        return suffix
    media = _media_type(content_type)
    guessed = _EXTENSIONS.get(media) or (mimetypes.guess_extension(media) if media else None)
    if guessed and _SAFE_EXT.match(guessed):
        return guessed
    return ".bin"


# ---- reading back ----------------------------------------------------------------------

def evidence_for(*, session: Session, incident: Incident) -> list[Evidence]:
    """The incident's evidence, oldest first."""
    stmt = (select(Evidence).where(Evidence.incident_id == incident.id)
            .order_by(col(Evidence.id)))
    return list(session.exec(stmt))


def verify(*, session: Session, incident: Incident, evidence_dir: Path) -> list[EvidenceCheck]:
    """Re-hash every piece of evidence of the incident against its recorded SHA-256."""
    return [_check(item, evidence_dir) for item in evidence_for(session=session, incident=incident)]


def _check(item: Evidence, evidence_dir: Path) -> EvidenceCheck:
    if item.kind == "text":
        digest = hashlib.sha256((item.text or "").encode("utf-8")).hexdigest()
        return _result(item, digest)
    if not item.path:
        return EvidenceCheck(item, False, PROBLEM_MISSING)
    root = evidence_dir.resolve()
    target = (root / item.path).resolve()
    if not target.is_relative_to(root):
        return EvidenceCheck(item, False, PROBLEM_BAD_PATH)
    hasher = hashlib.sha256()
    try:
        with target.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                hasher.update(block)
    except FileNotFoundError:
        return EvidenceCheck(item, False, PROBLEM_MISSING)
    except OSError:
        return EvidenceCheck(item, False, PROBLEM_UNREADABLE)
    return _result(item, hasher.hexdigest())


def _result(item: Evidence, digest: str) -> EvidenceCheck:
    if digest != item.sha256:
        return EvidenceCheck(item, False, PROBLEM_CHANGED)
    return EvidenceCheck(item, True, "")


# ---- showing ---------------------------------------------------------------------------

def fmt_size(size: int) -> str:
    """``512 字节``, ``12.3 KB``, ``10.0 MB`` (decimal units)."""
    if size < 1000:
        return f"{size} 字节"
    if size < 1_000_000:
        return f"{size / 1000:.1f} KB"
    return f"{size / 1_000_000:.1f} MB"


def describe(evidence: Evidence) -> str:
    """One Chinese line for chat and reports."""
    if evidence.kind == "text":
        text = " ".join((evidence.text or "").split())
        return "文字记录：" + (text if len(text) <= 60 else text[:60] + "……")
    short_hash = f"SHA-256 {evidence.sha256[:8]}…"
    if evidence.kind == "page":
        captured = from_db(evidence.captured_at)
        assert captured is not None
        status = f"HTTP {evidence.http_status}，" if evidence.http_status is not None else ""
        return (f"网页 {evidence.url}（{status}{fmt_size(evidence.size)}，{short_hash}，"
                f"{fmt_short_zh(captured)}）")
    label = KIND_ZH.get(evidence.kind, "文件")
    name = f" {evidence.filename}" if evidence.filename else ""
    line = f"{label}{name}（{fmt_size(evidence.size)}，{short_hash}）"
    if evidence.text:
        note = " ".join(evidence.text.split())
        line += "：" + (note if len(note) <= 60 else note[:60] + "……")
    return line
