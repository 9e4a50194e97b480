"""The board in a real browser: headless Chromium from Debian (``/usr/bin/chromium``), driven
by Playwright for Python (no browser download), against the bot's HTTP service on loopback.

A leader signs in through the link /web sent, sees only their unit, acknowledges an
incident and the chat card changes; a reused or expired link is refused (the clock is
moved); every page fits a 375×740 phone without horizontal scrolling. Each page's
screenshot is written to ``docs/screenshots/`` (the README shows one).

Skipped, saying why, when Chromium or Playwright is missing; ``.ci/run`` installs
Chromium from Debian when it is absent, so CI runs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from bot.adapters.memory import MemoryChat
from core.clock import FakeClock, parse_local
from tests.web.conftest import MARK, Rig, build_app, link_in, open_incidents, populate

CHROMIUM = os.environ.get("DUTYBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)
try:
    from playwright.async_api import Browser, Page, async_playwright
    HAVE_PLAYWRIGHT = True
except ImportError:   # the dev extra not installed
    HAVE_PLAYWRIGHT = False

pytestmark = [
    pytest.mark.skipif(not HAVE_PLAYWRIGHT, reason="Playwright for Python is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"no Chromium at {CHROMIUM}: apt-get install chromium "
                                                  "(or set DUTYBOT_CHROMIUM)"),
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 375, "height": 740}
PAGES = {"duty": "/web/duty", "incidents": "/web/incidents", "replies": "/web/replies",
         "roster": "/web/roster", "sites": "/web/sites"}


@pytest.fixture
async def live(engine: Engine) -> AsyncIterator[Rig]:
    """The rig served for real on loopback (the HTTP service of ``dutybot run``)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser tests run on SQLite only (the pages' queries run on both in tests/web)")
    clock = FakeClock(parse_local("2026-11-23T10:00"))
    app, adapter = build_app(engine, clock)
    await app.start_http()
    assert app.http is not None
    app.settings.web.base_url = f"http://127.0.0.1:{app.http.port}"
    chat = MemoryChat(app, adapter)
    rig = Rig(app, adapter, chat, clock, engine, httpx.ASGITransport(app=app.http.app))
    rig.numbers = await open_incidents(chat)
    populate(rig)
    try:
        yield rig
    finally:
        await app.stop_http()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def phone(browser: Browser) -> Page:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                        has_touch=True, locale="zh-CN")
    return await context.new_page()


async def sign_in(rig: Rig, page: Page, name: str) -> None:
    await page.goto(link_in(await rig.chat.send("/web", as_=name)))
    await page.click("#signin")
    await page.wait_for_url("**/web/duty")


async def no_horizontal_scroll(page: Page) -> bool:
    width: Any = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    return bool(width[0] <= width[1])


async def test_a_leader_signs_in_sees_their_unit_and_acknowledges_and_the_chat_card_changes(
        live: Rig, browser: Browser) -> None:
    page = await phone(browser)
    await sign_in(live, page, "李强")
    assert "李强｜区教育局" in await page.inner_text("header")
    await page.click("nav >> text=事件")
    listing = await page.inner_text("main")
    mine, theirs = live.numbers["区教育局"], live.numbers["区卫健委"]
    assert mine in listing and theirs not in listing
    await page.click(f"text={mine}")
    assert await page.inner_text("#status") == "待确认"
    await page.click("#ack")
    await page.wait_for_selector(".notice")
    assert "已确认，升级提醒已停止" in await page.inner_text(".notice")
    assert await page.inner_text("#status") == "已确认"
    await live.app.drain()
    card = next(d for d in live.adapter.delivered if d.chat_id == "u-王芳" and d.card_key == f"incident:{mine}")
    assert card.edits and card.text.startswith("【已确认】李强")
    # Changing the address to the other unit's incident shows what a missing one shows.
    response = await page.goto(page.url.split("/web/")[0] + f"/web/incidents/{theirs}")
    assert response is not None and response.status == 404
    assert "未找到" in await page.inner_text("main") and "公示名单" not in await page.content()


async def test_a_reused_or_expired_link_is_refused(live: Rig, browser: Browser) -> None:
    link = link_in(await live.chat.send("/web", as_="李强"))
    first = await phone(browser)
    await first.goto(link)
    await first.click("#signin")
    await first.wait_for_url("**/web/duty")
    second = await phone(browser)            # someone else opening the same link
    response = await second.goto(link)
    assert response is not None and response.status == 410
    assert "只能使用一次" in await second.inner_text("main")
    stale = link_in(await live.chat.send("/web", as_="李强"))
    live.clock.advance(timedelta(minutes=11))
    third = await phone(browser)
    await third.goto(stale)
    assert "链接已失效" in await third.inner_text("h1")
    assert await third.query_selector("#signin") is None


async def test_every_page_fits_a_phone_and_is_photographed(live: Rig, browser: Browser) -> None:
    page = await phone(browser)
    await sign_in(live, page, "周杰")         # the district office: every unit, fullest pages
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in PAGES.items():
        response = await page.goto(page.url.split("/web/")[0] + path)
        assert response is not None and response.status == 200, name
        assert await no_horizontal_scroll(page), f"{name} scrolls sideways at 375 px"
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    await page.goto(page.url.split("/web/")[0] + f"/web/incidents/{live.numbers['区教育局']}")
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(SCREENSHOTS / "incident.png"), full_page=True)
    text = await page.inner_text("main")
    assert "处置步骤" in text and "时间线" in text
    await page.goto(page.url.split("/web/")[0] + "/web/replies")
    assert MARK["区教育局"] in await page.inner_text("main") and MARK["区卫健委"] in await page.inner_text("main")
