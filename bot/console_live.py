"""The console on the live database: whom the operator speaks as, and what it delivers.

The console (:mod:`bot.adapters.console`) runs in one of three modes (:class:`ConsoleMode`):

* ``drill`` — on a sandbox (:mod:`bot.sandbox`): ``dutybot drill``, ``dutybot console``
  without ``--live``, ``dutybot demo``. Everyone is bound on the console, so the drill
  shows what each person would receive; the sandbox is thrown away afterwards.
* ``live`` — ``dutybot console --live``: the operator's commands act on the live database,
  under the exclusive instance lock (:mod:`bot.instance_lock`). The clock is real time and
  nothing periodic runs (no catch-up, no ``:advance``): that is ``dutybot run``'s work —
  run from here, a briefing meant for the duty group on WeCom would be "sent" to the
  terminal and counted as done.
* ``service`` — ``dutybot run --adapter console``: the console is the chat platform of a
  live deployment (the embedded default), with the scheduler running.

On the live database (``live`` and ``service``) the console never takes a message meant
for another platform, nor dead-letters one. Two rules make sure of it:

1. **What it delivers** — :class:`ConsoleOnlySender`, used instead of the outbox sender:
   the replies to what was typed at this console (event ``update:console:…``), rows
   addressed to a console chat (``platform = 'console'``), and rows to people reachable
   *only* on the console (a ``console:NAME`` identity and no account on any other
   platform). Any other row is left exactly as it is — pending for its platform's sender,
   or waiting for its person to bind.
2. **Whom it binds** — ``service`` binds the people bound on no platform at all (the
   console is then their platform); ``live`` binds nobody. To speak as a person without a
   ``console:NAME`` identity — typically someone on WeCom — the console uses a *temporary
   operator identity* ``console-op:NAME``: it lets the dispatcher know who speaks, rule 1
   never counts it (so it draws none of the person's messages to the terminal), and it is
   deleted when the speaker changes and when the console closes; one left by a crash is
   deleted by the next ``console --live``.

Simpler alternatives were rejected: binding the speaker as ``console:NAME`` makes any
ordinary sender on the console deliver that person's pending WeCom messages to the
terminal; not binding at all leaves the dispatcher unable to tell who is speaking.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from bot import waiting
from bot.delivery import DeliveryReport
from bot.outbox import OutboxSender
from core.db import session_scope
from core.outbox import OutboxMessage, OutboxStatus, release_waiting
from people.models import ChatIdentity, Person, Role
from people.service import ensure_identity, identity_for, list_people

CONSOLE = "console"
PREFIX = "console:"
GROUP = "console:group:值班群"
#: The external id prefix of temporary operator identities (see the module docstring).
OPERATOR_PREFIX = "console-op:"
#: The event key of every reply to something typed at a console (bot.dispatcher._write).
REPLY_EVENT_PREFIX = "update:console:"

_M = OutboxMessage


class ConsoleMode(StrEnum):
    """What the console runs on; see the module docstring."""

    drill = "drill"
    live = "live"
    service = "service"


def is_temporary(identity: ChatIdentity) -> bool:
    """A temporary operator identity (never a delivery address)."""
    return identity.platform == CONSOLE and identity.external_id.startswith(OPERATOR_PREFIX)


def _real() -> ColumnElement[bool]:
    """An identity that is not a temporary operator identity."""
    return ~col(ChatIdentity.external_id).startswith(OPERATOR_PREFIX, autoescape=True)


def _bound_anywhere(session: Session, person_id: int) -> bool:
    return session.exec(select(ChatIdentity.id).where(
        ChatIdentity.person_id == person_id, _real())).first() is not None


def speaker_identity(*, session: Session, person: Person, mode: ConsoleMode, now: datetime) -> ChatIdentity:
    """The identity the console speaks through as ``person`` (created when needed).

    ``console:NAME`` when the person has it; in ``drill`` mode, and in ``service`` mode for
    a person bound nowhere, it is created. Otherwise a temporary ``console-op:NAME``.
    """
    assert person.id is not None
    found = identity_for(session=session, platform=CONSOLE, external_id=PREFIX + person.name)
    if found is not None and found[1].id == person.id:
        return found[0]
    if mode is ConsoleMode.drill or (mode is ConsoleMode.service and not _bound_anywhere(session, person.id)):
        ident = ensure_identity(session=session, person=person, platform=CONSOLE,
                                external_id=PREFIX + person.name, now=now)
        release_waiting(session=session, person_id=person.id, now=now)
        return ident
    return ensure_identity(session=session, person=person, platform=CONSOLE,
                           external_id=OPERATOR_PREFIX + person.name, now=now)


def bind_unbound(*, session: Session, now: datetime) -> list[Person]:
    """``service`` mode: bind on the console every active person (not an external contact)
    who is bound on no platform; their waiting messages go back to the queue. Returns them."""
    bound = set(session.exec(select(ChatIdentity.person_id).where(_real())))
    added = []
    for person in list_people(session=session):
        if person.id in bound or Role.external in person.role_set():
            continue
        assert person.id is not None
        ensure_identity(session=session, person=person, platform=CONSOLE,
                        external_id=PREFIX + person.name, now=now)
        release_waiting(session=session, person_id=person.id, now=now)
        added.append(person)
    return added


def forget(*, session: Session, identity_ids: Iterable[int]) -> int:
    """Delete the given temporary operator identities (others are kept); how many."""
    ids = list(identity_ids)
    if not ids:
        return 0
    rows = [i for i in session.exec(select(ChatIdentity).where(col(ChatIdentity.id).in_(ids)))
            if is_temporary(i)]
    for ident in rows:
        session.delete(ident)
    return len(rows)


def forget_all(*, session: Session) -> int:
    """Delete every temporary operator identity (a crashed console's); how many."""
    rows = list(session.exec(select(ChatIdentity).where(
        ChatIdentity.platform == CONSOLE,
        col(ChatIdentity.external_id).startswith(OPERATOR_PREFIX, autoescape=True))))
    for ident in rows:
        session.delete(ident)
    return len(rows)


def for_console() -> ColumnElement[bool]:
    """The rows the console delivers on the live database (rule 1 of the module docstring)."""
    ident = ChatIdentity
    console_only = select(ident.person_id).where(
        ident.platform == CONSOLE, col(ident.external_id).startswith(PREFIX, autoescape=True),
        col(ident.blocked_at).is_(None))
    elsewhere = select(ident.person_id).where(ident.platform != CONSOLE)
    return or_(
        col(_M.event_key).startswith(REPLY_EVENT_PREFIX, autoescape=True),
        and_(col(_M.person_id).is_(None), col(_M.platform) == CONSOLE),
        and_(col(_M.person_id).in_(console_only), col(_M.person_id).not_in(elsewhere),
             or_(col(_M.platform).is_(None), col(_M.platform) == CONSOLE)),
    )


class ConsoleOnlySender(OutboxSender):
    """The outbox sender of the console on the live database: delivers only the rows of
    :func:`for_console`, in id order; never retries, never dead-letters (printing does not
    fail), never touches another row.

    As the platform of a live deployment (``park_unbound``, ``dutybot run --adapter
    console``) it also keeps what the outbox sender keeps for people bound nowhere: their
    rows wait (:mod:`bot.waiting`), the admins are told once, and waits run out.
    """

    park_unbound = False

    async def deliver_due(self) -> DeliveryReport:
        """One pass over the console's due rows."""
        report = DeliveryReport()
        now = self.clock.now()
        if self.park_unbound:
            self._park_unbound(now, report)
        query = (select(_M).where(_M.status == OutboxStatus.pending, _M.next_attempt_at <= now,
                                  or_(col(_M.claimed_until).is_(None), col(_M.claimed_until) <= now),
                                  for_console())
                 .order_by(col(_M.id)).limit(self.settings.batch_size))
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with session_scope(self.engine) as session:
            rows = list(session.exec(query))
            report.claimed = len(rows)
            persons = {r.person_id for r in rows if r.person_id is not None}
            names = {p.id: p.name for p in session.exec(select(Person).where(col(Person.id).in_(persons)))}
            chats = {i.person_id: i.chat_id for i in session.exec(select(ChatIdentity).where(
                col(ChatIdentity.person_id).in_(persons), ChatIdentity.platform == CONSOLE,
                col(ChatIdentity.external_id).startswith(PREFIX, autoescape=True)))}
            for row in rows:
                if row.person_id is None:
                    chat = row.chat_id or GROUP
                else:
                    chat = chats.get(row.person_id) or PREFIX + names.get(row.person_id, str(row.person_id))
                ref = await self.adapter.send(chat, row.to_outbound(), is_group=row.person_id is None)
                row.status, row.sent_at, row.claimed_until = OutboxStatus.sent, now, None
                row.attempts += 1
                row.platform_message_id = str(ref)[:100]
                session.add(row)
                report.sent += 1
        return report

    def _park_unbound(self, now: datetime, report: DeliveryReport) -> None:
        hours = self.settings.unbound_wait_hours
        report.expired += len(waiting.sweep(self.engine, platform=CONSOLE, now=now, hours=hours,
                                            limit=self.settings.batch_size))
        bound = select(ChatIdentity.id).where(ChatIdentity.person_id == _M.person_id).exists()
        with Session(self.engine) as session:
            rows = list(session.exec(select(_M).where(
                _M.status == OutboxStatus.pending, _M.next_attempt_at <= now,
                col(_M.person_id).is_not(None), col(_M.platform).is_(None), ~bound)
                .order_by(col(_M.id)).limit(self.settings.batch_size)))
        if rows:
            report.waiting += waiting.park(self.engine, rows, now=now, hours=hours)
