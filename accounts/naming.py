"""What an account's name and a change request say, as the lifecycle rules read them.

- :func:`place_names`: the 行政区划地名 or organ names (国家行政机关单位名称) an account name
  contains (LIFE-5, 云南办法第十六条): the jurisdiction of the active profile and its stems
  (``重庆市梁平区`` → 重庆市、梁平区、重庆、梁平), the office's unit names, and any Chinese
  name ending in 省/市/州/县/区/旗/镇/乡/街道/政府/局/委/办. A match opens a duty (no
  refusal), so a word that only looks like a name costs a person one look, not a block;
  the duty names what was found.
- :func:`closes_interaction`: whether a change closes 私信、评论、留言 (REPLY-6, 宝鸡办法第二十一条).
- :func:`new_name`: the new name a change request asks for (``名称变更为…``, ``更名为…``).

Pure functions; :func:`office_units` is the one query (the units people and sites name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlmodel import Session, col, select

from people.models import Person
from roster.models import Site

#: A Chinese name ending in an administrative division or an organ word (at least two
#: characters before the ending, so 城市 or 社区 alone is not a name).
_NAME = re.compile(r"[\u4e00-\u9fff]{2,10}?(?:街道|政府|省|市|州|县|区|旗|镇|乡|局|委|办)")
_DIVISION = re.compile(r"[\u4e00-\u9fff]{2,8}?(?:自治州|自治县|省|市|州|县|区|旗)")
_SUFFIX = re.compile(r"(?:自治州|自治县|省|市|州|县|区|旗)$")
_CLOSE = re.compile(r"(?:关闭|停用|禁用|取消|屏蔽|关掉)[^，。；,;]{0,6}(?:私信|评论|留言|互动)"
                    r"|(?:私信|评论|留言|互动)[^，。；,;]{0,6}(?:关闭|停用|禁用|取消|屏蔽|关掉)")
_RENAME = re.compile(r"(?:名称变更为|名称改为|更名为|改名为|名称更改为|变更名称为)\s*[“\"「]?([^”\"」，。；,;\s]{1,100})")


def jurisdiction_names(jurisdiction: str) -> list[str]:
    """``重庆市梁平区`` → ``重庆市、梁平区、重庆、梁平`` (stems of two or more characters)."""
    parts = _DIVISION.findall(jurisdiction)
    stems = [stem for p in parts if len(stem := _SUFFIX.sub("", p)) >= 2]
    return list(dict.fromkeys([*parts, *stems]))


def place_names(name: str, *, jurisdiction: str, units: Iterable[str] = ()) -> list[str]:
    """The place and organ names found in ``name``, longest first, each once ([] when none)."""
    known = [*jurisdiction_names(jurisdiction), *(u.strip() for u in units)]
    found = [k for k in known if len(k) >= 2 and k in name]
    found += _NAME.findall(name)
    unique = list(dict.fromkeys(found))
    # A stem inside a longer match (梁平 in 梁平区) says nothing more.
    return sorted((f for f in unique if not any(f != g and f in g for g in unique)), key=lambda f: (-len(f), f))


def office_units(session: Session) -> list[str]:
    """Every unit name people and sites of this office are registered under."""
    units = set(session.exec(select(Person.unit).where(col(Person.unit) != "")))
    units |= set(session.exec(select(Site.unit).where(col(Site.unit) != "")))
    return sorted(units)


def closes_interaction(text: str) -> bool:
    """Whether a change closes 私信、评论、留言 or the like (``关闭评论功能``, ``留言区停用``)."""
    return bool(_CLOSE.search(text))


def new_name(text: str) -> str | None:
    """The name a change asks for (``名称变更为“江川发布”`` → ``江川发布``), if any."""
    m = _RENAME.search(text)
    return m.group(1) if m else None
