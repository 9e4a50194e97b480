"""今日值班 (now and next shift by unit, today's check-ins and reading rounds) and 值班表
(the month as a calendar, holidays and 调休 marked, the person's .ics), and the iCal
subscription feed (a secret token in the address, no cookie).

The roster is the office's: a shift holds people of several units. A viewer sees only the
people of the units they may see (``bot.web.scope``), with phones as their role allows.
"""

from __future__ import annotations

import asyncio
import calendar as month_calendar
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from bot.web import auth
from bot.web.board import Board, Page
from core.clock import WEEKDAYS_ZH, ensure_utc, local
from core.db import session_scope
from core.errors import InputError
from people.models import Person
from roster import service as roster
from roster.export import person_ical, time_zh
from roster.models import (
    ROUND_STATUS_ZH,
    DutyRole,
    ReadingRound,
    RoundStatus,
    Shift,
    ShiftAssignment,
)

ICS = "text/calendar; charset=utf-8"
#: The feed covers this many days back and ahead (as ``dutybot roster ical`` would export).
FEED_BACK, FEED_AHEAD = 31, 92


@dataclass
class Member:
    name: str
    phone: str
    role_zh: str
    checked_in: datetime | None


@dataclass
class ShiftBox:
    """One shift as a viewer sees it: its people grouped by unit."""

    shift: Shift
    title: str
    units: dict[str, list[Member]] = field(default_factory=dict)


def _people(page: Page, shifts: list[Shift]) -> dict[int, list[tuple[ShiftAssignment, Person]]]:
    ids = [s.id for s in shifts]
    if not ids:
        return {}
    rows = page.db.exec(select(ShiftAssignment, Person).join(Person, col(Person.id) == ShiftAssignment.person_id)
                        .where(col(ShiftAssignment.shift_id).in_(ids))
                        .order_by(col(ShiftAssignment.role).desc(), col(ShiftAssignment.id))).all()
    found: dict[int, list[tuple[ShiftAssignment, Person]]] = {}
    for a, p in rows:
        found.setdefault(a.shift_id, []).append((a, p))
    return found


def boxes(page: Page, shifts: list[Shift], title: str) -> list[ShiftBox]:
    people = _people(page, shifts)
    out = []
    for shift in shifts:
        box = ShiftBox(shift, f"{title}：{shift.name} {time_zh(shift)}")
        for a, p in people.get(shift.id or -1, []):
            if page.viewer.sees_unit(p.unit):
                role = "带班领导" if a.role == DutyRole.leader else "值班员"
                box.units.setdefault(p.unit or "未登记单位", []).append(
                    Member(p.name, page.viewer.phone(p), role, a.checked_in_at))
        out.append(box)
    return out


def duty_page(page: Page) -> Response:
    db, now = page.db, page.now
    current = [v.shift for v in roster.on_duty(session=db, at=now)]
    after = max((s.ends_at for s in current), default=now)
    upcoming = db.exec(select(Shift).where(col(Shift.starts_at) >= after, Shift.published == True)  # noqa: E712
                       .order_by(col(Shift.starts_at)).limit(1)).first()
    today = local(now).date()
    todays = roster.shifts_between(session=db, start=today, end=today)
    checkins = _checkins(page, todays)
    rounds = _rounds(page, todays)
    return page.render("duty.html", title="今日值班", active="duty", now_boxes=boxes(page, current, "当前班次"),
                       next_boxes=boxes(page, [upcoming] if upcoming else [], "下一班次"),
                       checkins=checkins, rounds=rounds, today=today, weekday=WEEKDAYS_ZH[today.weekday()])


def _checkins(page: Page, shifts: list[Shift]) -> list[dict[str, str]]:
    """Today's duty officers of the viewer's units and whether they checked in."""
    out = []
    for shift in shifts:
        for a, p in _people(page, [shift]).get(shift.id or -1, []):
            if a.role != DutyRole.officer or not page.viewer.sees_unit(p.unit):
                continue
            if a.checked_in_at is not None:
                state, css = f"已签到 {local(a.checked_in_at):%H:%M}", "ok"
            elif ensure_utc(shift.starts_at) > page.now:
                state, css = "班次未开始", "muted"
            else:
                state, css = "未签到", "warn"
            out.append({"name": p.name, "shift": shift.name, "state": state, "css": css})
    return out


def _rounds(page: Page, shifts: list[Shift]) -> list[dict[str, str]]:
    """Today's reading rounds so far, of the shifts on which the viewer's units serve."""
    people = _people(page, shifts)
    mine = [s.id for s in shifts if any(page.viewer.sees_unit(p.unit) for _, p in people.get(s.id or -1, []))]
    if not mine:
        return []
    out = []
    for rnd in page.db.exec(select(ReadingRound).where(col(ReadingRound.shift_id).in_(mine),
                                                       col(ReadingRound.prompt_at) <= page.now)
                            .order_by(col(ReadingRound.prompt_at))):
        who = page.db.get(Person, rnd.answered_by_id) if rnd.answered_by_id else None
        name = who.name if who is not None and page.viewer.sees_unit(who.unit) else ("—" if who is None else "他单位人员")
        out.append({"seq": str(rnd.seq), "at": f"{local(rnd.prompt_at):%H:%M}",
                    "status": ROUND_STATUS_ZH[RoundStatus(rnd.status)],
                    "late": "1" if rnd.status in (RoundStatus.missed, RoundStatus.anomaly) else "",
                    "who": name, "answered": f"{local(rnd.answered_at):%H:%M}" if rnd.answered_at else ""})
    return out


# -- 值班表 -------------------------------------------------------------------------------


def _month(page: Page) -> date:
    text = page.query.get("month", "")
    if not text:
        return local(page.now).date().replace(day=1)
    try:
        year, month = (int(x) for x in text.split("-", 1))
        first = date(year, month, 1)
    except ValueError:
        raise InputError("月份格式应为 YYYY-MM。") from None
    if not 2000 <= year <= 2100:
        raise InputError("月份超出范围（2000—2100 年）。")
    return first


def roster_page(page: Page) -> Response:
    first = _month(page)
    last = first.replace(day=month_calendar.monthrange(first.year, first.month)[1])
    shifts = roster.shifts_between(session=page.db, start=first, end=last)
    by_day: dict[date, list[ShiftBox]] = {}
    for box in boxes(page, shifts, ""):
        by_day.setdefault(box.shift.day, []).append(box)
    cal = page.board.calendar
    weeks = []
    for week in month_calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month):
        cells = []
        for day in week:
            info = cal.day(day)
            mark = ""
            if info.is_makeup:
                mark = f"调休上班{('·' + info.name) if info.name else ''}"
            elif not info.is_workday and info.name:
                mark = info.name
            cells.append({"day": day, "in_month": day.month == first.month, "mark": mark,
                          "rest": not info.is_workday, "provisional": info.provisional,
                          "today": day == local(page.now).date(), "boxes": by_day.get(day, [])})
        weeks.append(cells)
    prev = (first - timedelta(days=1)).replace(day=1)
    nxt = last + timedelta(days=1)
    return page.render("roster.html", title="值班表", active="roster", first=first, weeks=weeks, weekdays=WEEKDAYS_ZH,
                       prev=f"{prev:%Y-%m}", next=f"{nxt:%Y-%m}", month=f"{first:%Y-%m}",
                       feed=page.extra.get("feed", ""))


def my_ics(page: Page) -> Response:
    """The viewer's own shifts of the month as .ics (what ``dutybot roster ical`` writes)."""
    first = _month(page)
    last = first.replace(day=month_calendar.monthrange(first.year, first.month)[1])
    data, _ = person_ical(session=page.db, person=page.person, start=first, end=last, now=page.now)
    return Response(data, media_type=ICS, headers={
        "Content-Disposition": f"attachment; filename=duty-{first:%Y-%m}.ics", "Cache-Control": "no-store"})


def new_feed(page: Page) -> Response:
    """``POST /web/roster/feed``: a new subscription address (the old one stops working)."""
    token = auth.issue_feed(session=page.db, person=page.person, now=page.now, actor=page.person.name)
    page.extra["feed"] = f"{page.board.web.base_url}/web/ical/{token}.ics"
    return roster_page(page)


def feed_endpoint(board: Board) -> Callable[[Request], Awaitable[Response]]:
    """``GET /web/ical/{token}.ics``: the person's shifts, a month back and three ahead."""
    def serve(token: str) -> Response:
        now = board.clock.now()
        with session_scope(board.engine) as db:
            person = auth.feed_person(session=db, token=token, now=now)
            if person is None:
                return Response("未找到", status_code=404, media_type="text/plain; charset=utf-8")
            today = local(now).date()
            data, _ = person_ical(session=db, person=person, start=today - timedelta(days=FEED_BACK),
                                  end=today + timedelta(days=FEED_AHEAD), now=now)
        return Response(data, media_type=ICS, headers={"Cache-Control": "no-store"})

    async def endpoint(request: Request) -> Response:
        return await asyncio.to_thread(serve, str(request.path_params["token"]))

    return endpoint
