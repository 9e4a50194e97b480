"""One-use keys shared by every worker through the database (replay guards).

A platform whose callbacks are signed over something that repeats — DingTalk's HTTP
callback signs only its timestamp — lets its adapter refuse a second use of the same
signature: :func:`claim` records the key and answers True the first time, False when
any worker on the same database recorded it before and it has not expired.

The keys live in the update ledger (``processed_update``, :class:`bot.models.ProcessedUpdate`)
under a scope of their own in the ``platform`` column (``"dingtalk:once"``), so they never
meet real update ids and need no table of their own. A key is kept ``keep`` long (the
caller's window: a DingTalk signature is valid for an hour either side of its timestamp,
so two hours); each claim deletes its scope's expired keys through the
``received_at`` index, so the scope stays as small as the traffic of one window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.models import ProcessedUpdate

#: The ``platform`` column of one-use keys is the platform's name and this suffix.
SCOPE_SUFFIX = ":once"


def scope_for(platform: str) -> str:
    """The ledger scope of ``platform``'s one-use keys."""
    return f"{platform}{SCOPE_SUFFIX}"


def claim(engine: Engine, *, scope: str, key: str, now: datetime, keep: timedelta,
          bound: str = "") -> bool:
    """Record ``key`` once; True the first time, False while an earlier claim is kept.

    Two workers claiming the same key at the same moment meet on the ledger's unique
    constraint: exactly one of them gets True. With ``bound`` (a hash of the request's
    body) the key is bound to it: a later claim with the same ``bound`` — the platform
    retrying the very same request — is True again (the update ledger then handles the
    message once); one with another ``bound`` is a replay and False.

    Args:
        engine: the database every worker shares.
        scope: the key space (:func:`scope_for`), at most 20 characters.
        key: the one-use value (at most 100 characters).
        now: the current instant.
        keep: how long a claim is remembered; older ones are deleted here.
    """
    with Session(engine) as session:
        session.execute(delete(ProcessedUpdate).where(
            col(ProcessedUpdate.platform) == scope, col(ProcessedUpdate.received_at) < now - keep))
        session.add(ProcessedUpdate(platform=scope, update_id=key, received_at=now))
        if bound:
            session.add(ProcessedUpdate(platform=scope, update_id=f"{key}#{bound}", received_at=now))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if not bound:
                return False
            same = session.exec(select(ProcessedUpdate.id).where(
                ProcessedUpdate.platform == scope, ProcessedUpdate.update_id == f"{key}#{bound}")).first()
            return same is not None
    return True
