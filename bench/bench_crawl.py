"""How long a broken-link crawl of a 5,000-page site takes, and the memory it needs (not a test).

Run ``python bench/bench_crawl.py`` (options: ``--pages``, ``--concurrency``, ``--delay-ms``,
``--page-kb``, ``--tracemalloc``). A site of ``--pages`` pages is generated on the fly by
a small ASGI app under uvicorn on 127.0.0.1, in its own process (as a real site is remote,
its work is not counted against the crawler's event loop). Each page is a typical column
page of a government site: a menu of 10 links, a breadcrumb, 5 child pages, 20 news
entries linking across the site, and ``--page-kb`` KB of Chinese text; every 250th page
also links to a page that does not exist (404), so the crawl has broken links to report.

The real :func:`watch.crawl.crawl` reads it through the guarded fetcher (the site is
registered intranet), with ``--concurrency`` requests at a time and ``--delay-ms`` between
request starts (0: as fast as it goes; the shipped default is 500 ms, which alone makes
5,000 pages take 5000 × 0.5 s / 1 ≈ 42 minutes at any concurrency, by design).

Reported: wall time, pages per second, broken links found (expected: one per 250 pages),
and memory: the process's peak RSS before and after the crawl (``ru_maxrss``), and with
``--tracemalloc`` the peak of Python allocations during it (slower: tracing costs time).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import free_port, wait_until_up

from core.fetcher import GuardedFetcher
from roster.models import Site
from watch.crawl import crawl
from watch.pages import fetcher_for
from watch.types import WatchPolicy

FILLER = "区政府召开常务会议，研究部署当前重点工作，强调要扎实做好民生保障和安全生产各项工作。"
BROKEN_EVERY = 250

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def page_html(n: int, pages: int, page_kb: int) -> bytes:
    """Page ``n`` of the generated site."""
    menu = "".join(f'<li><a href="/p/{k}.html">栏目{k}</a></li>' for k in range(10))
    crumb = f'<a href="/">首页</a> &gt; <a href="/p/{max(0, (n - 1) // 5)}.html">上级栏目</a>'
    children = "".join(f'<li><a href="/p/{c}.html">子栏目{c}</a></li>'
                       for c in range(5 * n + 1, 5 * n + 6) if c < pages)
    news = "".join(f'<li><a href="/p/{(n * 7 + k * 131) % pages}.html">信息标题{k}</a>'
                   f"<span>2026-11-{1 + k % 28:02d}</span></li>" for k in range(20))
    broken = f'<a href="/missing/{n}.html">已删除的页面</a>' if n % BROKEN_EVERY == 0 else ""
    text = FILLER * max(1, page_kb * 1024 // len(FILLER.encode()))
    return (f'<html><head><meta charset="utf-8"><title>第{n}页</title></head><body>'
            f'<div class="nav"><ul>{menu}</ul></div><div class="crumb">{crumb}</div>'
            f'<div class="main"><ul class="children">{children}</ul><ul class="list">{news}</ul>'
            f"<p>{text}</p>{broken}</div></body></html>").encode()


def _serve(port: int, pages: int, page_kb: int) -> None:
    """The generated site, in its own process."""
    import uvicorn

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        number = 0 if path == "/" else None
        if path.startswith("/p/") and path.endswith(".html") and path[3:-5].isdigit():
            number = int(path[3:-5])
        if number is None or number >= pages:
            status, body = 404, b"<html>404</html>"
        else:
            status, body = 200, page_html(number, pages, page_kb)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run(args: argparse.Namespace) -> None:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, args.pages, args.page_kb), daemon=True)
    server.start()
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/")
        site = Site(id=1, name="基准测试网站", kind="website", url=f"http://127.0.0.1:{port}/",
                    intranet=True, created_at=datetime.now(UTC))
        policy = WatchPolicy(crawl_depth=50, crawl_max_pages=args.pages + args.pages // BROKEN_EVERY + 10,
                             per_host_concurrency=args.concurrency, polite_delay_ms=args.delay_ms,
                             timeout_seconds=30)
        fetcher = fetcher_for(site, GuardedFetcher())
        rss_before = _max_rss_mb()
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        result = await crawl(fetcher, site, policy)
        elapsed = time.perf_counter() - started
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
        if args.tracemalloc:
            tracemalloc.stop()
        rss_after = _max_rss_mb()
    finally:
        server.terminate()
        server.join()
    html_mb = sum(len(p.html) for p in result.pages) / 2**20
    print(f"[{args.pages} pages × ~{args.page_kb} KB, concurrency {args.concurrency}, "
          f"delay {args.delay_ms} ms] crawled {len(result.pages)} pages, {result.checked} URLs fetched "
          f"in {elapsed:.2f} s ({result.checked / elapsed:.0f} URLs/s); broken links: {len(result.broken)} "
          f"(expected {len(range(0, args.pages, BROKEN_EVERY))}); capped: {result.capped}")
    print(f"  peak RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after "
          f"(+{rss_after - rss_before:.0f} MB; the pages' text kept for the content checks: "
          f"{html_mb:.0f} M characters)"
          + (f"; tracemalloc peak {traced:.0f} MB" if traced is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4, help="requests at a time to the site")
    parser.add_argument("--delay-ms", type=int, default=0, help="polite delay between request starts")
    parser.add_argument("--page-kb", type=int, default=8, help="text per page")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    args = parser.parse_args()
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
