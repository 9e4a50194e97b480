"""``web_routes(app)``: the web board's routes on the bot's HTTP service (``[web] enabled``).

Signing in: ``GET /web/login/{token}`` shows one button (a link preview fetching the
address spends nothing); its ``POST`` spends the link and sets the session cookie
(HttpOnly, SameSite=Strict, Secure over https, ``[web] session_hours``).
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from typing import TYPE_CHECKING

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.web import auth
from bot.web.board import Board, Page, read_form
from bot.web.pages_duty import duty_page, feed_endpoint, my_ics, new_feed, roster_page
from bot.web.pages_incidents import act, detail_page, incidents_page, register_xlsx, report_docx
from bot.web.pages_more import replies_page, sites_page
from bot.web.scope import REFUSED, may_use_board

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


def _css() -> bytes:
    return resources.files("bot.web").joinpath("static/board.css").read_bytes()


class SignIn:
    """The two sign-in routes and sign-out."""

    def __init__(self, board: Board) -> None:
        self.board = board

    async def show(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        return await asyncio.to_thread(self._show, token)

    def _show(self, token: str) -> Response:
        with Session(self.board.engine) as db:
            valid = auth.link_valid(session=db, token=token, now=self.board.clock.now())
        if not valid:
            return self.board.message(auth.LINK_REFUSED, status=410, title="链接已失效")
        return self.board.render("signin.html", title="登录值班看板", token=token)

    async def redeem(self, request: Request) -> Response:
        if not self.board.same_origin(request) or await read_form(request) is None:
            return self.board.message("请求来源无法验证，已拒绝。请重新打开聊天中的链接。", status=403)
        token = str(request.path_params["token"])
        agent = request.headers.get("user-agent", "")
        return await asyncio.to_thread(self._redeem, token, agent)

    def _redeem(self, token: str, agent: str) -> Response:
        board = self.board
        try:
            with Session(board.engine, expire_on_commit=False) as db:
                opened = auth.redeem_link(session=db, token=token, now=board.clock.now(),
                                          hours=board.web.session_hours, user_agent=agent)
                if not may_use_board(opened.person, board.policy.district_office):
                    db.rollback()
                    return board.message(REFUSED, status=403)
                db.commit()
        except auth.LinkRefused:
            return board.message(auth.LINK_REFUSED, status=410, title="链接已失效")
        log.info("web: %s signed in (session %s)", opened.person.name, opened.row.id)
        response = board.redirect("/web/duty")
        board.set_cookie(response, opened.token, opened.row)
        return response

    def sign_out(self, page: Page) -> Response:
        auth.revoke(session=page.db, now=page.now, actor=page.person.name, session_id=page.session_id)
        response = page.board.message("已退出值班看板。需要时请在聊天中重新发送 /web。", status=200, title="已退出")
        page.board.clear_cookie(response)
        return response


def board_routes(board: Board) -> list[BaseRoute]:
    """Every route of the board (mounted under ``/web``)."""
    sign_in = SignIn(board)
    p = board.page

    async def home(request: Request) -> Response:
        return RedirectResponse(board.url("/web/duty"), status_code=303)

    async def css(request: Request) -> Response:
        return Response(_css(), media_type="text/css; charset=utf-8",
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})

    return [
        Route("/web", home, methods=["GET"]),
        Route("/web/", home, methods=["GET"]),
        Route("/web/static/board.css", css, methods=["GET"]),
        Route("/web/login/{token}", sign_in.show, methods=["GET"]),
        Route("/web/login/{token}", sign_in.redeem, methods=["POST"]),
        Route("/web/logout", p(sign_in.sign_out), methods=["POST"]),
        Route("/web/duty", p(duty_page), methods=["GET"]),
        Route("/web/incidents", p(incidents_page), methods=["GET"]),
        Route("/web/incidents/register.xlsx", p(register_xlsx), methods=["GET"]),
        Route("/web/incidents/{number}", p(detail_page), methods=["GET"]),
        Route("/web/incidents/{number}/report.docx", p(report_docx), methods=["GET"]),
        Route("/web/incidents/{number}/{action}", p(act), methods=["POST"]),
        Route("/web/replies", p(replies_page), methods=["GET"]),
        Route("/web/roster", p(roster_page), methods=["GET"]),
        Route("/web/roster/mine.ics", p(my_ics), methods=["GET"]),
        Route("/web/roster/feed", p(new_feed), methods=["POST"]),
        Route("/web/sites", p(sites_page), methods=["GET"]),
        Route("/web/ical/{token}.ics", feed_endpoint(board), methods=["GET"]),
    ]


def board_of(app: App) -> Board:
    return Board(engine=app.engine, clock=app.clock, settings=app.settings, calendar=app.calendar,
                 profile=app.profile, policy=app.incident_policy, on_commit=app.wake_senders)


def web_routes(app: App) -> list[BaseRoute]:
    """The board's routes for ``app`` (none unless ``[web] enabled``)."""
    if not app.settings.web.enabled:
        return []
    return board_routes(board_of(app))

