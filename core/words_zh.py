"""Numbers, durations and date words as people type them in Chinese.

Pure functions: no I/O and no clock — the caller passes ``today`` or ``now`` (Asia/Shanghai
dates). The chat handlers and the CLI both use them, so ``明天``, ``下周一``, ``12月3日`` or
``十五个工作日`` mean the same wherever a date or a duration is typed.

Numbers: ``3``, ``３``, ``三``, ``十五``, ``二十一``, ``两``, ``一百二十``, ``一百零五``.
Durations: a number and a unit — ``3个工作日``, ``三个工作日``, ``两个月``, ``一百二十天``,
``2周`` (units ``工作日``, ``自然日``/``天``/``日``, ``周``/``星期``, ``月``/``个月``).
Days: ``今天`` ``明天`` ``后天`` ``大后天`` ``昨天`` ``前天``, ``周五``/``星期五`` (the next
one, today included), ``本周五``/``这周五``, ``下周一``, ``下下周一``, ``上周五``,
``12-03``/``12月3日``/``12.3`` (the nearest such day), ``2026-12-03``/``2026年12月3日``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta

from core.clock import SHANGHAI, local
from core.errors import InputError
from core.messages import duration_zh

_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
          "七": 7, "八": 8, "九": 9}
_UNIT = {"十": 10, "百": 100, "千": 1000}
NUMBER_CHARS = "0-9" + "".join(_DIGIT) + "".join(_UNIT)

UNIT_OF = {"工作日": "workdays", "自然日": "days", "天": "days", "日": "days", "周": "weeks",
           "星期": "weeks", "个月": "months", "月": "months"}
_DURATION = re.compile(rf"^([{NUMBER_CHARS}]+)\s*个?\s*(工作日|自然日|天|日|周|星期|个月|月)$")

_RELATIVE = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "昨天": -1,
             "昨日": -1, "前天": -2}
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0,
            "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_WEEK_WORD = re.compile(r"^(下下|下|上|本|这)?(?:周|星期|礼拜)([一二三四五六日天1-7])$")
_WEEK_SHIFT = {"下下": 2, "下": 1, "上": -1, "本": 0, "这": 0}
_FULL_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})日?$")
DAY_EXAMPLES = "今天、明天、后天、下周一、本周五、12-03、12月3日、2026-12-03"


def parse_number(text: str) -> int:
    """``15``, ``１５``, ``十五``, ``二十一``, ``两``, ``一百二十``, ``一百零五`` as an int.

    Raises:
        InputError: not a whole number written in digits or Chinese numerals.
    """
    raw = text
    text = unicodedata.normalize("NFKC", text.strip())   # full-width digits
    if text.isascii() and text.isdigit():
        return int(text)
    if not text or any(ch not in _DIGIT and ch not in _UNIT for ch in text):
        raise InputError(f"无法识别的数字“{raw}”。")
    total, digit, last_unit = 0, None, 10_000
    for ch in text:
        if ch in _DIGIT:
            if digit is not None and _DIGIT[ch] != 0:
                raise InputError(f"无法识别的数字“{raw}”。")   # 一二 is not a number
            digit = None if _DIGIT[ch] == 0 else _DIGIT[ch]      # 一百零五: 零 only spaces
        else:
            unit = _UNIT[ch]
            if unit >= last_unit:
                raise InputError(f"无法识别的数字“{raw}”。")   # 十百
            total += (digit if digit is not None else 1) * unit
            digit, last_unit = None, unit
    return total + (digit or 0)


def parse_duration(text: str) -> tuple[int, str] | None:
    """``三个工作日`` → ``(3, "workdays")``; ``两个月`` → ``(2, "months")``; None when
    ``text`` is not a number and a unit (units: ``workdays``, ``days``, ``weeks``, ``months``).

    Raises:
        InputError: a malformed numeral before a unit, such as ``十百天``.
    """
    m = _DURATION.match(unicodedata.normalize("NFKC", text.strip()))
    if not m:
        return None
    return parse_number(m.group(1)), UNIT_OF[m.group(2)]


def _on(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InputError(f"无法识别的日期“{text}”（没有这一天）。") from None


def parse_day(text: str, today: date) -> date:
    """A day as typed in a chat or on the command line; see the module docstring.

    Raises:
        InputError: not a day this understands, or a day that does not exist.
    """
    text = unicodedata.normalize("NFKC", text.strip())
    if text in _RELATIVE:
        return today + timedelta(days=_RELATIVE[text])
    m = _WEEK_WORD.match(text)
    if m:
        weekday = _WEEKDAY[m.group(2)]
        if m.group(1) is None:   # 周五: the coming one, today included
            return today + timedelta(days=(weekday - today.weekday()) % 7)
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(days=7 * _WEEK_SHIFT[m.group(1)] + weekday)
    m = _FULL_DATE.match(text)
    if m:
        return _on(int(m.group(1)), int(m.group(2)), int(m.group(3)), text)
    m = _MONTH_DAY.match(text)
    if m:
        found = _on(today.year, int(m.group(1)), int(m.group(2)), text)
        # Early January asking about late December means last year, and vice versa.
        if (found - today).days > 180:
            found = _on(found.year - 1, found.month, found.day, text)
        elif (today - found).days > 180:
            found = _on(found.year + 1, found.month, found.day, text)
        return found
    raise InputError(f"无法识别的日期“{text}”（可用：{DAY_EXAMPLES}）。")


def parse_start(text: str, now: datetime) -> datetime:
    """The start of a period: ``现在`` is ``now``; ``2026-10-08T09:30`` or ``2026-10-08 09:30``
    (Beijing time unless an offset is given) that instant; any day :func:`parse_day` reads,
    00:00 Beijing time of that day.

    Raises:
        InputError: neither an instant nor a day.
    """
    text = text.strip()
    if text in ("现在", "now"):
        return now
    if ":" in text or "T" in text:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"无法识别的时间“{text}”（如 2026-10-08 09:30）。") from None
        return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
    if text in ("today",):
        text = "今天"
    day = parse_day(text, local(now).date())
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def day_word(day: date, today: date) -> str:
    """``今天``, ``明天``, ``后天``, ``昨天``, else ``11月26日`` (with the year only when the day
    is more than half a year away: ``1月6日`` said on 12月30日 is next January)."""
    word = {0: "今天", 1: "明天", 2: "后天", -1: "昨天"}.get((day - today).days)
    if word:
        return word
    near = abs((day - today).days) <= 180
    return f"{day.month}月{day.day}日" if near else f"{day.year}年{day.month}月{day.day}日"


def by_when_zh(due: datetime, now: datetime) -> str:
    """A deadline as a phone reader needs it: ``今天 17:30 前（还剩2小时）``,
    ``11月26日 24:00 前（还剩3天）``, or ``已超期45分钟（今天 09:00）``. A deadline at
    midnight is 24:00 of the day before (the last day of the period)."""
    at = local(due)
    day, clock = at.date(), f"{at:%H:%M}"
    if (at.hour, at.minute) == (0, 0):
        day, clock = day - timedelta(days=1), "24:00"
    when = f"{day_word(day, local(now).date())} {clock}"
    if due > now:
        return f"{when} 前（还剩{duration_zh(due - now)}）"
    return f"已超期{duration_zh(now - due)}（{when}）"
