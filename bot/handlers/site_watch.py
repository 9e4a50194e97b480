"""``/sites status`` and ``/sites column …``: site watch in chat (issue 17), reached through
``/sites`` (``bot.handlers.rounds.SitesHandler``).

- ``/sites status [单位|all]``: this month's availability and the open findings of each
  website, short lines.
- ``/sites column [网站]``: a site's columns; ``/sites column add 网站 栏目 网址 [类型] [@单位]``
  and ``/sites column remove 网站 栏目 [@单位]`` (admins).
"""

from __future__ import annotations

from bot.dispatcher import Context
from core.errors import InputError, PermissionDenied
from core.messages import Outbound
from people.models import Person, Role
from roster.models import Site
from watch.columns import (
    add_column,
    column_line,
    columns_of,
    remove_column,
    validate_column,
    website_named,
)
from watch.status import health, status_lines, watched_sites

STATUS_WORDS = frozenset({"status", "巡检", "状态", "健康"})
COLUMN_WORDS = frozenset({"column", "columns", "栏目"})
MAX_SITES = 20
COLUMN_USAGE = ("/sites column add 网站 栏目名称 网址 [类型] [@单位]（类型：动态、要闻、通知公告、政策文件、其他，默认动态要闻）"
                " ｜ /sites column remove 网站 栏目名称 [@单位] ｜ /sites column [网站]")


def _me(ctx: Context) -> Person:
    assert ctx.person is not None
    return ctx.person


def _unit_and_tokens(rest: str) -> tuple[str | None, list[str]]:
    tokens = rest.split()
    unit = next((t[1:] for t in tokens if t[:1] in ("@", "＠")), None)
    return unit, [t for t in tokens if t[:1] not in ("@", "＠")]


def status_reply(rest: str, ctx: Context) -> Outbound:
    """``/sites status [单位|all]``."""
    arg = rest.strip()
    if len(arg) > 100:
        raise InputError("单位名称过长。")
    if arg.lower() in ("all", "全部"):
        sites, title = watched_sites(ctx.session), "各单位网站巡检情况"
    else:
        unit = arg or _me(ctx).unit
        sites, title = watched_sites(ctx.session, unit=unit), f"{unit or '本单位'}网站巡检情况"
    if not sites:
        return Outbound(f"{title}：尚未登记网站。管理员可用 dutybot sites add 名称 --kind 网站 --url 网址 登记。")
    entries = health(ctx.session, sites[:MAX_SITES], ctx.now)
    lines = [f"{title}（共 {len(sites)} 个网站）：", *status_lines(entries, max_items=4)]
    if len(sites) > MAX_SITES:
        lines.append(f"……另有 {len(sites) - MAX_SITES} 个网站（完整情况：dutybot watch status）")
    lines.append("问题消除后下次巡检自动销号；首页改版后由管理员确认：dutybot watch accept 网站名称")
    return Outbound("\n".join(lines))


def column_reply(rest: str, ctx: Context) -> Outbound:
    """``/sites column …``."""
    word, _, tail = rest.strip().partition(" ")
    action = word.lower()
    if action in ("add", "添加", "登记"):
        return _add(tail, ctx)
    if action in ("remove", "删除", "停用"):
        return _remove(tail, ctx)
    if action in ("list", "列表"):
        return _list(tail, ctx)
    return _list(rest, ctx)


def _require_admin(ctx: Context, what: str) -> None:
    if Role.admin not in _me(ctx).role_set():
        raise PermissionDenied(f"抱歉，{what}需要管理员。")


def _add(rest: str, ctx: Context) -> Outbound:
    _require_admin(ctx, "登记栏目")
    unit, tokens = _unit_and_tokens(rest)
    if len(tokens) not in (3, 4):
        raise InputError(f"请写明网站、栏目名称和网址，如：/sites column add 门户网站 通知公告 https://www.example.gov.cn/tzgg/ 通知公告。用法：{COLUMN_USAGE}")
    site = website_named(session=ctx.session, name=tokens[0], unit=unit)
    new = validate_column(tokens[1], tokens[2], tokens[3] if len(tokens) == 4 else "")
    column, created = add_column(session=ctx.session, site=site, new=new, now=ctx.now, actor=ctx.actor)
    return Outbound(("已登记栏目：" if created else "已更新栏目：") + f"{site.name}｜{column_line(column)}。"
                    "网站巡检将按栏目类型检查更新是否及时、是否为空白栏目。")


def _remove(rest: str, ctx: Context) -> Outbound:
    _require_admin(ctx, "停用栏目")
    unit, tokens = _unit_and_tokens(rest)
    if len(tokens) != 2:
        raise InputError(f"请写明网站和栏目名称，如：/sites column remove 门户网站 通知公告。用法：{COLUMN_USAGE}")
    site = website_named(session=ctx.session, name=tokens[0], unit=unit)
    column = remove_column(session=ctx.session, site=site, name=tokens[1], now=ctx.now, actor=ctx.actor)
    return Outbound(f"已停用栏目：{site.name}｜{column_line(column)}（不再巡检）。")


def _list(rest: str, ctx: Context) -> Outbound:
    unit, tokens = _unit_and_tokens(rest)
    sites: list[Site]
    if tokens:
        sites = [website_named(session=ctx.session, name=tokens[0], unit=unit)]
    else:
        sites = watched_sites(ctx.session, unit=_me(ctx).unit)
    lines = []
    for site in sites:
        rows = columns_of(session=ctx.session, site_id=site.id)
        lines.append(f"{site.name}：" + (f"{len(rows)} 个栏目" if rows else "未登记栏目"))
        lines += [f"  {n}. {column_line(c)}" for n, c in enumerate(rows[:30], 1)]
    if not lines:
        return Outbound(f"尚未登记网站。用法：{COLUMN_USAGE}")
    return Outbound("\n".join(lines))
