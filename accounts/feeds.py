"""Reading an account's posts from its feed (``Account.feed_url``): RSS 2.0, RSS 1.0, Atom
or JSON Feed.

Fetching goes through the bot's one guarded fetcher (:class:`core.fetcher.GuardedFetcher`):
internal, loopback and reserved addresses are refused unless ``[incidents] fetch_allow``
names them, every redirect is checked, the body is capped at :data:`FEED_MAX_BYTES`.

XML is parsed with the standard library's expat, with every entity declaration and
external entity refused (no ``defusedxml`` in the environment, and never ``lxml`` with
entities): a feed with ``<!ENTITY …>`` is rejected whole, so neither entity expansion
("billion laughs") nor a read of a local file is possible. Encodings expat does not know
(GB2312, GBK, GB18030) are decoded by Python first.

An entry counts as a post at its ``pubDate`` / ``published`` / ``updated`` /
``dc:date`` / ``date_published``; an entry without a date is skipped (it cannot be
counted on a day). Feeds rarely say what is original: an entry is original only when it
carries the category ``原创``. An entry dated more than :data:`FUTURE_SLACK` ahead of now
is not believed; a smaller skew is read as now.

:func:`fetch_feeds_job` is the periodic job (``[accounts] feed_fetch_minutes``).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from xml.parsers import expat

from sqlmodel import Session, col, select

from accounts.models import Account, AccountState
from accounts.posts import MAX_TITLE, PostIn, Recorded, read_time, record_posts
from accounts.register import find_account
from core.clock import SHANGHAI, ensure_utc
from core.errors import InputError
from core.fetcher import FetchFailed, GuardedFetcher
from core.text import clean_text
from roster.models import Site

log = logging.getLogger(__name__)

FEED_TIMEOUT = 15.0
FEED_MAX_BYTES = 2_000_000
MAX_ENTRIES = 1000
#: Feeds fetched at once by the periodic job.
CONCURRENCY = 4
FUTURE_SLACK = timedelta(hours=1)
FETCH_JOB = "accounts.feed_fetch"
HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; dutybot-feed/1.0)",
           "Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                     "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
           "Accept-Language": "zh-CN,zh;q=0.9"}

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
RSS1 = "{http://purl.org/rss/1.0/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
ORIGINAL_MARK = "原创"
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_EXPAT_NATIVE = frozenset({"utf_8", "utf_16", "latin_1", "ascii"})
_T = TypeVar("_T")


class FeedError(InputError):
    """A feed could not be read; ``reason`` is the Chinese cause."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"无法读取订阅 {url}：{reason}" if url else f"无法读取订阅：{reason}")
        self.url = url
        self.reason = reason


# ---------------------------------------------------------------- parsing

def _refuse(*_: object) -> int:
    raise FeedError("", "订阅内容含有实体声明或外部实体，出于安全考虑不予解析")


def _name(raw: str) -> str:
    """expat's ``uri}local`` as ElementTree's ``{uri}local``."""
    return "{" + raw if "}" in raw else raw


def parse_xml(body: bytes) -> ET.Element:
    """The document's root element, parsed with entity declarations and external entities
    refused.

    Raises:
        FeedError: not well-formed XML, an encoding Python does not know, or entities.
    """
    override: str | None = None
    if not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = _DECLARED.match(body[:300])
        if declared:
            try:
                codec = codecs.lookup(declared.group(1).decode("ascii")).name.replace("-", "_")
            except LookupError:
                raise FeedError("", f"不支持的编码 {declared.group(1).decode('ascii')}") from None
            if codec not in _EXPAT_NATIVE:
                body = body.decode(codec, errors="replace").encode("utf-8")
                override = "utf-8"
    parser = expat.ParserCreate(encoding=override, namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    builder = ET.TreeBuilder()
    parser.StartElementHandler = lambda tag, attrs: builder.start(
        _name(tag), {_name(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(_name(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
        return builder.close()
    except expat.ExpatError as exc:
        raise FeedError("", f"不是有效的 XML（第{exc.lineno}行有误）") from None
    except AssertionError:   # TreeBuilder: no root element
        raise FeedError("", "不是有效的 XML") from None


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return re.sub(r"\s+", " ", clean_text("".join(element.itertext()))).strip()


def feed_time(text: str) -> datetime | None:
    """An entry's date: RFC 822 (RSS), ISO 8601 (Atom, JSON Feed) or a Chinese form;
    without an offset, Asia/Shanghai. None when there is none or it cannot be read."""
    text = text.strip()
    if not text:
        return None
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            return read_time(text)
        except InputError:
            return None
    return ensure_utc(value if value.tzinfo is not None else value.replace(tzinfo=SHANGHAI))


def _entry(title: str, when: str, categories: Sequence[str], now: datetime) -> PostIn | None:
    posted_at = feed_time(when)
    if posted_at is None or posted_at > now + FUTURE_SLACK:
        return None
    original = any(c.strip() == ORIGINAL_MARK for c in categories)
    return PostIn(posted_at=min(posted_at, now), title=title[:MAX_TITLE], original=original)


def _xml_entries(root: ET.Element, now: datetime) -> list[PostIn | None]:
    if root.tag == "rss":
        return [_entry(_text(item.find("title")), _text(item.find("pubDate")) or _text(item.find(f"{DC}date")),
                       [_text(c) for c in item.findall("category")], now)
                for item in root.iter("item")]
    if root.tag == f"{ATOM}feed":
        return [_entry(_text(e.find(f"{ATOM}title")),
                       _text(e.find(f"{ATOM}published")) or _text(e.find(f"{ATOM}updated")),
                       [c.get("term", "") or c.get("label", "") for c in e.findall(f"{ATOM}category")], now)
                for e in root.findall(f"{ATOM}entry")]
    if root.tag == f"{RDF}RDF":
        return [_entry(_text(item.find(f"{RSS1}title")), _text(item.find(f"{DC}date")),
                       [_text(s) for s in item.findall(f"{DC}subject")], now)
                for item in root.findall(f"{RSS1}item")]
    raise FeedError("", "不是 RSS、Atom 或 JSON Feed 订阅")


def _json_entries(body: bytes, now: datetime) -> list[PostIn | None]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FeedError("", "不是有效的 JSON") from None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise FeedError("", "不是 JSON Feed 订阅（缺少 items）")
    out: list[PostIn | None] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        title = next((str(item[k]) for k in ("title", "summary", "content_text") if item.get(k)), "")
        when = str(item.get("date_published") or item.get("date_modified") or "")
        tags = [str(t) for t in item.get("tags", []) if isinstance(t, str)] if isinstance(item.get("tags"), list) else []
        out.append(_entry(re.sub(r"\s+", " ", clean_text(title)).strip(), when, tags, now))
    return out


def parse_feed(body: bytes, *, now: datetime) -> list[PostIn]:
    """The dated entries of an RSS, Atom or JSON feed, at most :data:`MAX_ENTRIES`.

    Raises:
        FeedError: not a feed, malformed, or (XML) with entity declarations.
    """
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    entries = _json_entries(body, now) if head.startswith(b"{") else _xml_entries(parse_xml(body), now)
    return [e for e in entries if e is not None][:MAX_ENTRIES]


# ---------------------------------------------------------------- fetching

async def fetch_feed(url: str, *, fetcher: GuardedFetcher, now: datetime, timeout: float = FEED_TIMEOUT,
                     max_bytes: int = FEED_MAX_BYTES) -> list[PostIn]:
    """Fetch ``url`` through the guarded fetcher and parse it.

    Raises:
        FetchFailed: the URL or its address is refused, or the network failed.
        FeedError: the server did not answer 200, or the body is not a feed.
    """
    fetched = await fetcher.fetch(url, timeout=timeout, max_bytes=max_bytes, headers=HEADERS)
    if fetched.status != 200:
        raise FeedError(url, f"服务器返回 HTTP {fetched.status}")
    try:
        return parse_feed(fetched.body, now=now)
    except FeedError as exc:
        raise FeedError(url, exc.reason) from None


@dataclass(frozen=True)
class FeedTarget:
    """An account whose feed is read."""

    account_id: int
    name: str
    url: str


@dataclass(frozen=True)
class FeedResult:
    """What reading one feed gave: its posts, or the Chinese reason it failed."""

    target: FeedTarget
    posts: tuple[PostIn, ...] = ()
    error: str = ""


def feed_targets(*, session: Session, name: str | None = None, unit: str | None = None) -> list[FeedTarget]:
    """The active accounts with a feed address (only ``name``, when given, whatever its
    state), by name.

    Raises:
        AccountNotFound, AccountAmbiguous: ``name`` is not one registered account.
        InputError: ``name`` has no feed address.
    """
    if name is not None:
        account = find_account(session=session, name=name, unit=unit)
        site = session.get(Site, account.site_id)
        if not account.feed_url.strip():
            raise InputError(f"账号“{name}”未登记订阅地址（登记表的“订阅地址”列）。")
        assert account.id is not None and site is not None
        return [FeedTarget(account.id, site.name, account.feed_url.strip())]
    rows = session.exec(select(Account, Site).join(Site, col(Site.id) == col(Account.site_id))
                        .where(Account.state == AccountState.active, Account.feed_url != "")
                        .order_by(col(Site.name), col(Account.id)))
    return [FeedTarget(a.id, s.name, a.feed_url.strip()) for a, s in rows
            if a.id is not None and a.feed_url.strip()]


async def read_feed(target: FeedTarget, *, fetcher: GuardedFetcher, now: datetime) -> FeedResult:
    """One feed read; a failure becomes the result's ``error``."""
    try:
        posts = await fetch_feed(target.url, fetcher=fetcher, now=now)
    except (FetchFailed, FeedError) as exc:
        return FeedResult(target, error=exc.reason)
    return FeedResult(target, tuple(posts))


async def read_feeds(targets: Sequence[FeedTarget], *, fetcher: GuardedFetcher, now: datetime,
                     concurrency: int = CONCURRENCY) -> list[FeedResult]:
    """Read every feed, at most ``concurrency`` at once; results in the targets' order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(target: FeedTarget) -> FeedResult:
        async with gate:
            return await read_feed(target, fetcher=fetcher, now=now)

    return list(await asyncio.gather(*(one(t) for t in targets)))


def record_feed(*, session: Session, result: FeedResult, now: datetime) -> Recorded | None:
    """Record what a feed gave (None: it failed, or the account is gone)."""
    account = session.get(Account, result.target.account_id)
    if result.error or account is None:
        return None
    return record_posts(session=session, account=account, posts=result.posts, source="feed", now=now,
                        actor="system")


def run_blocking(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to the end from synchronous code: on this thread, or on a helper
    thread when this one already runs an event loop (the drill mode ticks on it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def fetch_feeds_job(session: Session, fire_time: datetime, now: datetime, *, fetcher: GuardedFetcher) -> int:
    """The periodic job: read the feed of every active account that has one.

    The job's fire is committed before the network is touched, so the fetches (up to a
    minute each) never hold the database's write lock; the posts are recorded after.

    Returns:
        How many new posts were recorded.
    """
    targets = feed_targets(session=session)
    if not targets:
        return 0
    session.commit()
    results = run_blocking(read_feeds(targets, fetcher=fetcher, now=now))
    new = 0
    for result in results:
        if result.error:
            log.warning("feed of account %s (%s) not read: %s", result.target.account_id, result.target.url,
                        result.error)
            continue
        recorded = record_feed(session=session, result=result, now=now)
        new += recorded.new if recorded else 0
    log.info("feeds read: %d account(s), %d new post(s)", len(targets), new)
    return new
