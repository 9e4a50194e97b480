"""Downloading the pictures and files a DingTalk robot message carries.

Each is fetched through :meth:`DingTalkApi.download
<bot.adapters.dingtalk.api.DingTalkApi.download>` (refused past ``max_bytes`` without
being read whole) and becomes an :class:`~core.messages.Attachment`. A failure is told to
the sender in Chinese and logged (the errcode or reason, never the token or the link).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.adapters.dingtalk.api import DingTalkApi
from bot.adapters.media import (
    MediaTooLarge,
    attachment_for,
    failed_text,
    filename_from,
    too_large_text,
)
from core.errors import AdapterError
from core.messages import Attachment, Inbound

log = logging.getLogger("dutybot.dingtalk")


async def download_media(api: DingTalkApi, inbound: Inbound, refs: list[tuple[str, str, str]],
                         *, max_bytes: int,
                         tell: Callable[[Inbound, str], Awaitable[None]]
                         ) -> tuple[Attachment, ...] | None:
    """The message's pictures and files (``refs`` from
    :func:`~bot.adapters.dingtalk.content.media_refs`), or None when one could not be had:
    the sender was told why through ``tell``; the reason is logged."""
    out: list[Attachment] = []
    for index, (kind, code, name) in enumerate(refs, 1):
        try:
            media = await api.download(code, max_bytes=max_bytes)
        except MediaTooLarge as exc:
            log.warning("DingTalk %s of message %s from %s refused: %s", kind,
                        inbound.update_id, inbound.sender_id, exc.message)
            await tell(inbound, too_large_text(kind, exc.limit))
            return None
        except AdapterError as exc:
            log.warning("downloading the %s of DingTalk message %s from %s failed: %s",
                        kind, inbound.update_id, inbound.sender_id, exc.message)
            reason = "网络或钉钉暂时不可用" if exc.retryable else "文件无效或已过期"
            await tell(inbound, failed_text(kind, reason))
            return None
        except Exception:
            log.exception("downloading the %s of DingTalk message %s from %s failed",
                          kind, inbound.update_id, inbound.sender_id)
            await tell(inbound, failed_text(kind, "处理出错"))
            return None
        if not media.data:
            log.warning("the %s of DingTalk message %s is empty", kind, inbound.update_id)
            await tell(inbound, failed_text(kind, "文件是空的"))
            return None
        stem = f"{'picture' if kind == 'photo' else 'file'}-{inbound.update_id}"
        out.append(attachment_for(
            media.data, kind=kind, content_type=media.content_type,
            filename=name or filename_from(media.disposition),
            fallback_stem=stem if len(refs) == 1 else f"{stem}-{index}"))
    return tuple(out)
