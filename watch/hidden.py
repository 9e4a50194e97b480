"""Hidden links and links to gambling, porn or private-server sites (issue 17 item 2).

A page gets a ``hidden_link`` finding for a link when either:

- **it points to a bad site**, hidden or not: its host ends with a listed suffix (``.casino``)
  or contains a listed string (``baccarat``), or — for a link that leaves the site and
  ``gov.cn`` — its text contains a listed phrase (``传奇私服``). The list is
  ``watch/data/bad_domains.txt`` (:class:`BadLinkList`, format in that file's header);
- **CSS hides it and it leaves the site**: hidden as :mod:`watch.text` decides (the link or
  an ancestor: ``display:none``, ``visibility:hidden``, off-screen, ``font-size:0``, zero
  size with ``overflow:hidden``, ``opacity:0``), pointing to a host registered under
  another domain than the page and the site, and not under ``gov.cn``. Hidden links to the
  site itself are the tabs, drop-down menus and mobile navigation every portal has, and
  the 友情链接 lists of other government sites are often folded away: neither is spam.

A visible link to an ordinary external site is never a finding. One finding per
(page, target): ``key = finding_key(url, href)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from roster.models import Site
from watch.models import FindingKind
from watch.terms import LexiconError
from watch.text import Link, PageContent, host_of, is_gov_host, links, same_site
from watch.types import Found, finding_key

BAD_DOMAINS = "bad_domains.txt"


@dataclass(frozen=True)
class BadMatch:
    """Why a link is bad: its category (赌博, 色情, 私服) and the pattern it matched."""

    category: str
    pattern: str


class BadLinkList:
    """Host suffixes, host substrings and link-text phrases of bad sites, by category."""

    def __init__(self, suffixes: dict[str, str], hosts: dict[str, str], phrases: dict[str, str]) -> None:
        self.suffixes = suffixes      # ".casino" -> category
        self.hosts = hosts            # "baccarat" -> category
        self.phrases = phrases        # "传奇私服" -> category

    @classmethod
    def parse(cls, lines: Iterable[str], source: str = BAD_DOMAINS) -> BadLinkList:
        """Read the list format; raises :class:`LexiconError` on a bad line."""
        suffixes: dict[str, str] = {}
        hosts: dict[str, str] = {}
        phrases: dict[str, str] = {}
        problems: list[str] = []
        category = ""
        for number, raw in enumerate(lines, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                category = line[1:-1].strip()
                if not category:
                    problems.append(f"{source} 第 {number} 行：类别名称为空")
                continue
            if not category:
                problems.append(f"{source} 第 {number} 行“{line[:40]}”：条目前缺少 [类别]")
            elif " " in line:
                problems.append(f"{source} 第 {number} 行“{line[:40]}”：一行只写一条，不能有空格")
            elif not line.isascii():
                phrases[line] = category
            elif line.startswith("."):
                suffixes[line.lower()] = category
            else:
                hosts[line.lower()] = category
        if problems:
            raise LexiconError(problems)
        return cls(suffixes, hosts, phrases)

    def match(self, link: Link, *, offsite: bool) -> BadMatch | None:
        """The category and pattern a link matches, or None."""
        host = link.host
        for suffix, category in self.suffixes.items():
            if host.endswith(suffix):
                return BadMatch(category, suffix)
        for part, category in self.hosts.items():
            if part in host:
                return BadMatch(category, part)
        if offsite:
            for phrase, category in self.phrases.items():
                if phrase in link.text:
                    return BadMatch(category, phrase)
        return None


@lru_cache(maxsize=1)
def default_bad_links() -> BadLinkList:
    """The shipped list, ``watch/data/bad_domains.txt``."""
    text = resources.files("watch").joinpath("data", BAD_DOMAINS).read_text(encoding="utf-8")
    return BadLinkList.parse(text.splitlines())


def hidden_link_findings(site: Site, url: str, html: str, *, bad_links: BadLinkList | None = None,
                         page: PageContent | None = None) -> list[Found]:
    """The ``hidden_link`` findings of the page at ``url`` (see the module docstring).

    ``page``: the page already parsed by :func:`watch.text.read_page` with ``url`` as
    base (``html`` is then not parsed again); ``bad_links``: another list than the shipped
    one.
    """
    if site.id is None:
        raise ValueError("hidden_link_findings needs a stored site")
    bad_list = bad_links or default_bad_links()
    home_hosts = (host_of(url), host_of(site.url))
    seen: dict[str, tuple[Link, str, dict[str, object]]] = {}
    counts: dict[str, int] = {}
    for link in (page.links if page is not None else links(html, url)):
        if link.href in seen:
            counts[link.href] += 1
            continue
        host = link.host
        offsite = not same_site(host, *home_hosts)
        bad = bad_list.match(link, offsite=offsite and not is_gov_host(host))
        text = f"，链接文字“{link.text}”" if link.text else ""
        if bad is not None:
            how = f"，且被隐藏（{link.hidden_by}）" if link.hidden else ""
            detail = f"链接指向{bad.category}网站 {host}（命中“{bad.pattern}”）{how}{text}"
            extra: dict[str, object] = {"category": bad.category, "pattern": bad.pattern}
        elif link.hidden and offsite and not is_gov_host(host):
            detail = f"隐藏链接指向站外网站 {host}：{link.hidden_by}{text}"
            extra = {"category": "", "pattern": ""}
        else:
            continue
        seen[link.href] = (link, detail, extra)
        counts[link.href] = 1
    found: list[Found] = []
    for href, (link, detail, extra) in seen.items():
        times = f"（本页共 {counts[href]} 处）" if counts[href] > 1 else ""
        found.append(Found(
            kind=FindingKind.hidden_link, site_id=site.id, url=url, detail=(detail + times)[:500],
            key=finding_key(url, href),
            data={"href": href, "host": link.host, "text": link.text, "hidden": link.hidden,
                  "hidden_by": link.hidden_by, "count": counts[href], **extra}))
    return found
