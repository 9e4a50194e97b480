"""Pictures and files sent to a chat app, on their way to becoming evidence.

On WeCom and DingTalk a picture or a file arrives as a message of its own, without text,
so it cannot carry the ``/incident evidence 编号 说明`` command the way a Telegram caption
does. The adapter downloads it at once (WeCom ``media/get``, DingTalk
``messageFiles/download``), keeps it here in memory and tells the person to send the
command; the person's next ``/incident evidence`` (or ``事件 证据`` …) within
:data:`HOLD_FOR` carries everything held for them as its attachments, and the bot keeps
it as evidence (bytes, SHA-256, time) exactly as for a Telegram photo.

Held media live in this process only (a restart forgets them: the person sends the
picture again) and are bounded: :data:`MAX_HELD_PER_CHAT` per person and chat,
:data:`MAX_HELD_BYTES` in all (the oldest go first). Shared by the WeCom and DingTalk
adapters (which may not import each other). Nothing here does I/O; the Chinese texts the
person sees are here too.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections import OrderedDict
from datetime import datetime, timedelta
from email.message import Message

from core.clock import Clock
from core.messages import Attachment

log = logging.getLogger("dutybot.adapters.media")

#: How long a picture or file waits for the evidence command.
HOLD_FOR = timedelta(minutes=10)
#: At most this many held items per person and chat (the oldest is dropped beyond).
MAX_HELD_PER_CHAT = 9
#: At most this many bytes held for everybody together (the oldest are dropped beyond).
MAX_HELD_BYTES = 100_000_000

#: ``/incident evidence …`` and its Chinese forms (``事件 证据 …``, ``/incident 存证 …``):
#: the command that picks up the held media (as ``bot.dispatcher`` and
#: ``bot.handlers.incident`` read it). Without an incident number it is only answered
#: with its usage, so it leaves them waiting.
_EVIDENCE_COMMAND = re.compile(
    r"^\s*(?:[/／]incident(?:@\S+)?|事件)\s+(?:evidence|证据|存证)\s+\S", re.IGNORECASE)

KIND_ZH = {"photo": "图片", "file": "文件"}
UNSUPPORTED_TEXT = ("暂不支持把语音或视频保存为证据。请发送截图或文件，"
                    "或用文字记录：/incident evidence 事件编号 文字说明。")


def is_evidence_command(text: str) -> bool:
    """Whether ``text`` is the evidence command (which takes the held media)."""
    return bool(_EVIDENCE_COMMAND.match(text))


def held_text(kind: str, count: int) -> str:
    """What the person is told after a picture or file was received and held."""
    what = KIND_ZH.get(kind, "文件")
    minutes = int(HOLD_FOR.total_seconds() // 60)
    if count <= 1:
        return (f"已收到{what}。请在{minutes}分钟内回复：/incident evidence 事件编号 说明"
                "（将作为证据保存）。")
    return (f"已收到{what}，共 {count} 份待保存。请在{minutes}分钟内回复："
            "/incident evidence 事件编号 说明（将一并作为证据保存）。")


def failed_text(kind: str, reason: str) -> str:
    """What the person is told when a picture or file could not be downloaded."""
    return f"{KIND_ZH.get(kind, '文件')}下载失败：{reason}，请重新发送。"


def size_zh(size: int) -> str:
    """``10 MB``, ``1.5 MB``, ``800 KB`` (decimal units, as the fetch limit is shown)."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.2f}".rstrip("0").rstrip(".") + " MB"
    return f"{max(1, size // 1000)} KB"


def too_large_text(kind: str, limit: int) -> str:
    """What the person is told when a picture or file is over the evidence size limit."""
    what = KIND_ZH.get(kind, "文件")
    return (f"{what}过大（超过 {size_zh(limit)}），未保存。请压缩或截取关键部分后重新发送，"
            "或请管理员调大证据大小上限。")


def media_type(content_type: str | None) -> str:
    """``image/png; charset=…`` → ``image/png`` (lower case; empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def filename_from(disposition: str | None) -> str:
    """The file name in a ``Content-Disposition`` header (``filename*`` preferred), or
    ``""``; only its last path part is kept."""
    if not disposition:
        return ""
    header = Message()
    header["content-disposition"] = disposition
    try:
        name = header.get_filename() or ""
    except (TypeError, ValueError, LookupError):
        return ""
    return re.split(r"[\\/]", name.strip())[-1].strip().strip('"')


def attachment_for(data: bytes, *, kind: str, content_type: str, filename: str,
                   fallback_stem: str) -> Attachment:
    """The :class:`Attachment` for downloaded bytes: the given name, else
    ``<fallback_stem><extension of the type>``; the type from the answer, else guessed
    from the name."""
    ctype = media_type(content_type)
    if not ctype or ctype == "application/octet-stream":
        guessed = mimetypes.guess_type(filename)[0] if filename else None
        ctype = guessed or ctype or ("image/jpeg" if kind == "photo" else "application/octet-stream")
    if not filename:
        ext = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif"}.get(
            ctype, mimetypes.guess_extension(ctype) or "")
        filename = fallback_stem + ext
    return Attachment(filename=filename, data=data, content_type=ctype, kind=kind)


class HeldMedia:
    """Pictures and files waiting for their sender's evidence command, by (chat, sender).

    Args:
        clock: decides when a held item has waited :data:`HOLD_FOR`.
    """

    def __init__(self, clock: Clock, *, hold_for: timedelta = HOLD_FOR,
                 per_chat: int = MAX_HELD_PER_CHAT, max_bytes: int = MAX_HELD_BYTES) -> None:
        self.clock = clock
        self.hold_for, self.per_chat, self.max_bytes = hold_for, per_chat, max_bytes
        self._held: OrderedDict[tuple[str, str], list[tuple[datetime, Attachment]]] = OrderedDict()

    def _expire(self, now: datetime) -> None:
        for key in list(self._held):
            live = [(at, a) for at, a in self._held[key] if now - at < self.hold_for]
            if live:
                self._held[key] = live
            else:
                del self._held[key]

    def count(self, key: tuple[str, str]) -> int:
        """How many items are held for ``key`` now."""
        self._expire(self.clock.now())
        return len(self._held.get(key, ()))

    def hold(self, key: tuple[str, str], attachments: tuple[Attachment, ...]) -> int:
        """Keep ``attachments`` for ``key``; how many are held for it now."""
        now = self.clock.now()
        self._expire(now)
        items = self._held.pop(key, [])
        items.extend((now, a) for a in attachments)
        if len(items) > self.per_chat:
            log.info("holding at most %d media per person; %d older ones dropped",
                     self.per_chat, len(items) - self.per_chat)
            items = items[-self.per_chat:]
        self._held[key] = items  # the most recently used key last
        total = sum(len(a.data) for held in self._held.values() for _, a in held)
        while total > self.max_bytes and sum(len(v) for v in self._held.values()) > 1:
            oldest_key = next(iter(self._held))
            _, dropped = self._held[oldest_key].pop(0)
            total -= len(dropped.data)
            if not self._held[oldest_key]:
                del self._held[oldest_key]
            log.warning("held media over %d bytes in all; dropped %s of %s", self.max_bytes,
                        dropped.filename, oldest_key[1])
        return len(self._held.get(key, ()))

    def take(self, key: tuple[str, str]) -> tuple[Attachment, ...]:
        """Everything still held for ``key``, in the order received; forgotten here."""
        self._expire(self.clock.now())
        return tuple(a for _, a in self._held.pop(key, []))
