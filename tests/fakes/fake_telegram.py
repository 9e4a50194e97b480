"""A fake Telegram Bot API server for tests.

It speaks the Bot API wire format that python-telegram-bot parses: every answer is the
``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code": N, "description": ...,
"parameters": {...}}`` envelope with the matching HTTP status, requests may be JSON,
url-encoded or multipart forms (non-string parameters arrive JSON-encoded inside form
fields and are decoded), method names are case-insensitive.

Usage::

    fake = FakeBotApi()
    async with serve_asgi(fake.app) as url:
        bot = telegram.Bot(fake.token, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot")
        fake.push_message(1001, 1001, "/start")
        updates = await bot.get_updates(timeout=5)

Tests drive it with plain methods (:meth:`FakeBotApi.push_message`,
:meth:`~FakeBotApi.push_callback`, :meth:`~FakeBotApi.fail_next`, ...) and inspect its
state (``sent``, ``calls``, ``messages``, ``callback_answers``, ``commands``, ``webhook``,
``too_many``). Everything runs in the test's event loop; the test-driving methods are not
thread-safe.

Behaviour modelled on Telegram, beyond the plain methods:

* ``getUpdates`` confirms (drops) updates below ``offset``, long-polls up to ``timeout``
  seconds, answers 409 while a webhook is set, and a second concurrent ``getUpdates``
  ends the waiting one with 409 ("terminated by other getUpdates request").
* Text is checked like Telegram does: empty or longer than 4096 characters is refused,
  leading and trailing whitespace is trimmed; with ``parse_mode`` HTML or MarkdownV2 the
  markup is parsed into ``entities`` and malformed markup is refused with "can't parse
  entities" (``validate_formatting=False`` turns that off; legacy ``Markdown`` is stored
  as is). Inline keyboards are checked (callback data 1-64 bytes, every button has an
  action).
* ``setWebhook`` wants an HTTPS URL on port 443, 80, 88 or 8443 and a secret token made
  of ``A-Z a-z 0-9 _ -``; ``setMyCommands`` wants commands of ``a-z 0-9 _`` (1-32).
* After :meth:`FakeBotApi.push_message` with ``migrate_to_chat_id``, sending to the old
  group answers 400 with ``parameters.migrate_to_chat_id``.
* With ``enforce_limits=True``: sliding windows of 30 sends per second overall, 1 per
  second per chat and 20 per minute per group chat (``sendMessage``, edits, media sends);
  a 429 blocks that chat until ``retry_after`` has passed on the injectable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import mimetypes
import re
import time
import urllib.parse
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JSONDict = dict[str, Any]

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
MESSAGE_TO_EDIT_NOT_FOUND = "Bad Request: message to edit not found"
QUERY_TOO_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
GROUP_UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
TERMINATED_BY_OTHER = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)

MAX_TEXT = 4096
MAX_CAPTION = 1024

# Methods that count against Telegram's flood limits (when ``enforce_limits`` is on).
RATE_LIMITED_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
        "sendPhoto",
        "sendDocument",
    }
)

# Parameters whose value is a plain string even when it looks like JSON ("123", "true").
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "url",
        "secret_token",
        "file_id",
        "language_code",
        "action",
        "inline_message_id",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
    }
)
# Parameters that are JSON objects or arrays; a JSON body may still carry them as strings.
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
    }
)


class ApiError(Exception):
    """An error answer of the fake API: HTTP ``status`` with the Bot API error envelope."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def response(self) -> JSONResponse:
        """The error as a Bot API envelope with the matching HTTP status."""
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return JSONResponse(body, status_code=self.status)


class SentRecord(NamedTuple):
    """One successful ``sendMessage``/edit/media send, as recorded in ``FakeBotApi.sent``.

    ``text`` is the text (or caption) exactly as the client sent it, before any
    ``parse_mode`` parsing; ``at`` is the fake's ``time_source()`` at the call.
    """

    method: str
    chat_id: int | str
    text: str | None
    reply_markup: JSONDict | None
    message_id: int
    at: float


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str | None
    data: bytes


@dataclass
class StoredFile:
    """A file the fake serves through ``getFile`` and ``/file/bot<token>/<file_path>``."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    def as_json(self) -> JSONDict:
        """The Bot API ``File`` object."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class _Failure:
    method: str
    chat_id: int | str | None
    status: int
    description: str
    parameters: JSONDict | None
    remaining: int | None  # None: until clear_failures()


# ---------------------------------------------------------------------------- helpers


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _chat_key(value: Any) -> int | str:
    """A chat id as Telegram reads it: an integer, or an ``@username`` string."""
    if value is None or value == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    if isinstance(value, bool):
        raise ApiError(400, "Bad Request: chat not found")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    with contextlib.suppress(ValueError):
        return int(text)
    if text.startswith("@") and len(text) > 1:
        return text
    raise ApiError(400, "Bad Request: chat not found")


def _int_param(params: JSONDict, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f'Bad Request: field "{name}" must be of type Integer') from None


def _bool_param(params: JSONDict, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _decode_form_value(name: str, value: str | Upload) -> Any:
    """Form fields carry non-string parameters JSON-encoded; decode those."""
    if isinstance(value, Upload) or name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _disposition_param(disposition: str, name: str) -> str | None:
    match = re.search(rf'(?:^|;)\s*{name}="((?:[^"\\]|\\.)*)"', disposition)
    if match:
        return match.group(1).replace('\\"', '"').replace("\\\\", "\\")
    match = re.search(rf"(?:^|;)\s*{name}=([^;\s]+)", disposition)
    return match.group(1) if match else None


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | Upload]]:
    """Split a ``multipart/form-data`` body into (name, text or :class:`Upload`) fields."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ApiError(400, "Bad Request: multipart boundary is missing")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: list[tuple[str, str | Upload]] = []
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, data = part.partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _disposition_param(disposition, "name")
        if name is None:
            continue
        filename = _disposition_param(disposition, "filename")
        if filename is not None:
            fields.append((name, Upload(filename, headers.get("content-type"), data)))
        else:
            fields.append((name, data.decode("utf-8", "replace")))
    return fields


async def _read_params(request: Request) -> JSONDict:
    """The call's parameters from the query string and a JSON, form or multipart body."""
    fields: list[tuple[str, str | Upload]] = list(request.query_params.multi_items())
    body = await request.body()
    content_type = request.headers.get("content-type", "").lower()
    params: JSONDict = {}
    if body and "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Bad Request: JSON object expected")
        for name, value in data.items():
            if name in _JSON_PARAMS and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            params[name] = value
    elif body and "multipart/form-data" in content_type:
        fields += _parse_multipart(body, request.headers["content-type"])
    elif body:
        fields += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    for name, value in fields:
        params.setdefault(name, _decode_form_value(name, value))
    return params


# ---------------------------------------------------------------------------- formatting


class _FormatError(ApiError):
    def __init__(self, reason: str):
        super().__init__(400, f"Bad Request: can't parse entities: {reason}")


class _TextBuilder:
    """Accumulates parsed text and entities with UTF-16 offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[JSONDict] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += _utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start, **extra})

    def result(self) -> tuple[str, list[JSONDict]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")
_HTML_TAG_NAME_RE = re.compile(r"[A-Za-z0-9-]*")
_HTML_ATTR_RE = re.compile(r"""([A-Za-z0-9_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


def _html_entity(match: re.Match[str]) -> str | None:
    name = match.group(1)
    if not name.startswith("#"):
        return _HTML_NAMED.get(name)
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    return None


def _html_unescape(text: str) -> str:
    return _HTML_ENTITY_RE.sub(lambda m: _html_entity(m) or m.group(0), text)


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into (plain text, entities); raise like Telegram."""
    out = _TextBuilder()
    stack: list[JSONDict] = []  # open tags: name, kind, start, attrs
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char == "&":
            match = _HTML_ENTITY_RE.match(source, i)
            decoded = _html_entity(match) if match else None
            if match and decoded is not None:
                out.add(decoded)
                i = match.end()
            else:
                out.add("&")
                i += 1
            continue
        if char != "<":
            j = i + 1
            while j < n and source[j] not in "<&":
                j += 1
            out.add(source[i:j])
            i = j
            continue
        at = len(source[:i].encode())
        if source.startswith("</", i):
            name_match = _HTML_TAG_NAME_RE.match(source, i + 2)
            assert name_match is not None
            name = name_match.group().lower()
            j = name_match.end()
            while j < n and source[j].isspace():
                j += 1
            if j >= n or source[j] != ">":
                raise _FormatError(f"Unclosed end tag at byte offset {at}")
            if not stack:
                raise _FormatError(f"Unexpected end tag at byte offset {at}")
            top = stack.pop()
            if name and name != top["name"]:
                raise _FormatError(
                    f'Unmatched end tag at byte offset {at}, expected "</{top["name"]}>", '
                    f'found "</{name}>"'
                )
            _close_html_tag(out, top, stack)
            i = j + 1
            continue
        name_match = _HTML_TAG_NAME_RE.match(source, i + 1)
        assert name_match is not None
        name = name_match.group().lower()
        if name not in _HTML_TAGS:
            raise _FormatError(f'Unsupported start tag "{name}" at byte offset {at}')
        attrs: dict[str, str] = {}
        j = name_match.end()
        while True:
            while j < n and source[j].isspace():
                j += 1
            if j >= n:
                raise _FormatError(f"Unclosed start tag at byte offset {at}")
            if source[j] == ">":
                break
            attr = _HTML_ATTR_RE.match(source, j)
            if not attr:
                raise _FormatError(f'Unclosed start tag "{name}" at byte offset {at}')
            value = next((g for g in attr.groups()[1:] if g is not None), "")
            attrs[attr.group(1).lower()] = _html_unescape(value)
            j = attr.end()
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _FormatError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise _FormatError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {at}')
        stack.append({"name": name, "kind": _HTML_TAGS[name], "start": out.pos, "attrs": attrs})
        i = j + 1
    if stack:
        raise _FormatError(f'Can\'t find end tag corresponding to start tag "{stack[-1]["name"]}"')
    return out.result()


def _close_html_tag(out: _TextBuilder, tag: JSONDict, stack: list[JSONDict]) -> None:
    kind, start, attrs = tag["kind"], tag["start"], tag["attrs"]
    if kind == "code" and stack and stack[-1]["kind"] == "pre":
        language = attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1]["language"] = language.removeprefix("language-")
        return  # <pre><code> is one pre entity
    if kind == "text_link":
        if attrs.get("href"):
            out.entity("text_link", start, url=attrs["href"])
    elif kind == "pre":
        extra = {"language": tag["language"]} if tag.get("language") else {}
        out.entity("pre", start, **extra)
    elif kind == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in attrs else "blockquote", start)
    elif kind == "custom_emoji":
        out.entity("custom_emoji", start, custom_emoji_id=attrs["emoji-id"])
    else:
        out.entity(kind, start)


_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _md_closes(kind: str, source: str, i: int) -> bool:
    """Whether the delimiter at ``source[i]`` ends an open entity of ``kind``."""
    char = source[i]
    nxt = source[i + 1] if i + 1 < len(source) else ""
    return {
        "bold": char == "*",
        "italic": char == "_" and nxt != "_",
        "underline": source.startswith("__", i),
        "strikethrough": char == "~",
        "spoiler": source.startswith("||", i),
        "text_link": char == "]",
        "custom_emoji": char == "]",
    }.get(kind, False)


def parse_markdown_v2(source: str) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2 into (plain text, entities); raise like Telegram.

    Covers escapes, the reserved characters, bold/italic/underline/strikethrough/spoiler,
    inline code, pre blocks with a language, links, custom emoji and ``>`` block quotes.
    """
    out = _TextBuilder()
    stack: list[JSONDict] = []  # open entities: kind, start, at (byte offset of the opener)
    quote: int | None = None
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        in_code = bool(stack) and stack[-1]["kind"] in ("code", "pre")
        if not in_code and (i == 0 or source[i - 1] == "\n"):
            if char == ">":
                if quote is None:
                    quote = out.pos
                i += 1
                continue
            if quote is not None:
                out.pos -= 1  # the block quote ends before the line break
                out.entity("blockquote", quote)
                out.pos += 1
                quote = None
        if char == "\\" and i + 1 < n and 0 < ord(source[i + 1]) <= 126:
            out.add(source[i + 1])
            i += 2
            continue
        if in_code:
            top = stack[-1]
            if top["kind"] == "pre" and source.startswith("```", i):
                stack.pop()
                extra = {"language": top["language"]} if top.get("language") else {}
                out.entity("pre", top["start"], **extra)
                i += 3
            elif top["kind"] == "code" and char == "`":
                stack.pop()
                out.entity("code", top["start"])
                i += 1
            else:
                out.add(char)
                i += 1
            continue
        if char not in _MD_RESERVED:
            out.add(char)
            i += 1
            continue
        at = len(source[:i].encode())
        if stack and _md_closes(stack[-1]["kind"], source, i):
            top = stack.pop()
            kind = top["kind"]
            i += 2 if kind in ("underline", "spoiler") else 1
            if kind in ("text_link", "custom_emoji"):
                i = _md_close_link(out, top, source, i)
            else:
                out.entity(kind, top["start"])
            continue
        opened: JSONDict = {"start": out.pos, "at": at}
        if char == "_" and source.startswith("__", i):
            opened["kind"], i = "underline", i + 2
        elif char == "_":
            opened["kind"], i = "italic", i + 1
        elif char == "*":
            opened["kind"], i = "bold", i + 1
        elif char == "~":
            opened["kind"], i = "strikethrough", i + 1
        elif char == "|" and source.startswith("||", i):
            opened["kind"], i = "spoiler", i + 2
        elif char == "[":
            opened["kind"], i = "text_link", i + 1
        elif char == "!" and source.startswith("![", i):
            opened["kind"], i = "custom_emoji", i + 2
        elif source.startswith("```", i):
            opened["kind"], i = "pre", i + 3
            line_end = source.find("\n", i)
            language = source[i:line_end] if line_end != -1 else ""
            if language and not any(c.isspace() or c == "`" for c in language):
                opened["language"], i = language, line_end + 1
        elif char == "`":
            opened["kind"], i = "code", i + 1
        else:
            raise _FormatError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        stack.append(opened)
    if stack:
        top = stack[-1]
        raise _FormatError(f"Can't find end of {_MD_NAMES[top['kind']]} entity at byte offset {top['at']}")
    if quote is not None:
        out.entity("blockquote", quote)
    return out.result()


def _md_close_link(out: _TextBuilder, top: JSONDict, source: str, i: int) -> int:
    """Read the ``(url)`` after a link's ``]``; returns the index after it."""
    url = ""
    if i < len(source) and source[i] == "(":
        j = i + 1
        chars: list[str] = []
        while j < len(source) and source[j] != ")":
            if source[j] == "\\" and j + 1 < len(source) and source[j + 1] in ")\\":
                j += 1
            chars.append(source[j])
            j += 1
        if j >= len(source):
            raise _FormatError(f"Can't find end of a URL at byte offset {len(source[:i].encode())}")
        url, i = "".join(chars), j + 1
    if top["kind"] == "custom_emoji":
        match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
        if not match:
            raise _FormatError("Custom emoji URL must have an emoji identifier")
        out.entity("custom_emoji", top["start"], custom_emoji_id=match.group(1))
    elif url:
        out.entity("text_link", top["start"], url=url)
    return i


def _strip(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Trim leading and trailing whitespace like Telegram, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = _utf16_len(text[: len(text) - len(text.lstrip())])
    total = _utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# ---------------------------------------------------------------------------- the fake


class FakeBotApi:
    """An in-process Telegram Bot API server (a Starlette app in ``.app``).

    Args:
        token: the only token the fake accepts; others get 401 Unauthorized. Its digits
            before ``:`` are the bot's user id, as on Telegram.
        username: the bot's username (``getMe``).
        first_name: the bot's display name.
        enforce_limits: answer 429 when Telegram's flood limits would be exceeded.
        time_source: the clock for rate limits and ``SentRecord.at`` (monotonic seconds);
            pass a fake clock to test time logic without sleeping.
        date_source: the wall clock (unix seconds) for message ``date`` fields.
        delay_seconds: real latency added to every call (for benchmarks).
        global_limit, chat_limit, group_limit: ``(count, seconds)`` sliding windows.
        validate_formatting: parse HTML/MarkdownV2 text and refuse malformed markup.

    State for tests:
        ``calls``: every call as ``(method, params)`` (canonical method name, decoded params).
        ``sent``: :class:`SentRecord` per successful send or edit.
        ``messages``: ``{(chat_id, message_id): Message dict}``, the bot's messages now.
        ``incoming``: the same for messages pushed with :meth:`push_message`.
        ``callback_answers``: the ``answerCallbackQuery`` parameters, in order.
        ``commands``: ``{scope key: {"commands", "scope", "language_code"}}`` — the key is
        the scope type, plus ``:<chat_id>``/``:<user_id>`` for chat scopes and
        ``/<language_code>`` when one is given.
        ``webhook``: the last ``setWebhook`` parameters (empty when none is set).
        ``chats``: chats registered with :meth:`add_chat` (or seen in pushes).
        ``migrated``: ``{old group id: new supergroup id}``.
        ``too_many`` / ``too_many_by_chat``: 429 answers from limit enforcement (including
        ``blocked_hits``, those refused because the chat was still blocked).
        ``chat_blocked_until``: chat → ``time_source()`` value until which it gets 429.
        ``conflicts``: 409 answers to ``getUpdates``.
    """

    def __init__(
        self,
        token: str = "123:TEST",
        username: str = "dutybot_test_bot",
        *,
        first_name: str = "Dutybot Test",
        enforce_limits: bool = False,
        time_source: Callable[[], float] = time.monotonic,
        date_source: Callable[[], float] = time.time,
        delay_seconds: float = 0.0,
        global_limit: tuple[int, float] = (30, 1.0),
        chat_limit: tuple[int, float] = (1, 1.0),
        group_limit: tuple[int, float] = (20, 60.0),
        validate_formatting: bool = True,
    ) -> None:
        self.token = token
        self.username = username
        self.first_name = first_name
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.enforce_limits = enforce_limits
        self.time_source = time_source
        self.date_source = date_source
        self.delay_seconds = delay_seconds
        self.global_limit = global_limit
        self.chat_limit = chat_limit
        self.group_limit = group_limit
        self.validate_formatting = validate_formatting

        self.calls: list[tuple[str, JSONDict]] = []
        self.sent: list[SentRecord] = []
        self.messages: dict[tuple[int | str, int], JSONDict] = {}
        self.incoming: dict[tuple[int | str, int], JSONDict] = {}
        self.callback_answers: list[JSONDict] = []
        self.commands: dict[str, JSONDict] = {}
        self.webhook: JSONDict = {}
        self.files: dict[str, StoredFile] = {}
        self.chats: dict[int | str, JSONDict] = {}
        self.migrated: dict[int, int] = {}
        self.allowed_updates: list[str] = []

        self.too_many = 0
        self.too_many_by_chat: Counter[int | str] = Counter()
        self.blocked_hits = 0
        self.chat_blocked_until: dict[int | str, float] = {}
        self.conflicts = 0

        self._queue: list[JSONDict] = []
        self._next_update_id = 1
        self._next_message_id: dict[int | str, int] = defaultdict(lambda: 1)
        self._users: dict[int | str, str] = {}
        self._open_callbacks: set[str] = set()
        self._callback_counter = itertools.count(1)
        self._file_counter = itertools.count(1)
        self._failures: list[_Failure] = []
        self._global_sends: deque[float] = deque()
        self._chat_sends: defaultdict[int | str, deque[float]] = defaultdict(deque)
        self._group_sends: defaultdict[int | str, deque[float]] = defaultdict(deque)
        self._update_event = asyncio.Event()
        self._poll_generation = 0
        self._waiting_pollers = 0
        self._closed = False

        handlers: dict[str, Callable[[JSONDict, Request], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getFile": self._get_file,
            "sendChatAction": self._send_chat_action,
        }
        self._methods = {name.lower(): (name, fn) for name, fn in handlers.items()}
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._file_endpoint, methods=["GET"]),
            ]
        )

    # ------------------------------------------------------------ test-driving API

    @property
    def bot_user(self) -> JSONDict:
        """The bot as the ``from`` of its messages."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    @property
    def pending(self) -> list[JSONDict]:
        """Queued updates not yet confirmed by a ``getUpdates`` offset."""
        return list(self._queue)

    @property
    def waiting_pollers(self) -> int:
        """How many ``getUpdates`` calls are waiting for an update right now."""
        return self._waiting_pollers

    def add_chat(
        self, chat_id: int | str, type: str, title: str | None = None, *, username: str | None = None
    ) -> JSONDict:
        """Register a chat's ``type`` (``private``/``group``/``supergroup``/``channel``).

        Unregistered chats are ``private`` for positive ids and ``supergroup`` for negative
        ones. Returns the Chat object the fake will use.
        """
        chat: JSONDict = {"id": chat_id, "type": type}
        if type == "private":
            chat["first_name"] = title or self._users.get(chat_id, "User")
        else:
            chat["title"] = title or f"Group {chat_id}"
        if username:
            chat["username"] = username
        self.chats[chat_id] = chat
        return dict(chat)

    def add_file(self, file_id: str, data: bytes, file_path: str | None = None) -> JSONDict:
        """Make ``data`` available via ``getFile(file_id)`` and the file download URL.

        ``file_path`` defaults to ``documents/<file_id>``. Returns the File object.
        """
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=f"U{file_id}"[:32],
            file_path=file_path or f"documents/{file_id}",
            data=bytes(data),
        )
        self.files[file_id] = stored
        return stored.as_json()

    def push_message(
        self,
        chat_id: int,
        from_id: int,
        text: str,
        *,
        chat_type: str | None = None,
        first_name: str = "王芳",
        update_id: int | None = None,
        photo: str | list[JSONDict] | None = None,
        document: str | JSONDict | None = None,
        migrate_to_chat_id: int | None = None,
        migrate_from_chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSONDict:
        """Queue a ``message`` update from user ``from_id`` in ``chat_id``; return the update.

        ``chat_type`` defaults to the registered type (see :meth:`add_chat`), else
        ``private`` for positive ids and ``supergroup`` for negative ones. A text starting
        with ``/`` gets a ``bot_command`` entity over its first word. ``photo``/``document``
        take a file id (preferably registered with :meth:`add_file`) or the ready object;
        ``text`` then becomes the caption. ``migrate_to_chat_id`` makes the service message
        of a group upgraded to a supergroup (later sends to the group get 400 with
        ``migrate_to_chat_id``); ``migrate_from_chat_id`` the one in the new supergroup.
        ``update_id`` may repeat an earlier one, to simulate redelivery.
        """
        self._users[from_id] = first_name
        chat = self._chat(chat_id, chat_type)
        message: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "from": {"id": from_id, "is_bot": False, "first_name": first_name},
            "chat": chat,
            "date": int(self.date_source()),
        }
        if reply_to_message_id is not None:
            replied = self._find_message(chat_id, reply_to_message_id)
            if replied is not None:
                message["reply_to_message"] = self._without_reply(copy.deepcopy(replied))
        if photo is not None:
            message["photo"] = photo if isinstance(photo, list) else self._photo_sizes(photo)
        if document is not None:
            message["document"] = (
                document if isinstance(document, dict) else self._document(document)
            )
        if migrate_to_chat_id is not None:
            message["migrate_to_chat_id"] = migrate_to_chat_id
            self.migrated[int(chat_id)] = migrate_to_chat_id
            self.chats.setdefault(migrate_to_chat_id, {**chat, "id": migrate_to_chat_id,
                                                       "type": "supergroup"})
        if migrate_from_chat_id is not None:
            message["migrate_from_chat_id"] = migrate_from_chat_id
        if text:
            field = "caption" if photo is not None or document is not None else "text"
            message[field] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["caption_entities" if field == "caption" else "entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
                ]
        self.incoming[(chat_id, message["message_id"])] = message
        return self._queue_update({"message": message}, update_id)

    def push_callback(
        self,
        chat_id: int,
        from_id: int,
        message_id: int,
        data: str,
        *,
        chat_type: str | None = None,
        first_name: str = "王芳",
        update_id: int | None = None,
    ) -> JSONDict:
        """Queue a ``callback_query`` update: user ``from_id`` pressed a button with ``data``
        under the bot's message ``message_id`` in ``chat_id``; return the update.

        The query's ``message`` is the stored bot message (a minimal one when the fake
        never sent it). Its ``id`` becomes answerable with ``answerCallbackQuery`` once.
        """
        self._users[from_id] = first_name
        stored = self.messages.get((chat_id, message_id))
        if stored is not None:
            message = copy.deepcopy(stored)  # a snapshot: later edits don't change the update
        else:
            message = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat(chat_id, chat_type),
                "date": int(self.date_source()),
                "text": "",
            }
        query_id = str(4_000_000_000_000_000 + next(self._callback_counter))
        self._open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": {"id": from_id, "is_bot": False, "first_name": first_name},
            "message": message,
            "chat_instance": str(7_000_000_000_000_000 + zlib.crc32(str(chat_id).encode())),
            "data": data,
        }
        return self._queue_update({"callback_query": query}, update_id)

    def push_update(self, payload: JSONDict, update_id: int | None = None) -> JSONDict:
        """Queue any other update, e.g. ``{"my_chat_member": {...}}``; return it."""
        return self._queue_update(dict(payload), update_id)

    @staticmethod
    def update_json(update: JSONDict) -> JSONDict:
        """A JSON-ready deep copy of ``update``, e.g. to POST it to a webhook."""
        return json.loads(json.dumps(update, ensure_ascii=False))

    def fail_next(
        self,
        method: str,
        chat_id: int | str | None = None,
        *,
        status: int,
        description: str,
        parameters: JSONDict | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (to ``chat_id``, if given) fail.

        The call answers HTTP ``status`` with ``description`` and ``parameters`` (e.g.
        ``{"retry_after": 3}`` or ``{"migrate_to_chat_id": -100123}``). ``method`` is
        case-insensitive; ``"*"`` matches every method. ``times=None`` fails until
        :meth:`clear_failures`. With ``enforce_limits`` an injected ``retry_after`` also
        blocks the chat for that long, as Telegram does.
        """
        self._failures.append(
            _Failure(method.lower(), None if chat_id is None else _chat_key(chat_id), status,
                     description, parameters, times)
        )

    def clear_failures(self) -> None:
        """Forget every failure injected with :meth:`fail_next`."""
        self._failures.clear()

    def sent_to(self, chat_id: int | str) -> list[SentRecord]:
        """The ``sent`` records for one chat."""
        return [record for record in self.sent if record.chat_id == chat_id]

    def close(self) -> None:
        """Answer waiting ``getUpdates`` calls now and stop long-polling (for teardown)."""
        self._closed = True
        self._wake_pollers()

    # ------------------------------------------------------------ internals

    def _queue_update(self, payload: JSONDict, update_id: int | None) -> JSONDict:
        if update_id is None:
            update_id = self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        update = {"update_id": update_id, **payload}
        self._queue.append(update)
        self._wake_pollers()
        return update

    def _wake_pollers(self) -> None:
        self._update_event.set()
        self._update_event = asyncio.Event()

    def _chat(self, chat_id: int | str, chat_type: str | None = None) -> JSONDict:
        """The Chat object for ``chat_id``; an explicit ``chat_type`` registers the chat."""
        known = self.chats.get(chat_id)
        if known is not None and chat_type in (None, known["type"]):
            return dict(known)
        if chat_type is not None:
            return self.add_chat(chat_id, chat_type, known.get("title") if known else None)
        if isinstance(chat_id, int) and chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": self._users.get(chat_id, "User")}
        return {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}

    def _is_group(self, chat_id: int | str) -> bool:
        known = self.chats.get(chat_id)
        if known is not None:
            return known["type"] in ("group", "supergroup")
        return isinstance(chat_id, int) and chat_id < 0

    def _new_message_id(self, chat_id: int | str) -> int:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _find_message(self, chat_id: int | str, message_id: int) -> JSONDict | None:
        return self.messages.get((chat_id, message_id)) or self.incoming.get((chat_id, message_id))

    @staticmethod
    def _without_reply(message: JSONDict) -> JSONDict:
        return {k: v for k, v in message.items() if k != "reply_to_message"}

    def _photo_sizes(self, file_id: str) -> list[JSONDict]:
        stored = self.files.get(file_id)
        size: JSONDict = {
            "file_id": file_id,
            "file_unique_id": stored.file_unique_id if stored else f"U{file_id}"[:32],
            "width": 1280,
            "height": 960,
        }
        if stored:
            size["file_size"] = len(stored.data)
        return [size]

    def _document(self, file_id: str, file_name: str | None = None) -> JSONDict:
        stored = self.files.get(file_id)
        name = file_name or (stored.file_path.rsplit("/", 1)[-1] if stored else file_id)
        document: JSONDict = {
            "file_id": file_id,
            "file_unique_id": stored.file_unique_id if stored else f"U{file_id}"[:32],
            "file_name": name,
        }
        mime, _ = mimetypes.guess_type(name)
        if mime:
            document["mime_type"] = mime
        if stored:
            document["file_size"] = len(stored.data)
        return document

    # ------------------------------------------------------------ HTTP layer

    async def _endpoint(self, request: Request) -> Response:
        token = request.path_params["token"]
        asked = request.path_params["method"]
        name, handler = self._methods.get(asked.lower(), (asked, None))
        try:
            params = await _read_params(request)
        except ApiError as exc:
            self.calls.append((name, {}))
            return exc.response()
        self.calls.append((name, params))
        if token != self.token:
            return ApiError(401, "Unauthorized").response()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if handler is None:
            return ApiError(404, "Not Found").response()
        try:
            self._inject_failure(name, params)
            if self.enforce_limits and name in RATE_LIMITED_METHODS and "chat_id" in params:
                self._check_rate(_chat_key(params["chat_id"]))
            result = await handler(params, request)
        except ApiError as exc:
            return exc.response()
        return JSONResponse({"ok": True, "result": result})

    async def _file_endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        path = request.path_params["file_path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return Response(stored.data, media_type="application/octet-stream")
        return ApiError(404, "Not Found").response()

    def _inject_failure(self, method: str, params: JSONDict) -> None:
        chat: int | str | None = None
        with contextlib.suppress(ApiError):
            chat = _chat_key(params.get("chat_id"))
        for failure in self._failures:
            if failure.method not in ("*", method.lower()):
                continue
            if failure.chat_id is not None and failure.chat_id != chat:
                continue
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
            retry_after = (failure.parameters or {}).get("retry_after")
            if self.enforce_limits and retry_after and chat is not None:
                self.chat_blocked_until[chat] = self.time_source() + float(retry_after)
            raise ApiError(failure.status, failure.description, failure.parameters)

    def _check_rate(self, chat: int | str) -> None:
        """Apply Telegram's flood limits to one send to ``chat`` at ``time_source()``.

        Sliding windows: a send at ``now`` is allowed when each window holds fewer than
        ``count`` sends at times ``t`` with ``t + seconds > now``. A refused send is not
        recorded; it blocks the chat for ``retry_after`` (whole seconds, at least 1).
        """
        now = self.time_source()
        blocked_until = self.chat_blocked_until.get(chat)
        if blocked_until is not None and now < blocked_until:
            self.blocked_hits += 1
            self._too_many(chat, max(1, math.ceil(blocked_until - now)))
        windows = [(self._global_sends, self.global_limit), (self._chat_sends[chat], self.chat_limit)]
        if self._is_group(chat):
            windows.append((self._group_sends[chat], self.group_limit))
        wait = 0.0
        for sends, (count, seconds) in windows:
            while sends and sends[0] + seconds <= now:
                sends.popleft()
            if len(sends) >= count:
                wait = max(wait, sends[len(sends) - count] + seconds - now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            self.chat_blocked_until[chat] = now + retry_after
            self._too_many(chat, retry_after)
        for sends, _ in windows:
            sends.append(now)

    def _too_many(self, chat: int | str, retry_after: int) -> None:
        self.too_many += 1
        self.too_many_by_chat[chat] += 1
        raise ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    # ------------------------------------------------------------ text and markup checks

    def _render(
        self, text: Any, parse_mode: Any, entities: Any, *, limit: int, caption: bool = False
    ) -> tuple[str, list[JSONDict]]:
        """The text and entities Telegram would store, or the error it would answer."""
        what = "message caption" if caption else "message text"
        if text is None or text == "":
            if caption:
                return "", []
            raise ApiError(400, f"Bad Request: {what} is empty")
        text = str(text)
        mode = str(parse_mode or "").strip().lower()
        if mode not in ("", "html", "markdownv2", "markdown"):
            raise ApiError(400, f"Bad Request: unsupported parse_mode \"{parse_mode}\"")
        if mode == "html" and self.validate_formatting:
            text, parsed = parse_html(text)
        elif mode == "markdownv2" and self.validate_formatting:
            text, parsed = parse_markdown_v2(text)
        else:
            parsed = list(entities) if isinstance(entities, list) else []
        text, parsed = _strip(text, parsed)
        if not text and not caption:
            raise ApiError(400, f"Bad Request: {what} is empty")
        if _utf16_len(text) > limit:
            raise ApiError(400, f"Bad Request: message {'caption ' if caption else ''}is too long")
        return text, parsed

    @staticmethod
    def _markup(value: Any) -> JSONDict | None:
        """Validate ``reply_markup``; returns it when it is an inline keyboard."""
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in value:
            return None  # reply keyboards are not part of the returned message
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(
                400,
                'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an '
                "Array of Arrays",
            )
        actions = ("callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat",
                   "switch_inline_query_chosen_chat", "copy_text", "web_app", "login_url",
                   "callback_game", "pay")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                        'Field "text" must be of type String')
                if not any(key in button for key in actions):
                    raise ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                        "Text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    size = len(str(button["callback_data"]).encode())
                    if not 1 <= size <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if "url" in button and not re.match(r"(https?|tg)://\S+$", str(button["url"])):
                    raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
        return value

    def _check_not_migrated(self, chat: int | str) -> None:
        if isinstance(chat, int) and chat in self.migrated:
            raise ApiError(400, GROUP_UPGRADED, {"migrate_to_chat_id": self.migrated[chat]})

    def _reply_to(self, chat: int | str, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = bool(reply.get("allow_sending_without_reply"))
        else:
            message_id = params.get("reply_to_message_id")
            allow = _bool_param(params, "allow_sending_without_reply")
        if message_id in (None, ""):
            return None
        found = self._find_message(chat, int(message_id))
        if found is None and not allow:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return self._without_reply(copy.deepcopy(found)) if found else None

    def _store_new(
        self, method: str, chat: int | str, params: JSONDict, content: JSONDict, raw_text: Any
    ) -> JSONDict:
        """Store a new bot message with ``content`` and record the send."""
        self._check_not_migrated(chat)
        markup = self._markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat, params)
        message: JSONDict = {
            "message_id": self._new_message_id(chat),
            "from": self.bot_user,
            "chat": self._chat(chat),
            "date": int(self.date_source()),
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(content)
        if markup is not None:
            message["reply_markup"] = markup
        self.messages[(chat, message["message_id"])] = message
        self.sent.append(
            SentRecord(method, chat, raw_text, markup, message["message_id"], self.time_source())
        )
        return message

    # ------------------------------------------------------------ methods

    async def _get_me(self, params: JSONDict, request: Request) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JSONDict, request: Request) -> list[JSONDict]:
        if self.webhook.get("url"):
            self.conflicts += 1
            raise ApiError(409, WEBHOOK_ACTIVE)
        offset = _int_param(params, "offset", 0) or 0
        limit = min(max(_int_param(params, "limit", 100) or 100, 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = [str(kind) for kind in allowed]
        if offset < 0:
            self._queue = self._queue[offset:]
        elif offset:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]

        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # a newer getUpdates ends any waiting one
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        disconnected = asyncio.ensure_future(self._client_gone(request))
        self._waiting_pollers += 1
        try:
            while True:
                if self._poll_generation != generation:
                    self.conflicts += 1
                    raise ApiError(409, TERMINATED_BY_OTHER)
                batch = [u for u in self._queue if self._wanted(u)][:limit]
                remaining = deadline - loop.time()
                if batch or remaining <= 0 or self._closed:
                    return batch
                woken = asyncio.ensure_future(self._update_event.wait())
                done, _ = await asyncio.wait(
                    {woken, disconnected}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
                if disconnected in done:
                    return []  # nobody is listening any more
        finally:
            self._waiting_pollers -= 1
            disconnected.cancel()

    def _wanted(self, update: JSONDict) -> bool:
        if not self.allowed_updates:
            return True
        return any(kind in update for kind in self.allowed_updates)

    @staticmethod
    async def _client_gone(request: Request) -> None:
        """Return once the client has closed the connection (the body is already read)."""
        while (await request.receive())["type"] != "http.disconnect":
            pass

    async def _send_message(self, params: JSONDict, request: Request) -> JSONDict:
        chat = _chat_key(params.get("chat_id"))
        text, entities = self._render(
            params.get("text"), params.get("parse_mode"), params.get("entities"), limit=MAX_TEXT
        )
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        return self._store_new("sendMessage", chat, params, content, params.get("text"))

    async def _send_photo(self, params: JSONDict, request: Request) -> JSONDict:
        chat = _chat_key(params.get("chat_id"))
        file_id, _ = self._accept_upload(params.get("photo"), "photos")
        content: JSONDict = {"photo": self._photo_sizes(file_id)}
        self._add_caption(content, params)
        return self._store_new("sendPhoto", chat, params, content, params.get("caption"))

    async def _send_document(self, params: JSONDict, request: Request) -> JSONDict:
        chat = _chat_key(params.get("chat_id"))
        file_id, file_name = self._accept_upload(params.get("document"), "documents")
        content: JSONDict = {"document": self._document(file_id, file_name)}
        self._add_caption(content, params)
        return self._store_new("sendDocument", chat, params, content, params.get("caption"))

    def _add_caption(self, content: JSONDict, params: JSONDict) -> None:
        caption, entities = self._render(
            params.get("caption"), params.get("parse_mode"), params.get("caption_entities"),
            limit=MAX_CAPTION, caption=True,
        )
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities

    def _accept_upload(self, value: Any, folder: str) -> tuple[str, str | None]:
        """A sent file: an upload becomes a new stored file; a string is a file id or URL."""
        if isinstance(value, Upload):
            number = next(self._file_counter)
            file_id = f"FILE{number:06d}"
            suffix = value.filename.rsplit(".", 1)[-1] if "." in value.filename else "bin"
            self.add_file(file_id, value.data, f"{folder}/file_{number}.{suffix}")
            return file_id, value.filename
        if isinstance(value, str) and value:
            if value in self.files or value.startswith(("http://", "https://")):
                return value, None
            if value.startswith("attach://"):
                raise ApiError(400, "Bad Request: attached file is missing")
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _existing(self, params: JSONDict) -> tuple[int | str, int, JSONDict]:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = _chat_key(params.get("chat_id"))
        self._check_not_migrated(chat)
        message_id = _int_param(params, "message_id")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self.messages.get((chat, message_id))
        if message is None:
            raise ApiError(400, MESSAGE_TO_EDIT_NOT_FOUND)
        return chat, message_id, message

    async def _edit_message_text(self, params: JSONDict, request: Request) -> JSONDict:
        chat, message_id, message = self._existing(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._render(
            params.get("text"), params.get("parse_mode"), params.get("entities"), limit=MAX_TEXT
        )
        markup = self._markup(params.get("reply_markup"))
        same = (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        )
        if same:
            raise ApiError(400, NOT_MODIFIED)
        message["text"] = text
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        self._set_markup(message, markup)
        self.sent.append(SentRecord("editMessageText", chat, params.get("text"), markup,
                                    message_id, self.time_source()))
        return message

    async def _edit_message_reply_markup(self, params: JSONDict, request: Request) -> JSONDict:
        chat, message_id, message = self._existing(params)
        markup = self._markup(params.get("reply_markup"))
        if markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        self._set_markup(message, markup)
        self.sent.append(SentRecord("editMessageReplyMarkup", chat, message.get("text"), markup,
                                    message_id, self.time_source()))
        return message

    def _set_markup(self, message: JSONDict, markup: JSONDict | None) -> None:
        message["edit_date"] = int(self.date_source())
        if markup is None:
            message.pop("reply_markup", None)  # editing without a keyboard removes it
        else:
            message["reply_markup"] = markup

    async def _delete_message(self, params: JSONDict, request: Request) -> bool:
        chat = _chat_key(params.get("chat_id"))
        message_id = _int_param(params, "message_id")
        key = (chat, message_id or 0)
        if self.messages.pop(key, None) is None and self.incoming.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _answer_callback_query(self, params: JSONDict, request: Request) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_callbacks:
            raise ApiError(400, QUERY_TOO_OLD)
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(dict(params))
        return True

    @staticmethod
    def _scope_key(scope: JSONDict, language_code: str) -> str:
        key = str(scope.get("type", "default"))
        for field in ("chat_id", "user_id"):
            if field in scope:
                key += f":{scope[field]}"
        return f"{key}/{language_code}" if language_code else key

    @staticmethod
    def _scope(params: JSONDict) -> JSONDict:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        return scope

    async def _set_my_commands(self, params: JSONDict, request: Request) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict):
                raise ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            command = str(item.get("command", "")).removeprefix("/")
            description = str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        scope = self._scope(params)
        language_code = str(params.get("language_code") or "")
        self.commands[self._scope_key(scope, language_code)] = {
            "commands": cleaned,
            "scope": scope,
            "language_code": language_code,
        }
        return True

    async def _get_my_commands(self, params: JSONDict, request: Request) -> list[JSONDict]:
        key = self._scope_key(self._scope(params), str(params.get("language_code") or ""))
        return list(self.commands.get(key, {}).get("commands", []))

    async def _delete_my_commands(self, params: JSONDict, request: Request) -> bool:
        key = self._scope_key(self._scope(params), str(params.get("language_code") or ""))
        self.commands.pop(key, None)
        return True

    async def _set_webhook(self, params: JSONDict, request: Request) -> bool:
        url = str(params.get("url") or "")
        if url:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
            if (parts.port or 443) not in (443, 80, 88, 8443):
                raise ApiError(400, "Bad Request: bad webhook: Webhook can be set up only on "
                                    "ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if _bool_param(params, "drop_pending_updates"):
            self._queue.clear()
        if not url:
            self.webhook = {}
            return True
        self.webhook = {k: v for k, v in params.items() if k != "certificate"}
        if isinstance(params.get("allowed_updates"), list):
            self.allowed_updates = [str(kind) for kind in params["allowed_updates"]]
        self._wake_pollers()
        return True

    async def _delete_webhook(self, params: JSONDict, request: Request) -> bool:
        if _bool_param(params, "drop_pending_updates"):
            self._queue.clear()
        self.webhook = {}
        return True

    async def _get_webhook_info(self, params: JSONDict, request: Request) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook.get("url"):
            info["max_connections"] = int(self.webhook.get("max_connections") or 40)
            if self.allowed_updates:
                info["allowed_updates"] = list(self.allowed_updates)
        return info

    async def _get_file(self, params: JSONDict, request: Request) -> JSONDict:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return stored.as_json()

    async def _send_chat_action(self, params: JSONDict, request: Request) -> bool:
        _chat_key(params.get("chat_id"))
        return True
