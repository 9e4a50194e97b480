"""Checking one account's fields, keyed by the columns offices keep their register in
(:data:`COLUMNS`), so a file row and a command's options pass the same checks.

A column that is absent keeps the stored value; a text or date column present but empty
clears it; an empty 状态, 账号类型, 备案状态 or 互动功能 keeps it (a new account takes the
default: 在用, 部门账号, 未备案 unless a 备案编号 is given, 开启). Every problem is an
:class:`~core.errors.InputError` with the Chinese sentence a person sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from accounts.models import FILING_ZH, STATE_ZH, AccountState, FilingStatus
from core.clock import DateOutOfRange
from core.errors import InputError
from core.text import check_name, clean_text
from roster.importer import parse_day
from roster.sites import KIND_ALIASES, KIND_ZH, SiteKind, validate

COLUMNS = ("账号名称", "平台", "账号ID", "主办单位", "运维人员", "主管领导", "账号类型", "状态", "开通日期",
           "备案状态", "备案编号", "备案日期", "订阅地址", "互动功能", "备注")
REQUIRED = ("账号名称", "平台", "主办单位")
COLUMNS_HINT = "、".join(COLUMNS) + "（账号名称、平台、主办单位必填）"
PLATFORMS = tuple(k for k in SiteKind if k != SiteKind.website)
PLATFORMS_ZH = "、".join(KIND_ZH[k] for k in PLATFORMS)
GOVERNMENT_ZH = {True: "政府账号", False: "部门账号"}
COMMENTS_ZH = {True: "开启", False: "关闭"}
MAX_ID, MAX_PERSON, MAX_NUMBER, MAX_FEED, MAX_NOTE = 1000, 100, 100, 1000, 300

_STATE_ALIASES: dict[str, AccountState] = {v: k for k, v in STATE_ZH.items()} | {k.value: k for k in AccountState} | {
    "正常": AccountState.active, "运行": AccountState.active, "正常运行": AccountState.active,
    "正常运营": AccountState.active, "已开通": AccountState.active, "开通": AccountState.active,
    "申请中": AccountState.opening, "开设中": AccountState.opening, "未开通": AccountState.opening,
    "公告期": AccountState.closing, "关停中": AccountState.closing,
    "关停": AccountState.closed, "停用": AccountState.closed, "注销": AccountState.cancelled,
}
_FILING_ALIASES: dict[str, FilingStatus] = {v: k for k, v in FILING_ZH.items()} | {k.value: k for k in FilingStatus} | {
    "是": FilingStatus.filed, "已": FilingStatus.filed, "否": FilingStatus.unfiled, "未": FilingStatus.unfiled,
}
_GOVERNMENT_ALIASES = {"政府账号": True, "政府": True, "市县政府账号": True, "政府门户账号": True,
                       "部门账号": False, "部门": False}
_COMMENTS_ALIASES = {"开启": True, "开": True, "已开启": True, "是": True, "开放": True,
                     "关闭": False, "关": False, "已关闭": False, "否": False}
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_T = TypeVar("_T")


class NotAnAccount(InputError):
    """A website was given where a new-media account is expected."""

    def __init__(self, name: str = "") -> None:
        what = f"“{name}”是网站，" if name else ""
        super().__init__(f"{what}网站不是政务新媒体账号，不在账号登记中登记（网站请用 dutybot sites add）。"
                         f"账号的平台可选：{PLATFORMS_ZH}")
        self.name = name


@dataclass(frozen=True)
class AccountIn:
    """A checked account, before it is stored: the site's fields, and the account's
    columns that were given (``values``: attribute name → value; absent: keep)."""

    name: str
    kind: SiteKind
    unit: str
    platform_id: str | None = None
    values: Mapping[str, object] = field(default_factory=dict)

    def state(self) -> AccountState | None:
        value = self.values.get("state")
        return AccountState(str(value)) if value is not None else None


def parse_platform(text: str) -> SiteKind:
    """``微信公众号``, ``公众号``, ``wechat``, ``微博`` … → the platform.

    Raises:
        NotAnAccount: a website kind.
        InputError: unknown.
    """
    text = text.strip()
    found = KIND_ALIASES.get(text) or KIND_ALIASES.get(text.lower())
    if found is None:
        raise InputError(f"无法识别的平台“{text}”（可选：{PLATFORMS_ZH}）")
    if found == SiteKind.website:
        raise NotAnAccount()
    return found


def _choice(text: str, aliases: Mapping[str, _T], what: str, options: str) -> _T:
    key = text.strip()
    found = aliases.get(key) if key in aliases else aliases.get(key.lower())
    if found is None:
        raise InputError(f"无法识别的{what}“{text}”（可填：{options}）")
    return found


def _day(text: str, what: str, today: date, *, not_after_today: bool = False) -> date | None:
    if not text.strip():
        return None
    try:
        day = parse_day(text)
    except DateOutOfRange as exc:
        raise InputError(f"{what}{exc.message}") from None
    except InputError:
        raise InputError(f"{what}“{text.strip()}”无法识别：应为 YYYY-MM-DD，如 2026-03-01") from None
    if not_after_today and day > today:
        raise InputError(f"{what}{day.isoformat()}晚于今天")
    return day


def check_text(value: str, what: str, limit: int, *, name: bool = True) -> str:
    """``value`` stripped, checked as a name (or cleaned as free text), within ``limit``."""
    text = check_name(value, what) if name else clean_text(value).strip()
    if len(text) > limit:
        raise InputError(f"{what}过长（上限 {limit} 字）")
    return text


def parse_fields(cells: Mapping[str, str], *, today: date) -> AccountIn:
    """One account from its cells, keyed by :data:`COLUMNS` (a missing key keeps the
    stored value; an empty text or date cell clears it; an empty 状态, 账号类型, 备案状态 or
    互动功能 keeps it, or takes the default for a new account).

    Raises:
        InputError: the first problem, in Chinese (:class:`NotAnAccount` for a website).
    """
    name = check_name(cells.get("账号名称", ""), "账号名称")
    if not name:
        raise InputError("缺少账号名称")
    platform = cells.get("平台", "")
    if not platform.strip():
        raise InputError("缺少平台")
    try:
        kind = parse_platform(platform)
    except NotAnAccount:
        raise NotAnAccount(name) from None
    unit = check_name(cells.get("主办单位", ""), "主办单位")
    if not unit:
        raise InputError("缺少主办单位")
    given_id = cells.get("账号ID")
    platform_id = check_text(given_id or "", "账号ID", MAX_ID)
    site = validate(name, kind.value, platform_id, unit)   # the reading register's own checks
    values: dict[str, object] = {}
    for column, attr in (("运维人员", "operator"), ("主管领导", "approver")):
        if column in cells:
            values[attr] = check_text(cells[column], column, MAX_PERSON)
    if (text := cells.get("账号类型", "").strip()):
        values["government"] = _choice(text, _GOVERNMENT_ALIASES, "账号类型", "政府账号、部门账号")
    if (text := cells.get("状态", "").strip()):
        values["state"] = _choice(text, _STATE_ALIASES, "状态", "、".join(STATE_ZH.values())).value
    if "开通日期" in cells:
        values["opened_on"] = _day(cells["开通日期"], "开通日期", today)
    if (text := cells.get("互动功能", "").strip()):
        values["comments_open"] = _choice(text, _COMMENTS_ALIASES, "互动功能", "开启、关闭")
    if "订阅地址" in cells:
        feed = check_text(cells["订阅地址"], "订阅地址", MAX_FEED)
        if feed and not _URL.match(feed):
            raise InputError(f"订阅地址“{feed}”应以 http:// 或 https:// 开头")
        values["feed_url"] = feed
    if "备注" in cells:
        values["note"] = check_text(cells["备注"], "备注", MAX_NOTE, name=False)
    values.update(_filing(cells, today))
    return AccountIn(name=site.name, kind=kind, unit=site.unit, platform_id=site.url if given_id is not None else None,
                     values=values)


def _filing(cells: Mapping[str, str], today: date) -> dict[str, object]:
    """The 备案 columns: a number without a status means 已备案."""
    status_text, number_text = cells.get("备案状态"), cells.get("备案编号")
    values: dict[str, object] = {}
    number = check_text(number_text, "备案编号", MAX_NUMBER) if number_text is not None else None
    filed_on = _day(cells["备案日期"], "备案日期", today, not_after_today=True) if "备案日期" in cells else None
    if status_text is not None and status_text.strip():
        status = _choice(status_text, _FILING_ALIASES, "备案状态", "、".join(FILING_ZH.values()))
    elif number:
        status = FilingStatus.filed
    elif number_text is not None and status_text is not None:
        status = FilingStatus.unfiled
    else:
        status = None
    if status == FilingStatus.unfiled and (number or filed_on):
        raise InputError("备案状态为“未备案”，却填写了备案编号或备案日期")
    if status is not None:
        values["filing_status"] = status.value
    if number is not None:
        values["filing_number"] = number
    if "备案日期" in cells:
        values["filed_on"] = filed_on
    return values
