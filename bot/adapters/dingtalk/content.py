"""What a DingTalk robot message carries: its text, and the pictures and files to fetch.

Pure functions over the message body (the same in Stream frames and HTTP callbacks).
"""

from __future__ import annotations

from typing import Any

#: Message types whose content carries a picture or file to download, and their kind.
MEDIA_KINDS = {"picture": "photo", "file": "file"}
#: Message types answered with a hint instead (not kept as evidence).
UNSUPPORTED_MEDIA = frozenset({"video"})


def message_text(data: dict[str, Any]) -> str:
    """The text of a bot message: ``text``, ``richText`` parts, or an audio message's
    speech recognition; empty for pictures, files and others."""
    msgtype = data.get("msgtype")
    text = data.get("text")
    if isinstance(text, dict) and isinstance(text.get("content"), str):
        return text["content"]
    content = data.get("content")
    if not isinstance(content, dict):
        return ""
    if msgtype == "richText" and isinstance(content.get("richText"), list):
        return "".join(str(part.get("text", "")) for part in content["richText"]
                       if isinstance(part, dict))
    if msgtype == "audio" and isinstance(content.get("recognition"), str):
        return content["recognition"]
    return ""


def media_refs(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(kind, downloadCode, file name)`` of each picture or file a bot message carries:
    a ``picture``, a ``file`` (with its ``fileName``), or the pictures of a ``richText``."""
    msgtype = data.get("msgtype")
    content = data.get("content")
    if not isinstance(content, dict):
        return []

    def code_of(part: dict[str, Any]) -> str:
        code = part.get("downloadCode") or part.get("pictureDownloadCode")
        return code.strip() if isinstance(code, str) else ""

    if msgtype in MEDIA_KINDS:
        code = code_of(content)
        name = content.get("fileName") if msgtype == "file" else ""
        return [(MEDIA_KINDS[msgtype], code, str(name or "").strip())] if code else []
    if msgtype == "richText" and isinstance(content.get("richText"), list):
        return [("photo", code_of(part), "") for part in content["richText"]
                if isinstance(part, dict) and part.get("type", "picture") == "picture"
                and code_of(part)]
    return []
