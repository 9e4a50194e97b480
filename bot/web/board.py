"""The request plumbing of the web board: the session cookie, CSRF and Origin checks, the
templates, and one database transaction per request (run on a worker thread).

A page function takes a :class:`Page` and returns a response; it raises :class:`Gone`
for anything the viewer may not see (answered 404, like a missing number). ``POST``
requests are accepted only with the session's CSRF token and an ``Origin`` (or, when a
browser sends none, ``Referer``) of the board's own address.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.web import auth
from bot.web.models import WebSession
from bot.web.scope import Viewer
from bot.web.settings import WebSettings
from core.clock import Clock, fmt_short_zh, local
from core.errors import DutybotError
from core.profiles import Profile
from core.workdays import WorkdayCalendar
from incidents.service import IncidentPolicy
from people.models import Person

if TYPE_CHECKING:
    from jinja2 import Environment

    from bot.config import Settings

log = logging.getLogger(__name__)

COOKIE = "dutybot_web"
MAX_FORM_BYTES = 20_000
NAV = (("duty", "今日值班"), ("incidents", "事件"), ("replies", "留言"), ("roster", "值班表"), ("sites", "网站"))
SIGN_IN_NEEDED = "请先登录：在聊天中向机器人发送 /web，打开收到的链接（链接 10 分钟内有效，只能使用一次）。"


class Gone(Exception):
    """Not found, or not the viewer's to see: both are answered 404."""


def templates() -> Environment:
    """The board's Jinja environment: autoescape on for every template."""
    # Jinja is imported here, when a board is made ([web] enabled): not at every start.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    folder = resources.files("bot.web").joinpath("templates")
    env = Environment(loader=FileSystemLoader(str(folder)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["short"] = lambda at: fmt_short_zh(at) if at is not None else "—"
    env.filters["hm"] = lambda at: f"{local(at):%H:%M}" if at is not None else "—"
    return env


@dataclass
class Page:
    """What a page function gets: the transaction, the viewer, the time, the request."""

    db: Session
    viewer: Viewer
    now: datetime
    query: Mapping[str, str]
    form: Mapping[str, str]
    path: Mapping[str, str]
    csrf: str
    board: Board
    session_id: int = 0         # the board session serving this request (``web_session.id``)
    changed: bool = False       # an action committed messages: wake the senders
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def person(self) -> Person:
        return self.viewer.person

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return self.board.render(template, status=status, viewer=self.viewer, csrf=self.csrf, **values)


class Board:
    """Everything the pages need from the App (no globals).

    Args:
        engine: the database.
        clock: the App's clock (tests move it).
        settings: the whole configuration (``[web]``, evidence folder, roster patterns).
        calendar: working days, holidays and 调休.
        profile: the rule profile.
        policy: ``[incidents]`` with the roster (for the district office and the ladder).
        on_commit: wakes the outbox sender after an action.
    """

    def __init__(self, *, engine: Engine, clock: Clock, settings: Settings, calendar: WorkdayCalendar,
                 profile: Profile, policy: IncidentPolicy, on_commit: Callable[[], None] = lambda: None) -> None:
        self.engine, self.clock, self.settings = engine, clock, settings
        self.calendar, self.profile, self.policy, self.on_commit = calendar, profile, policy, on_commit
        self.env = templates()

    @property
    def web(self) -> WebSettings:
        return self.settings.web

    def url(self, path: str) -> str:
        """A board path as the browser sees it (behind a proxy's prefix, if any)."""
        return f"{self.web.prefix}{path}"

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("viewer", None)
        values.setdefault("csrf", "")
        values.setdefault("active", "")
        html = self.env.get_template(template).render(root=self.web.prefix, nav=NAV, **values)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def message(self, text: str, *, status: int, title: str = "值班看板") -> HTMLResponse:
        return self.render("message.html", status=status, title=title, text=text)

    # -- cookies ---------------------------------------------------------------------

    def set_cookie(self, response: Response, token: str, row: WebSession) -> None:
        max_age = int((row.expires_at - row.created_at).total_seconds())
        response.set_cookie(COOKIE, token, max_age=max_age, path=self.url("/web"), httponly=True,
                            samesite="strict", secure=self.web.secure)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=self.url("/web"), httponly=True, samesite="strict",
                               secure=self.web.secure)

    # -- checks ----------------------------------------------------------------------

    def same_origin(self, request: Request) -> bool:
        """The form was posted from the board itself (``Origin``, else ``Referer``)."""
        given = request.headers.get("origin") or ""
        if not given or given == "null":
            referer = request.headers.get("referer") or ""
            parts = urlsplit(referer)
            given = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        if not given:
            return False
        host = request.headers.get("host", "")
        return given in (self.web.origin, f"{request.url.scheme}://{host}")

    # -- serving ---------------------------------------------------------------------

    def page(self, fn: Callable[[Page], Response]) -> Callable[[Request], Any]:
        """An endpoint for ``fn``: signed in, CSRF and Origin checked on POST, one transaction."""

        async def endpoint(request: Request) -> Response:
            form: dict[str, str] = {}
            if request.method == "POST":
                parsed = await read_form(request)
                if parsed is None:
                    return self.message("提交的内容过大或格式不对。", status=400)
                form = parsed
            return await asyncio.to_thread(self._serve, request, form, fn)

        return endpoint

    def _serve(self, request: Request, form: dict[str, str], fn: Callable[[Page], Response]) -> Response:
        now = self.clock.now()
        token = request.cookies.get(COOKIE, "")
        page: Page | None = None
        response: Response
        try:
            with Session(self.engine, expire_on_commit=False) as db:
                found = auth.session_for(session=db, token=token, now=now)
                if found is None:
                    response = self.message(SIGN_IN_NEEDED, status=401, title="请先登录")
                    if token:
                        self.clear_cookie(response)
                    return response
                row, person = found
                if request.method == "POST" and not (self.same_origin(request)
                                                     and auth.csrf_ok(token, form.get("csrf", ""))):
                    log.warning("web: refused a POST to %s without a valid CSRF token or Origin (session %s)",
                                request.url.path, row.id)
                    return self.message("请求来源无法验证，已拒绝。请返回看板刷新页面后再试。", status=403)
                viewer = Viewer.of(person, self.policy.district_office)
                page = Page(db=db, viewer=viewer, now=now, query=dict(request.query_params), form=form,
                            path={k: str(v) for k, v in request.path_params.items()},
                            csrf=auth.csrf_token(token), board=self, session_id=row.id or 0)
                try:
                    response = fn(page)
                except Gone:
                    db.rollback()
                    return page.render("message.html", status=404, title="未找到", text="未找到该页面或记录。")
                row.last_seen_at = now
                db.add(row)
                db.commit()
        except DutybotError as exc:
            return self.message(exc.message, status=400)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("error %s: web request %s %s failed", error_id, request.method, request.url.path)
            return self.message(f"抱歉，出错了（错误编号 {error_id}），请稍后再试。", status=500)
        if page.changed:
            self.on_commit()
        return response

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(self.url(path), status_code=303, headers=SECURITY_HEADERS)


#: Sent with every page: no framing, no sniffing, no referrer to other sites (a sign-in link
#: stays here; "no-referrer" would make browsers send `Origin: null` on POST), own CSS only.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


async def read_form(request: Request) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body (first value of each field); None when
    too large or not such a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items() if v}
