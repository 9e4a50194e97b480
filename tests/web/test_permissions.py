"""Who sees what on the board, page by page and action by action: officers and leaders see
their own unit, the district office and admins every unit; another unit's incident is 404
(never 403) for its page, its report, its actions — a cookie of one unit cannot read the
other's by changing the URL; downloads hold only the viewer's units; phones are masked for
officers."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from core.clock import parse_local
from tests.web.conftest import MARK, UNITS, Rig, populate

UNIT_OF = {"王芳": "区教育局", "李强": "区教育局", "陈晨": "区卫健委", "孙丽": "区卫健委"}
EVERY_UNIT = ("周杰", "张伟")       # the district office, an admin
VIEWERS = (*UNIT_OF, *EVERY_UNIT)


def sees(viewer: str, unit: str) -> bool:
    return viewer in EVERY_UNIT or UNIT_OF[viewer] == unit


@pytest.fixture
async def world(rig: Rig) -> Rig:
    populate(rig)
    return rig


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_incident_pages_downloads_and_actions_by_role_and_unit(world: Rig, viewer: str) -> None:
    client = await world.sign_in(viewer)
    listing = (await client.get("/web/incidents")).text
    register = load_workbook(io.BytesIO((await client.get("/web/incidents/register.xlsx")).content))
    numbers_in_register = {row[0].value for row in register["台账"].iter_rows(min_row=2)}
    for unit in UNITS:
        number = world.numbers[unit]
        allowed = sees(viewer, unit)
        assert (number in listing) is allowed
        assert (number in numbers_in_register) is allowed
        detail = await client.get(f"/web/incidents/{number}")
        report = await client.get(f"/web/incidents/{number}/report.docx")
        assert detail.status_code == report.status_code == (200 if allowed else 404)
        if not allowed:   # a changed URL tells nothing: like a number that does not exist
            missing = await client.get("/web/incidents/INC-20261123-099")
            assert detail.text == missing.text and "公示名单" not in detail.text
            for action in ("ack", "take", "done"):
                got = await world.post(client, f"/web/incidents/{number}/{action}", {"step": "1"})
                assert got.status_code == 404
            assert world.incident(unit).acknowledged_at is None
    mine = next(u for u in UNITS if sees(viewer, u))
    got = await world.post(client, f"/web/incidents/{world.numbers[mine]}/ack")
    assert got.status_code == 303 and world.incident(mine).acknowledged_at is not None


@pytest.mark.parametrize("viewer", VIEWERS)
async def test_duty_replies_roster_and_sites_show_only_the_viewers_units(world: Rig, viewer: str) -> None:
    client = await world.sign_in(viewer)
    world.clock.set(parse_local("2026-11-23T20:00"))       # the night shift: 陈晨 and 孙丽
    duty = (await client.get("/web/duty")).text
    world.clock.set(parse_local("2026-11-23T20:05"))
    roster = (await client.get("/web/roster")).text
    replies = (await client.get("/web/replies")).text
    sites = (await client.get("/web/sites")).text
    for unit in UNITS:
        allowed = sees(viewer, unit)
        assert (MARK[unit] in replies) is allowed
        assert (MARK[unit] in sites) is allowed
        assert (f"{unit}网站" in sites) is allowed
        people = [n for n, u in UNIT_OF.items() if u == unit]
        for name in people:
            assert (name in roster) is allowed or name == viewer
            assert (f"{name} <span" in duty) is allowed   # the night shift now, the day shift next
    if viewer in EVERY_UNIT:
        assert "合计" in replies


async def test_officers_see_masked_phones_leaders_and_the_district_office_full_ones(world: Rig) -> None:
    officer = await world.sign_in("王芳")
    page = (await officer.get("/web/duty")).text      # 10:00, the day shift: 王芳 and 李强
    assert "138****0002" in page and "13800000002" not in page   # the leader's, masked
    assert "13800000001" in page                                 # her own
    for name in ("李强", "周杰"):
        full = (await (await world.sign_in(name)).get("/web/duty")).text
        assert "13800000002" in full and "13800000001" in full


async def test_ical_subscription_shows_only_the_persons_shifts_and_can_be_revoked(world: Rig) -> None:
    client = await world.sign_in("王芳")
    made = await world.post(client, "/web/roster/feed")
    assert made.status_code == 200
    address = made.text.split('id="feed">')[1].split("<")[0]
    path = address.removeprefix("http://dutybot.test")
    feed = await world.client().get(path)                    # no cookie: the token is the key
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    assert "王芳的值班安排" in feed.text and "陈晨" not in feed.text
    export = await client.get("/web/roster/mine.ics")
    assert export.text.count("BEGIN:VEVENT") >= 1
    again = await world.post(client, "/web/roster/feed")     # a new address: the old one stops
    assert again.status_code == 200
    assert (await world.client().get(path)).status_code == 404
