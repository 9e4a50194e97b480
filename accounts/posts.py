"""Recording an account's posts (issue 18 item 3): from a platform export, a feed, or chat.

Posts are the evidence the cadence rules (:mod:`accounts.cadence`) count. They come from

* a platform back-end's export (CSV or xlsx, :func:`parse_export`): a date column
  (``日期``, ``发布时间``, ``发表时间``, ``群发时间``, ``发布日期``), optionally a title
  (``标题``, ``内容``, ``作品名称``) and whether it is original (``原创``, ``是否原创``,
  ``类型``: 是/否、原创/转载、1/0). Dates are read in the forms offices type them
  (``2026-11-23 10:00``, ``2026/11/23``, ``2026年11月23日``), in Asia/Shanghai. Every bad
  row is listed by its row number and nothing is stored while any is bad;
* a feed (:mod:`accounts.feeds`);
* one post said in chat (``/post 名称 标题 [原创]``).

Re-recording never counts a post twice: each post has a ``key`` (:func:`post_key`), unique
per account. The key is the post's Asia/Shanghai day and its title (spaces and width
folded), so the same post from an export and from a feed is one post; a post without a
title is keyed by its instant. Identical (day, title) pairs within one batch are told
apart by their order, so re-importing the same file is stable.

Functions work in the caller's transaction and never commit.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlmodel import Session, col, select

from accounts.models import Account, AccountPost
from core import audit
from core.clock import SHANGHAI, check_year_range, ensure_utc, local
from core.errors import InputError
from core.text import clean_text

MAX_TITLE = 300
#: Errors shown of a bad file (the count says how many more there are).
MAX_ERRORS_SHOWN = 20
#: Where a post was learned from, as the audit log says it.
SOURCES = {"import": "导入", "feed": "订阅", "chat": "聊天登记"}

#: Header names, in the order they are preferred when a file has several.
DATE_COLUMNS = ("日期", "发布时间", "发表时间", "群发时间", "发布日期", "时间")
TITLE_COLUMNS = ("标题", "作品名称", "内容")
ORIGINAL_COLUMNS = ("原创", "是否原创", "类型")
COLUMNS_HINT = "日期、标题、原创（或平台导出的 发布时间/发表时间/群发时间、标题/内容/作品名称、是否原创/类型）"

_YES = frozenset({"是", "原创", "1", "1.0", "y", "yes", "true", "√", "✓"})
_NO = frozenset({"", "否", "转载", "非原创", "0", "0.0", "n", "no", "false", "×"})
ORIGINAL_VALUES_ZH = "是/否、原创/转载、1/0"

_CN_DATE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]*(\d{1,2})\s*[:：时]\s*(\d{1,2})\s*(?:分)?(?:\s*[:：]?\s*(\d{1,2})\s*秒?)?)?$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class PostIn:
    """A post to record: when (aware), its title (may be empty), whether original."""

    posted_at: datetime
    title: str = ""
    original: bool = False


@dataclass(frozen=True)
class Recorded:
    """What recording a batch did."""

    new: int
    already: int

    def zh(self) -> str:
        """``新增 3 条，已记录过 12 条``."""
        return f"新增 {self.new} 条，已记录过 {self.already} 条"


def normalize_title(title: str) -> str:
    """The title as the key sees it: width folded (NFKC), spaces collapsed, lower case."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", title)).strip().lower()


def post_key(post: PostIn, nth: int = 0) -> str:
    """The post's dedupe key: its day and title, or its instant when it has no title;
    ``nth`` tells apart identical ones in one batch."""
    at = local(post.posted_at)
    title = normalize_title(post.title)
    identity = f"{at.date().isoformat()}|{title}|{nth}" if title else f"{at:%Y-%m-%dT%H:%M:%S}||{nth}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def keyed(posts: Sequence[PostIn]) -> list[tuple[str, PostIn]]:
    """Each post with its key, repeats in the batch numbered in order."""
    seen: dict[str, int] = {}
    out: list[tuple[str, PostIn]] = []
    for post in posts:
        base = post_key(post)
        nth = seen.get(base, 0)
        seen[base] = nth + 1
        out.append((post_key(post, nth) if nth else base, post))
    return out


def record_posts(*, session: Session, account: Account, posts: Sequence[PostIn], source: str,
                 now: datetime, actor: str) -> Recorded:
    """Store the posts not recorded before (by key); one audit event for the batch.

    Args:
        source: ``import``, ``feed`` or ``chat``.

    Returns:
        How many were new and how many were already recorded.
    """
    assert account.id is not None and source in SOURCES
    pairs = keyed(posts)
    keys = [k for k, _ in pairs]
    known: set[str] = set()
    for start in range(0, len(keys), 500):   # stay under every database's parameter limit
        chunk = keys[start:start + 500]
        known.update(session.exec(select(AccountPost.key).where(
            AccountPost.account_id == account.id, col(AccountPost.key).in_(chunk))))
    new = 0
    for key, post in pairs:
        if key in known:
            continue
        known.add(key)
        session.add(AccountPost(account_id=account.id, posted_at=ensure_utc(post.posted_at),
                                title=post.title[:MAX_TITLE], original=post.original, source=source,
                                key=key, created_at=now))
        new += 1
    session.flush()
    if new:
        audit.record(session=session, at=now, entity_type="account", entity_id=account.id,
                     action="posts_recorded", actor=actor, source=source, new=new,
                     already=len(pairs) - new, zh=f"登记发布记录（{SOURCES[source]}）：新增 {new} 条")
    return Recorded(new=new, already=len(pairs) - new)


# ---------------------------------------------------------------- reading values

def read_time(text: str) -> datetime:
    """A time from ``2026-11-23 10:00``, ``2026/11/23``, ``2026年11月23日 10时30分`` or ISO
    8601 (an offset is kept; without one, Asia/Shanghai); a day alone is 00:00 that day.

    Raises:
        InputError: not a date, an impossible date, or outside 2000–2100.
    """
    text = text.strip()
    if not text:
        raise InputError("缺少日期")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        m = _CN_DATE.match(text)
        if m is None:
            raise InputError(f"无法识别的日期“{text[:40]}”（可写 2026-11-23 10:00、2026/11/23 或 2026年11月23日）") from None
        year, month, day, hh, mm, ss = (int(g) if g else 0 for g in m.groups())
        try:
            value = datetime(year, month, day, hh, mm, ss, tzinfo=SHANGHAI)
        except ValueError:
            raise InputError(f"日期“{text[:40]}”不存在") from None
    check_year_range(value, "日期")
    return ensure_utc(value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value)


def parse_post_time(text: str, *, now: datetime) -> datetime:
    """A post's time (:func:`read_time`), which cannot be after ``now``.

    Raises:
        InputError: as :func:`read_time`, or the time is after ``now``.
    """
    value = read_time(text)
    if value > now:
        raise InputError(f"日期“{text.strip()[:40]}”晚于现在")
    return value


def parse_original(text: str) -> bool:
    """``是``/``原创``/``1`` → True, ``否``/``转载``/``0``/empty → False.

    Raises:
        InputError: anything else.
    """
    value = text.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InputError(f"无法识别的原创标记“{text[:20]}”（可写：{ORIGINAL_VALUES_ZH}）")


def _column(header: Sequence[str], names: Sequence[str]) -> str | None:
    return next((name for name in names if name in header), None)


def parse_export(rows: Sequence[Mapping[str, str]], *, now: datetime) -> list[PostIn]:
    """Posts from the rows of a platform export (``core.tables.read_table`` output; row 2
    of the file is the first). Empty rows are skipped.

    Raises:
        InputError: no date column, no rows, or bad rows — every bad row listed as
            ``第N行：…``; nothing is returned then.
    """
    if not rows:
        raise InputError("文件中没有发布记录")
    header = list(rows[0])
    date_col = _column(header, DATE_COLUMNS)
    if date_col is None:
        raise InputError(f"文件缺少日期列（表头应为：{COLUMNS_HINT}）")
    title_col, original_col = _column(header, TITLE_COLUMNS), _column(header, ORIGINAL_COLUMNS)
    posts: list[PostIn] = []
    errors: list[str] = []
    for number, row in enumerate(rows, start=2):
        if not any((v or "").strip() for v in row.values()):
            continue
        problems = []
        posted_at = None
        try:
            posted_at = parse_post_time(row.get(date_col, ""), now=now)
        except InputError as exc:
            problems.append(str(exc))
        original = False
        if original_col is not None:
            try:
                original = parse_original(row.get(original_col, ""))
            except InputError as exc:
                problems.append(str(exc))
        if problems or posted_at is None:
            errors.append(f"第{number}行：" + "；".join(problems))
            continue
        title = clean_text(row.get(title_col, "") if title_col else "").strip()[:MAX_TITLE]
        posts.append(PostIn(posted_at=posted_at, title=title, original=original))
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = [f"……另有 {len(errors) - len(shown)} 行有误"] if len(errors) > len(shown) else []
        raise InputError("\n".join([*shown, *more, f"共 {len(errors)} 行有误，未导入任何记录。请改正后重新导入。"]))
    if not posts:
        raise InputError("文件中没有发布记录")
    return posts


def day_only(instant: datetime) -> bool:
    """Whether a recorded time is a day without a time of day (00:00 in Asia/Shanghai)."""
    return local(instant).time() == time(0, 0)


def when_zh(instant: datetime, now: datetime) -> str:
    """``11月20日 10:30`` or ``11月20日`` (a day-only record), ``今天 10:30`` for today."""
    at = local(instant)
    today = local(now).date()
    day = {0: "今天", 1: "昨天"}.get((today - at.date()).days)
    if day is None:
        day = f"{at.month}月{at.day}日" if abs((today - at.date()).days) <= 180 else f"{at.year}年{at.month}月{at.day}日"
    return day if day_only(instant) else f"{day} {at:%H:%M}"
