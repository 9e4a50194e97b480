"""Whether a command's transaction has to wait for PostgreSQL's disk flush.

A command's transaction holds the update's processed mark, the handler's changes and the
replies. When the handler changed nothing — a question: ``/whoami``, ``/due``, ``/help``,
``/incident list`` — the transaction's only writes are the processed mark and the reply
rows, and its commit need not wait for the WAL flush (4 ms on the test machine, most of
such a command's round trip, issue 21): ``SET LOCAL synchronous_commit TO OFF``. Should
PostgreSQL itself crash within its WAL writer delay (~0.2 s) after such a commit, what is
lost is that answer and the processed mark: the update is handled again if the platform
delivers it again, or the person asks again. A transaction that wrote anything else — a
report, an acknowledgement, a roster change, a pending follow-up question, an unblocked
chat — waits, as every transaction did before. SQLite (WAL, ``synchronous=NORMAL``)
already commits without a flush; nothing changes there.

Decided from the statements the transaction's connection ran (their SQL text, which costs
next to nothing to look at), not from the session's objects: nothing written on this
connection, ORM or not, is missed.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlmodel import Session

from core.db import no_flush_wait

# Statements that leave the office's records as they were: reads, savepoints, and the two
# writes every command makes (its update's processed mark, its replies).
_LIGHT = ("SELECT ", "SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ",
          "INSERT INTO processed_update ", "INSERT INTO outbox_message ")


class WriteWatch:
    """Watches one transaction's connection; :meth:`commit` commits it, without waiting
    for the disk flush when nothing but light statements ran (PostgreSQL only)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.conn: Connection | None = None
        self.changed = False
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            self.conn = session.connection()
            event.listen(self.conn, "before_cursor_execute", self._before)

    def _before(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not self.changed and not statement.lstrip().startswith(_LIGHT):
            self.changed = True

    def commit(self) -> None:
        """Flush, then commit: at once when nothing but light statements ran."""
        if self.conn is not None:
            self.session.flush()
            if not self.changed:
                no_flush_wait(self.conn)
        self.close()
        self.session.commit()

    def close(self) -> None:
        if self.conn is not None:
            event.remove(self.conn, "before_cursor_execute", self._before)
            self.conn = None
