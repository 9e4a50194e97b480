"""The scheduler's bookkeeping for one chunk of due items (see :mod:`bot.scheduler`):
the done marks written with one statement, and the session emptied between items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import event, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from core.schedule import DueItem, DueStatus

_DUE_TABLE = DueItem.__table__   # type: ignore[attr-defined]


class DoneMarks:
    """The chunk's items that ran and that their processors left alone, marked done (and
    processed now) with one ``UPDATE … WHERE id IN (…)`` instead of one UPDATE each.

    The marks are written at the chunk's end, or as soon as anything in the chunk's
    transaction is about to run another statement naming ``due_item``: a processor that
    reads or writes due items (``schedule``, ``cancel_for``) sees the items before it
    done, as if each had been marked in its own savepoint. Marks written inside a
    savepoint that is then rolled back (say, by the failing item whose processor's query
    wrote them) are written again. Watches the connection's statements (the SQL text,
    which costs next to nothing) rather than the session's, so nothing on this connection
    can read around it.
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn, self.now = conn, now
        self.ids: list[int] = []                       # to write
        self.written: list[int] = []                   # written, in order
        self.savepoints: list[tuple[str, int]] = []    # open: name, len(written) when begun
        self._writing = False
        event.listen(conn, "before_cursor_execute", self._before)

    def add(self, item_id: int) -> None:
        self.ids.append(item_id)

    def write(self) -> None:
        if not self.ids:
            return
        ids, self.ids, self._writing = self.ids, [], True
        try:
            self.conn.execute(update(_DUE_TABLE).where(_DUE_TABLE.c.id.in_(ids))
                              .values(status=DueStatus.done, processed_at=self.now))
        finally:
            self._writing = False
        self.written += ids

    def close(self) -> None:
        event.remove(self.conn, "before_cursor_execute", self._before)

    def _before(self, conn: Connection, cursor: object, statement: str, *_args: object) -> None:
        if self._writing:
            return
        if statement.startswith("SAVEPOINT "):
            self.savepoints.append((statement.split()[-1], len(self.written)))
        elif statement.startswith(("RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")):
            name = statement.split()[-1]
            at = next((i for i in range(len(self.savepoints) - 1, -1, -1) if self.savepoints[i][0] == name), None)
            if at is None:
                return
            if statement.startswith("ROLLBACK"):   # what was written since is undone: again
                since = self.savepoints[at][1]
                self.ids[:0] = self.written[since:]
                del self.written[since:]
            del self.savepoints[at:]
        elif self.ids and "due_item" in statement:
            self.write()


def expunge_except(session: Session, keep: dict[int, DueItem]) -> None:
    """Empty the session but for the due items in ``keep`` (a chunk's items yet to run)."""
    if not keep:
        session.expunge_all()
        return
    kept = {id(item) for item in keep.values()}
    for obj in list(session.identity_map.values()):
        if id(obj) not in kept:
            session.expunge(obj)
    for obj in list(session.new):
        session.expunge(obj)
