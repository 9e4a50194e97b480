"""Pictures and files sent to a chat app: the download helpers WeCom and DingTalk share.

On WeCom and DingTalk a picture or a file arrives as a message of its own, without text.
The adapter downloads it at once (WeCom ``media/get``, DingTalk
``messageFiles/download``), turns the bytes into an :class:`~core.messages.Attachment`
with :func:`attachment_for` and hands it to the bot on an ``Inbound`` with empty text;
the dispatcher holds it for the sender's next ``/incident evidence`` (:mod:`bot.held_media`),
as for a Telegram photo without a caption. A failed or refused download is answered by the
adapter with the texts here. Shared by the WeCom and DingTalk adapters (which may not
import each other), and the capped reading of a streamed download.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from email.message import Message

import httpx

from core.errors import AdapterError
from core.messages import Attachment

KIND_ZH = {"photo": "图片", "file": "文件"}
UNSUPPORTED_TEXT = ("暂不支持把语音或视频保存为证据。请发送截图或文件，"
                    "或用文字记录：/incident evidence 事件编号 文字说明。")


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


@dataclass(frozen=True)
class MediaFile:
    """A downloaded picture or file: its bytes, the answer's ``Content-Type`` (may carry
    parameters) and ``Content-Disposition`` (the file name); either may be empty."""

    data: bytes = field(repr=False)
    content_type: str
    disposition: str


class MediaTooLarge(AdapterError):
    """The file is larger than the caller's limit; it was not read beyond the limit.

    Attributes:
        limit: the limit, in bytes.
    """

    def __init__(self, platform: str, what: str, limit: int) -> None:
        super().__init__(f"{platform} {what}: the file is larger than {limit} bytes; not read",
                         retryable=False)
        self.limit = limit


async def read_capped(response: httpx.Response, limit: int, *, platform: str, what: str) -> bytes:
    """The body of a streamed ``response``, refused once it passes ``limit`` bytes.

    Raises:
        MediaTooLarge: ``Content-Length`` says more than ``limit``, or more arrived.
    """
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise MediaTooLarge(platform, what, limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit:
            raise MediaTooLarge(platform, what, limit)
        chunks.append(chunk)
    return b"".join(chunks)
