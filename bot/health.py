"""``/readyz``: can this bot do its work right now?

Four checks, each ``{"ok": true|false, …}`` with the numbers behind it:

* ``database`` — it answers a query on the bot's own tables (a database file that was
  removed, or a server that is down, fails).
* ``scheduler`` — it ticked within ``[bot] tick_seconds`` plus
  ``[http] ready_tick_grace_seconds`` (a tick that hangs, or a scheduler that stopped,
  fails).
* ``outbox`` — the oldest pending message for this platform was queued less than
  ``[http] ready_outbox_max_age_seconds`` ago (messages that do not go out fail).
  Not checked while the database does not answer (``"ok": null``).
* ``platform`` — the chat platform answered: the outbox sender's last call reached it, or
  its calls have failed as unreachable (network, timeouts, 5xx) for less than
  ``[http] ready_platform_grace_seconds``.

The body is ``{"status": "ok"|"fail", "failing": [names], "checks": {name: {…}}}``; the
HTTP status is 200 when nothing fails, else 503 (:mod:`bot.http`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.outbox import OutboxSender
from core.outbox import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)


def readiness(*, engine: Engine, now: datetime, settings: Settings, last_tick: datetime | None,
              sender: OutboxSender) -> tuple[bool, dict[str, Any]]:
    """The four checks (see the module docstring); never raises.

    Returns:
        Whether every check passed, and the JSON body.
    """
    checks: dict[str, dict[str, Any]] = {}
    try:
        with Session(engine) as session:
            pending, oldest = session.exec(
                select(func.count(), func.min(OutboxMessage.created_at)).where(
                    OutboxMessage.status == OutboxStatus.pending,
                    or_(col(OutboxMessage.platform).is_(None),
                        col(OutboxMessage.platform) == sender.platform))).one()
    except Exception as exc:
        log.warning("readiness: the database did not answer: %s", exc)
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        checks["outbox"] = {"ok": None, "error": "database unavailable"}
    else:
        limit = settings.http.ready_outbox_max_age_seconds
        age = _seconds(now, oldest) if oldest is not None else 0
        checks["database"] = {"ok": True}
        checks["outbox"] = {"ok": age <= limit, "pending": pending, "oldest_age_seconds": age,
                            "limit_seconds": limit}
    tick_limit = settings.bot.tick_seconds + settings.http.ready_tick_grace_seconds
    tick_age = _seconds(now, last_tick) if last_tick is not None else None
    checks["scheduler"] = {"ok": tick_age is not None and tick_age <= tick_limit,
                           "last_tick_age_seconds": tick_age, "limit_seconds": tick_limit}
    grace = settings.http.ready_platform_grace_seconds
    down_for = _seconds(now, sender.unreached_since) if sender.unreached_since else None
    checks["platform"] = {
        "ok": down_for is None or down_for <= grace, "name": sender.platform,
        "last_reached_age_seconds": (_seconds(now, sender.last_reached_at)
                                     if sender.last_reached_at is not None else None),
        "unreachable_for_seconds": down_for, "limit_seconds": grace}
    failing = [name for name, check in checks.items() if check["ok"] is False]
    return not failing, {"status": "fail" if failing else "ok", "failing": failing,
                         "checks": checks}


def _seconds(now: datetime, then: datetime) -> int:
    return max(0, int((now - then).total_seconds()))
