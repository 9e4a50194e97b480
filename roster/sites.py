"""The registry of what the duty officers read (DUTY-5): websites and new-media accounts.

A :class:`~roster.models.Site` belongs to a unit; a site with an empty unit is read by
every unit (the simple shape of a one-unit deployment). Removing a site deactivates it,
so old reading rounds and reports still name it. Every change is recorded in the audit
log (entity ``site``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy import bindparam, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from core import audit
from core.errors import DutybotError, InputError, NotFound
from core.netguard import AllowList
from core.text import check_name
from people.models import Person
from roster.models import Site

MAX_NAME, MAX_URL, MAX_UNIT = 100, 1000, 100
COLUMNS = ("名称", "类型", "网址或账号", "单位", "内网")
REQUIRED = ("名称", "类型")
COLUMNS_HINT = "、".join(COLUMNS) + ("（名称、类型必填；网站须填网址；单位留空表示各单位都读；"
                                    "内网可不填，填“是”表示本单位内网网站，允许机器人巡检抓取）")
YES = frozenset({"是", "y", "yes", "true", "1", "内网"})
NO = frozenset({"否", "n", "no", "false", "0", "外网", ""})
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


class SiteKind(StrEnum):
    website = "website"
    wechat = "wechat"
    weibo = "weibo"
    douyin = "douyin"
    toutiao = "toutiao"
    app = "app"
    other = "other"


KIND_ZH = {SiteKind.website: "网站", SiteKind.wechat: "微信公众号", SiteKind.weibo: "微博",
           SiteKind.douyin: "抖音", SiteKind.toutiao: "头条号", SiteKind.app: "客户端",
           SiteKind.other: "其他"}
KIND_ALIASES: dict[str, SiteKind] = {v: k for k, v in KIND_ZH.items()} | {k.value: k for k in SiteKind} | {
    "政府网站": SiteKind.website, "门户网站": SiteKind.website, "网页": SiteKind.website,
    "公众号": SiteKind.wechat, "微信": SiteKind.wechat, "微信号": SiteKind.wechat,
    "新浪微博": SiteKind.weibo, "抖音号": SiteKind.douyin, "头条": SiteKind.toutiao,
    "今日头条": SiteKind.toutiao, "app": SiteKind.app, "移动客户端": SiteKind.app,
}


class SiteNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"没有找到在用的网站或账号“{name}”（可用 dutybot sites list 或 /sites 查看）。")
        self.name = name


class SiteImportFailed(InputError):
    """A sites file had bad rows; nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("导入失败，未导入任何网站或账号：\n" + "\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class NewSite:
    """A checked site, before it is stored."""

    name: str
    kind: SiteKind
    url: str
    unit: str
    # On a private or loopback address the office runs, which site watch may fetch;
    # None: keep what is stored (False for a new site).
    intranet: bool | None = None


def parse_yes_no(text: str, what: str) -> bool | None:
    """是/否 (``""``: not given, None)."""
    word = text.strip().lower()
    if not word:
        return None
    if word in YES or word in NO:
        return word in YES
    raise InputError(f"{what}应填“是”或“否”，而不是“{text.strip()}”")


def parse_kind(text: str) -> SiteKind:
    found = KIND_ALIASES.get(text.strip()) or KIND_ALIASES.get(text.strip().lower())
    if found is None:
        raise InputError(f"无法识别的类型“{text}”（可用：{'、'.join(KIND_ZH.values())}）")
    return found


def kind_zh(site: Site) -> str:
    """The Chinese name of the site's kind."""
    try:
        return KIND_ZH[SiteKind(site.kind)]
    except ValueError:
        return site.kind


def validate(name: str, kind: str, url: str = "", unit: str = "", intranet: bool | None = None) -> NewSite:
    """Check one site's fields; the first problem is raised as an InputError (a name, unit
    or address with a control, zero-width or bidi character too: :func:`core.text.check_name`)."""
    name, url, unit = check_name(name, "名称"), check_name(url, "网址或账号"), check_name(unit, "单位名称")
    if not name:
        raise InputError("缺少名称")
    if len(name) > MAX_NAME:
        raise InputError(f"名称过长（上限 {MAX_NAME} 字）")
    if not kind.strip():
        raise InputError("缺少类型")
    parsed = parse_kind(kind)
    if len(url) > MAX_URL:
        raise InputError(f"网址或账号过长（上限 {MAX_URL} 字）")
    if parsed == SiteKind.website:
        if not url:
            raise InputError(f"网站“{name}”须填写网址")
        if not _URL.match(url):
            raise InputError(f"网址“{url}”应以 http:// 或 https:// 开头")
    if len(unit) > MAX_UNIT:
        raise InputError(f"单位名称过长（上限 {MAX_UNIT} 字）")
    if intranet and parsed != SiteKind.website:
        raise InputError(f"只有网站可以登记为内网网站（“{name}”是{KIND_ZH[parsed]}）")
    return NewSite(name, parsed, url, unit, intranet)


def _stored(session: Session, name: str, unit: str) -> Site | None:
    return session.exec(select(Site).where(Site.name == name, Site.unit == unit)).first()


def _describe(site: Site | NewSite) -> str:
    kind = KIND_ZH[site.kind] if isinstance(site, NewSite) else kind_zh(site)
    where = f" {site.url}" if site.url else ""
    inner = "（内网）" if site.intranet else ""
    return f"{site.name}（{kind}）{where}{inner}｜{site.unit or '各单位'}"


def _save(session: Session, new: NewSite, now: datetime, actor: str) -> tuple[Site, bool]:
    """Insert, or update and reactivate the site of the same name and unit; (site, created)."""
    site = _stored(session, new.name, new.unit)
    created = site is None
    if site is None:
        site = Site(name=new.name, kind=new.kind.value, url=new.url, unit=new.unit, created_at=now,
                    intranet=bool(new.intranet))
    else:
        site.kind, site.url, site.active = new.kind.value, new.url, True
        if new.intranet is not None:
            site.intranet = new.intranet
    session.add(site)
    session.flush()
    audit.record(session=session, at=now, entity_type="site", entity_id=site.id or 0,
                 action="added" if created else "updated", actor=actor,
                 zh=("登记" if created else "更新") + f"读网对象：{_describe(site)}",
                 name=site.name, kind=site.kind, unit=site.unit, intranet=site.intranet)
    return site, created


def add_site(*, session: Session, new: NewSite, now: datetime, actor: str) -> tuple[Site, bool]:
    """Register ``new`` (or update the stored site of the same name and unit).

    Returns:
        The site and whether it was newly created.
    """
    return _save(session, new, now, actor)


def remove_site(*, session: Session, name: str, unit: str | None, now: datetime, actor: str) -> Site:
    """Deactivate the active site ``name`` (of ``unit`` when given).

    Raises:
        SiteNotFound: no such active site.
        InputError: the name is used by several units and ``unit`` was not given.
    """
    stmt = select(Site).where(Site.name == name.strip(), Site.active == True)  # noqa: E712
    if unit is not None:
        stmt = stmt.where(Site.unit == unit.strip())
    found = list(session.exec(stmt))
    if not found:
        raise SiteNotFound(name)
    if len(found) > 1:
        units = "、".join(s.unit or "各单位" for s in found)
        raise InputError(f"“{name}”在多个单位登记（{units}），请用 --unit 指明单位。")
    site = found[0]
    site.active = False
    session.add(site)
    audit.record(session=session, at=now, entity_type="site", entity_id=site.id or 0, action="removed",
                 actor=actor, from_state="active", to_state="inactive", zh=f"停用读网对象：{_describe(site)}",
                 name=site.name, unit=site.unit)
    return site


def set_support(*, session: Session, name: str, unit: str | None, person: Person | None, now: datetime,
                actor: str) -> Site:
    """Make ``person`` the 技术保障 of the active site ``name`` (of ``unit`` when given);
    ``None`` clears it, and the unit's 技术保障 people are pinged instead.

    Raises:
        SiteNotFound: no such active site.
        InputError: the name is used by several units and ``unit`` was not given, or
            ``person`` has left.
    """
    stmt = select(Site).where(Site.name == name.strip(), Site.active == True)  # noqa: E712
    if unit is not None:
        stmt = stmt.where(Site.unit == unit.strip())
    found = list(session.exec(stmt))
    if not found:
        raise SiteNotFound(name)
    if len(found) > 1:
        units = "、".join(s.unit or "各单位" for s in found)
        raise InputError(f"“{name}”在多个单位登记（{units}），请指明单位。")
    site = found[0]
    if person is not None and not person.active:
        raise InputError(f"“{person.name}”已停用，不能担任技术保障。")
    before = support_name(session, site)
    site.support_id = person.id if person is not None else None
    session.add(site)
    after = person.name if person is not None else ""
    audit.record(session=session, at=now, entity_type="site", entity_id=site.id or 0, action="support_set",
                 actor=actor, from_state=before or None, to_state=after or None,
                 zh=(f"设置技术保障：{_describe(site)} → {after}" if after
                     else f"清除技术保障：{_describe(site)}（原：{before or '无'}）"),
                 name=site.name, unit=site.unit)
    return site


def support_name(session: Session, site: Site) -> str:
    """The name of the site's own 技术保障, or ``""``."""
    if site.support_id is None:
        return ""
    person = session.get(Person, site.support_id)
    return person.name if person is not None else ""


def _host(address: str | None) -> str:
    if not address or not _URL.match(address):
        return ""
    return (urlsplit(address).hostname or "").lower()


def support_for(*, session: Session, site: str, url: str | None, unit: str) -> list[Person]:
    """The 技术保障 set on the registered site an incident names — by the site's name, or by
    the host of its address (``www.example.gov.cn``) — the unit's own site first; ``[]``
    when the site is not registered or has no 技术保障 of its own (callers then use the
    unit's: :func:`people.service.support_of_unit`).

    ``roster.sites`` fits :class:`incidents.service.SiteSupport` through this function;
    the composition root hands the module to the incidents policy.
    """
    name, host = site.strip(), _host(url) or site.strip().lower()
    candidates = list_sites(session=session, unit=unit) if unit else list_sites(session=session)
    hits = [s for s in candidates if s.name == name or (_host(s.url) and _host(s.url) == host)]
    hits.sort(key=lambda s: (s.unit != unit, s.name != name, s.id or 0))
    for hit in hits:
        if hit.support_id is not None:
            person = session.get(Person, hit.support_id)
            if person is not None and person.active:
                return [person]
    return []


def list_sites(*, session: Session, unit: str | None = None, include_inactive: bool = False) -> list[Site]:
    """Sites ordered by unit and name; with ``unit``: that unit's and the shared ones."""
    return list(session.exec(_sites_query(include_inactive, unit is not None), params={"unit": unit or ""}))


@functools.cache
def _sites_query(include_inactive: bool, by_unit: bool) -> SelectOfScalar[Site]:
    # Built once per shape (bound per call): every report looks up its site's 技术保障.
    stmt = select(Site)
    if not include_inactive:
        stmt = stmt.where(Site.active == True)  # noqa: E712
    if by_unit:
        stmt = stmt.where(or_(col(Site.unit) == bindparam("unit"), col(Site.unit) == ""))
    return stmt.order_by(col(Site.unit), col(Site.name), col(Site.id))


def sites_for(*, session: Session, unit: str) -> list[Site]:
    """What an officer of ``unit`` reads: the unit's active sites and the shared ones."""
    return list_sites(session=session, unit=unit)


def find_site(*, session: Session, name: str, unit: str) -> Site | None:
    """The active site called ``name`` that ``unit`` reads (its own first), if any."""
    name = name.strip()
    for site in sites_for(session=session, unit=unit):
        if site.name == name and site.unit == unit:
            return site
    return next((s for s in sites_for(session=session, unit=unit) if s.name == name), None)


def check_rows(rows: Iterable[Mapping[str, str]]) -> list[tuple[int, NewSite]]:
    """Check every row (nothing stored); blank rows are skipped.

    Raises:
        SiteImportFailed: one ``第N行：…`` line per bad row, or no data at all.
    """
    problems: list[str] = []
    checked: list[tuple[int, NewSite]] = []
    first: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows, start=2):   # row 1 is the header
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            new = validate(row.get("名称", ""), row.get("类型", ""), row.get("网址或账号", ""), row.get("单位", ""),
                           parse_yes_no(row.get("内网") or "", "内网"))
        except DutybotError as exc:
            problems.append(f"第{line}行：{exc.message}")
            continue
        key = (new.name, new.unit)
        if key in first:
            problems.append(f"第{line}行：“{new.name}”（{new.unit or '各单位'}）与第{first[key]}行重复")
            continue
        first[key] = line
        checked.append((line, new))
    if problems:
        raise SiteImportFailed(problems)
    if not checked:
        raise SiteImportFailed([f"文件中没有网站或账号数据（表头应为：{COLUMNS_HINT}）"])
    return checked


def import_sites(*, session: Session, rows: Iterable[Mapping[str, str]], now: datetime,
                 actor: str) -> tuple[list[Site], int]:
    """Import sites from table rows (:data:`COLUMNS`); all or nothing. Does not commit.

    A row naming a stored site (same name and unit) updates it and makes it active again.

    Returns:
        The stored sites in file order, and how many of them were new.

    Raises:
        SiteImportFailed: one line per bad row; nothing is stored.
    """
    sites, created = [], 0
    for _, new in check_rows(rows):
        site, was_new = _save(session, new, now, actor)
        sites.append(site)
        created += was_new
    return sites, created


def site_line(site: Site, *, with_unit: bool = False) -> str:
    """``门户网站（网站）https://…`` (and the unit)."""
    where = f" {site.url}" if site.url else ""
    inner = "（内网）" if site.intranet else ""
    unit = f"｜{site.unit or '各单位'}" if with_unit else ""
    return f"{site.name}（{kind_zh(site)}）{where}{inner}{unit}"


def is_intranet(site: Site, allow: AllowList) -> bool:
    """Whether ``site`` is an intranet website for evidence fetching: a website is intranet
    when the fetch allow-list (``[incidents] fetch_allow``) names its host or holds its
    numeric address — exactly the sites whose pages the bot may fetch as evidence at a
    non-public address (:mod:`core.netguard`). Site watch reads ``Site.intranet`` instead
    (``dutybot sites add --intranet``)."""
    return site.kind == SiteKind.website and bool(site.url) and allow.covers(site.url)
