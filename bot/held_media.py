"""Pictures and files waiting for their sender's evidence command, kept on disk.

A picture or file that arrives without a command (WeCom and DingTalk send them as
messages of their own; a Telegram photo without a caption; ``:attach`` in the console) is
held here for its sender — keyed by platform and sender id, whatever the chat — and the
person is told to send ``/incident evidence 编号 说明``. The dispatcher hands everything
held to that command as attachments, and forgets them only after the command stored them
(a refused command, say a mistyped number, leaves them held). Each item is held for
:data:`HOLD_FOR` after it was received.

Held items are files under ``<evidence_dir>/held/<sender hash>/``: ``<id>.bin`` (the
bytes) and ``<id>.json`` (filename, content type, kind, held_at, sender key, size), both
written atomically, the sidecar last; the id starts with the receipt time in microseconds,
so the oldest sort first and an orphaned ``.bin`` (a crash between the two writes) can be
expired without its sidecar. A restart therefore keeps them until they expire. Expired
items are deleted when their sender's items are read and by :meth:`HeldMedia.sweep`
(a scheduler cron job). Bounded: :data:`MAX_HELD_PER_SENDER` per sender,
:data:`MAX_HELD_BYTES` in all (the oldest go first).

Files rather than database rows: the evidence they become is stored as files under the
same directory (the rows keep only paths and hashes), pictures of up to the evidence size
limit do not belong in the database, and holding must not depend on the dispatcher's
transaction (a refused command rolls back its savepoint but keeps what is held).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.clock import Clock, ensure_utc
from core.messages import Attachment
from incidents.evidence import write_atomically

log = logging.getLogger(__name__)

#: How long a picture or file waits for the evidence command.
HOLD_FOR = timedelta(minutes=10)
#: At most this many held items per sender (the oldest is dropped beyond).
MAX_HELD_PER_SENDER = 9
#: At most this many bytes held for everybody together (the oldest are dropped beyond).
MAX_HELD_BYTES = 100_000_000
#: The sub-folder of the evidence directory.
FOLDER = "held"

KIND_ZH = {"photo": "图片", "file": "文件"}


def sender_key(platform: str, sender_id: str) -> str:
    """Whose held items: ``telegram:1001``."""
    return f"{platform}:{sender_id}"


def held_text(kind: str, count: int) -> str:
    """What the person is told after a picture or file was received and held."""
    what = KIND_ZH.get(kind, "文件")
    minutes = int(HOLD_FOR.total_seconds() // 60)
    if count <= 1:
        return (f"已收到{what}。请在{minutes}分钟内回复：/incident evidence 事件编号 说明"
                "（将作为证据保存）。")
    return (f"已收到{what}，共 {count} 份待保存。请在{minutes}分钟内回复："
            "/incident evidence 事件编号 说明（将一并作为证据保存）。")


def still_held_text(count: int) -> str:
    """Added to a refused evidence command's reply while items are held for the person."""
    minutes = int(HOLD_FOR.total_seconds() // 60)
    return (f"您发送的 {count} 份图片/文件仍为您保留（收到后{minutes}分钟内有效），"
            "改正后重新发送命令即可保存，无需重新发送图片。")


def kind_of(attachments: tuple[Attachment, ...]) -> str:
    """``photo`` when all are pictures, else ``file`` (for :func:`held_text`)."""
    return "photo" if attachments and all(a.kind == "photo" for a in attachments) else "file"


@dataclass(frozen=True)
class HeldItem:
    """One held picture or file."""

    id: str
    key: str
    held_at: datetime
    attachment: Attachment


def _stamp(at: datetime) -> int:
    return int(ensure_utc(at).timestamp() * 1_000_000)


def _at(stamp: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(stamp.split("-", 1)[0]) / 1_000_000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


class HeldMedia:
    """The held pictures and files under ``directory`` (``<evidence_dir>/held``).

    Args:
        directory: where they are kept (made on first use).
        clock: decides when an item has waited :data:`HOLD_FOR`.
    """

    def __init__(self, directory: Path, clock: Clock, *, hold_for: timedelta = HOLD_FOR,
                 per_sender: int = MAX_HELD_PER_SENDER, max_bytes: int = MAX_HELD_BYTES) -> None:
        self.directory, self.clock = directory, clock
        self.hold_for, self.per_sender, self.max_bytes = hold_for, per_sender, max_bytes

    def _folder(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    def _live(self, at: datetime, now: datetime) -> bool:
        return ensure_utc(now) - ensure_utc(at) < self.hold_for

    # ---- reading -------------------------------------------------------------------

    def _load(self, folder: Path, now: datetime, *, data: bool = True) -> list[HeldItem]:
        """The folder's live items, oldest first; expired and broken ones are deleted."""
        if not folder.is_dir():
            return []
        out: list[HeldItem] = []
        for sidecar in sorted(folder.glob("*.json")):
            item_id = sidecar.stem
            blob = sidecar.with_suffix(".bin")
            try:
                meta = json.loads(sidecar.read_text("utf-8"))
                held_at = ensure_utc(datetime.fromisoformat(meta["held_at"]))
                if not self._live(held_at, now):
                    self._delete(folder, item_id)
                    continue
                payload = blob.read_bytes() if data else b""
                if not data and not blob.exists():
                    raise FileNotFoundError(blob)
                attachment = Attachment(filename=str(meta["filename"]), data=payload,
                                        content_type=str(meta["content_type"]),
                                        kind=str(meta["kind"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("held item %s in %s is unreadable (%s); deleted", item_id, folder, exc)
                self._delete(folder, item_id)
                continue
            out.append(HeldItem(item_id, str(meta.get("sender", "")), held_at, attachment))
        for blob in folder.glob("*.bin"):   # a crash between the two writes
            if not blob.with_suffix(".json").exists():
                at = _at(blob.stem)
                if at is None or not self._live(at, now):
                    blob.unlink(missing_ok=True)
        return out

    def items(self, key: str) -> list[HeldItem]:
        """What is held for ``key`` now, oldest first (expired ones are deleted)."""
        now = self.clock.now()
        folder = self._folder(key)
        found = self._load(folder, now)
        self._tidy(folder)
        return found

    def count(self, key: str) -> int:
        """How many items are held for ``key`` now."""
        return len(self._load(self._folder(key), self.clock.now(), data=False))

    # ---- writing -------------------------------------------------------------------

    def hold(self, key: str, attachments: tuple[Attachment, ...]) -> int:
        """Keep ``attachments`` for ``key``; how many are held for it now.

        Raises:
            OSError: the directory cannot be written.
        """
        now = self.clock.now()
        folder = self._folder(key)
        for attachment in attachments:
            # Receipt time, then the wall clock's nanoseconds: in the order received even
            # when the (fake) clock stands still.
            item_id = f"{_stamp(now):020d}-{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
            meta = {"filename": attachment.filename, "content_type": attachment.content_type,
                    "kind": attachment.kind, "held_at": ensure_utc(now).isoformat(),
                    "sender": key, "size": len(attachment.data)}
            for attempt in (1, 2):   # the sweep (another thread) may remove an empty folder
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    write_atomically(folder / f"{item_id}.bin", attachment.data)
                    write_atomically(folder / f"{item_id}.json",
                                     json.dumps(meta, ensure_ascii=False).encode("utf-8"))
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        mine = self._load(folder, now, data=False)
        if len(mine) > self.per_sender:
            dropped = mine[:len(mine) - self.per_sender]
            log.info("holding at most %d media per sender; %d older ones of %s dropped",
                     self.per_sender, len(dropped), key)
            self.release(dropped)
        self._bound_total(now)
        return self.count(key)

    def _bound_total(self, now: datetime) -> None:
        if not self.directory.is_dir():
            return
        everything: list[tuple[datetime, str, Path, int]] = []
        for folder in self.directory.iterdir():
            if not folder.is_dir():
                continue
            for item in self._load(folder, now, data=False):
                size = (folder / f"{item.id}.bin").stat().st_size
                everything.append((item.held_at, item.id, folder, size))
        everything.sort()
        total = sum(size for *_, size in everything)
        while total > self.max_bytes and len(everything) > 1:
            _, item_id, folder, size = everything.pop(0)
            self._delete(folder, item_id)
            total -= size
            log.warning("held media over %d bytes in all; dropped %s", self.max_bytes, item_id)

    def release(self, items: list[HeldItem] | tuple[HeldItem, ...]) -> None:
        """Forget ``items`` (they were stored as evidence, or dropped)."""
        for item in items:
            folder = self._folder(item.key)
            self._delete(folder, item.id)
            self._tidy(folder)

    def sweep(self, now: datetime | None = None) -> int:
        """Delete every expired item (and leftovers); how many live items remain."""
        now = now or self.clock.now()
        if not self.directory.is_dir():
            return 0
        remaining = 0
        for folder in list(self.directory.iterdir()):
            if folder.is_dir():
                remaining += len(self._load(folder, now, data=False))
                self._tidy(folder)
        return remaining

    @staticmethod
    def _delete(folder: Path, item_id: str) -> None:
        (folder / f"{item_id}.json").unlink(missing_ok=True)   # the sidecar first: gone at once
        (folder / f"{item_id}.bin").unlink(missing_ok=True)

    @staticmethod
    def _tidy(folder: Path) -> None:
        """Remove the sender's folder once it is empty."""
        with contextlib.suppress(OSError):
            folder.rmdir()
