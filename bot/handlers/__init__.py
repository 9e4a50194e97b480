"""Chat command handlers. Each parses arguments, calls services, renders Chinese replies."""

from __future__ import annotations

from bot.dispatcher import Handler
from bot.handlers.account import AccountHandler
from bot.handlers.admin import PeopleHandler
from bot.handlers.assign import AssignHandler
from bot.handlers.brief import BriefHandler
from bot.handlers.check import CheckHandler
from bot.handlers.due import DueHandler
from bot.handlers.duty import DutyHandler, MyDutyHandler
from bot.handlers.help import BindHandler, HelpHandler, WhoamiHandler
from bot.handlers.incident import IncidentHandler
from bot.handlers.post import PostHandler
from bot.handlers.reply import ReplyHandler
from bot.handlers.rounds import ReadHandler, SitesHandler, SpotCheckHandler
from bot.handlers.shift import CheckinHandler, HandoverHandler
from bot.handlers.swap import SubstituteHandler, SwapHandler
from bot.handlers.web import WebHandler


def default_handlers() -> list[Handler]:
    """Every command, in the order /help lists them."""
    return [HelpHandler(), WhoamiHandler(), BindHandler(), DutyHandler(), MyDutyHandler(), CheckinHandler(), HandoverHandler(), SwapHandler(), SubstituteHandler(), AssignHandler(), ReadHandler(), SpotCheckHandler(), SitesHandler(), DueHandler(),
            IncidentHandler(), ReplyHandler(), CheckHandler(), PostHandler(), AccountHandler(), BriefHandler(), WebHandler(), PeopleHandler()]
