"""``dutybot watch …``: site watch from the command line (issue 17).

- ``watch once [--site 名称] [--json]`` runs every check once now, on every registered
  website (or one), and prints what it found; the findings are stored and dispatched as a
  scheduled run's are (the officers on duty are told, incidents open), so nothing found
  here is lost to the next run. One progress line per site (and as a crawl goes on) on
  stderr. A second run compares the homepage with the baseline the first one kept.
- ``watch status``: every website's availability this month and its open findings.
- ``watch accept 名称``: the homepage as it is now becomes the baseline (after a redesign,
  or once a tampering is handled); audited.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.app import open_database
from bot.cli.common import ChineseParser, cli_calendar, cli_settings
from bot.config import Settings
from core.clock import SystemClock, fmt_short_zh
from core.errors import InputError
from core.workdays import WorkdayCalendar
from roster import service as roster_service
from roster import sites as roster_sites
from roster.models import Site
from watch import baseline
from watch.columns import website_named
from watch.dispatch import Workflow
from watch.models import FINDING_ZH, Finding, FindingStatus
from watch.pages import fetcher_for, get_page
from watch.run import run_checks
from watch.status import health, status_lines, watched_sites
from watch.tamper import snapshot
from watch.types import Found


def workflow_for(settings: Settings, calendar: WorkdayCalendar) -> Workflow:
    """What dispatching needs, as the composition root builds it."""
    policy = settings.incidents.policy(on_duty=roster_service, sites=roster_sites,
                                       office_hours=settings.office_hours(calendar))
    return Workflow(calendar=calendar, profile=settings.profile(), incident_policy=policy,
                    evidence_dir=settings.resolve(settings.incidents.evidence_dir))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _incidents(engine: Engine, found: list[Found]) -> dict[tuple[int, str, str], str]:
    """The incident number of each open finding that has one."""
    if not found:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(Finding).where(Finding.status == FindingStatus.open, Finding.incident_number != ""))
        return {(f.site_id, f.kind, f.key): f.incident_number for f in rows}


def as_json(found: Found, site: str, incident: str) -> dict[str, Any]:
    """One finding of ``--json``: kind, site, url, detail, then its data."""
    out: dict[str, Any] = {"kind": found.kind.value, "site": site, "url": found.url, "detail": found.detail}
    if incident:
        out["incident"] = incident
    out.update({k: v for k, v in found.data.items() if k not in out and not k.startswith("_")})
    return out


def cmd_watch_once(args: argparse.Namespace) -> int:
    """dutybot watch once [--site NAME] [--json]"""
    settings = cli_settings(args)
    calendar = cli_calendar(settings)
    workflow = workflow_for(settings, calendar)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            sites = watched_sites(session, name=args.site) if args.site else watched_sites(session)
            if args.site and not sites:
                raise InputError(f"没有在用的网站“{args.site}”（须为登记了网址的网站；查看：dutybot sites list）。")
        if not sites:
            if args.json:
                print(json.dumps({"findings": []}, ensure_ascii=False))
            else:
                print("还没有登记网站，无可巡检。登记：dutybot sites add 名称 --kind 网站 --url https://…")
            return 0
        now = SystemClock().now()
        found = asyncio.run(run_checks(engine, sites=sites, policy=settings.watch_policy(), profile=workflow.profile,
                                       fetcher=settings.incidents.fetcher(), now=now, workflow=workflow,
                                       progress=_progress))
        numbers = _incidents(engine, found)
    finally:
        engine.dispose()
    names = {s.id: s.name for s in sites}
    if args.json:
        rows = [as_json(f, names.get(f.site_id, ""), numbers.get((f.site_id, f.kind.value, f.key), "")) for f in found]
        print(json.dumps({"findings": rows}, ensure_ascii=False, indent=2))
        return 0
    _print_found(found, sites, numbers, now)
    return 0


def _print_found(found: list[Found], sites: list[Site], numbers: dict[tuple[int, str, str], str],
                 now: datetime) -> None:
    print(f"网站巡检（{fmt_short_zh(now)}）：检查 {len(sites)} 个网站，发现 {len(found)} 个问题。")
    for site in sites:
        mine = [f for f in found if f.site_id == site.id]
        print(f"{site.name}：" + (f"{len(mine)} 个问题" if mine else "未发现问题"))
        for item in mine:
            number = numbers.get((item.site_id, item.kind.value, item.key), "")
            print(f"  [{FINDING_ZH[item.kind]}] {item.detail}" + (f"（事件 {number}）" if number else ""))
            if item.url and item.url not in item.detail:
                print(f"    {item.url}")
    if found:
        print("已通知各单位值班人员；需处置的已登记事件。查看：dutybot watch status")


def cmd_watch_status(args: argparse.Namespace) -> int:
    """dutybot watch status"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            sites = watched_sites(session)
            lines = status_lines(health(session, sites, SystemClock().now()), max_items=len(FINDING_ZH))
    finally:
        engine.dispose()
    if not lines:
        print("还没有登记网站。登记：dutybot sites add 名称 --kind 网站 --url https://…")
        return 0
    print("\n".join(lines))
    return 0


def cmd_watch_accept(args: argparse.Namespace) -> int:
    """dutybot watch accept NAME [--unit UNIT]"""
    settings = cli_settings(args)
    engine = open_database(settings)
    try:
        with Session(engine) as session:
            site = website_named(session=session, name=args.name, unit=args.unit)
        page = asyncio.run(get_page(fetcher_for(site, settings.incidents.fetcher()), site.url,
                                    settings.watch_policy()))
        if not page.ok or not page.is_html:
            raise InputError(f"无法读取“{site.name}”首页（{page.failure or '不是网页'}），基线未更改。"
                             "请确认网站可以访问后再试。")
        if page.unparsable:
            raise InputError(f"“{site.name}”首页无法解析：{page.unparsable}，基线未更改。请检查首页是否被篡改。")
        now = SystemClock().now()
        with Session(engine) as session:
            current = session.get(Site, site.id)
            assert current is not None
            _, closed = baseline.accept(session, current, snapshot(page.html, page.final_url or page.url), now,
                                        actor="cli")
            session.commit()
    finally:
        engine.dispose()
    print(f"已将“{site.name}”首页当前版本（{fmt_short_zh(now)}）确认为基线，此后巡检以此为准。"
          + (f"已关闭篡改提示 {closed} 项。" if closed else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``dutybot watch …`` to the dutybot parser."""
    watch = sub.add_parser("watch", help="网站巡检：可用性、栏目更新、链接、错别字和敏感词、隐藏链接、篡改")
    wsub = watch.add_subparsers(dest="watch_command", metavar="操作", parser_class=ChineseParser, required=True)
    p = wsub.add_parser("once", help="立即对登记的网站做一次全部检查并列出问题（问题照常通知值班人员，需处置的问题登记为事件）")
    p.add_argument("--site", metavar="名称", help="只检查此网站")
    p.add_argument("--json", action="store_true", help="输出 JSON：{\"findings\": [{\"kind\", \"site\", \"url\", \"detail\", …}]}")
    p.set_defaults(func=cmd_watch_once)
    p = wsub.add_parser("status", help="各网站本月可用率和待处理问题")
    p.set_defaults(func=cmd_watch_status)
    p = wsub.add_parser("accept", help="将网站首页当前版本确认为基线（改版后或篡改处置完毕后使用）")
    p.add_argument("name", metavar="名称")
    p.add_argument("--unit", help="网站所属单位（同名网站登记在多个单位时必填）")
    p.set_defaults(func=cmd_watch_accept)
