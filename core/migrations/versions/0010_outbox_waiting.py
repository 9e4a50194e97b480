"""outbox waiting: a message to a person bound on no chat platform waits for the binding
(status ``waiting``) until ``expires_at`` instead of failing at once (issue 15 item 2)

The status column already holds any short word; the new column marks the rows that
waited, so that the daily briefing can tell an expired wait from a failed delivery.
Downgrading turns rows still waiting back into pending ones, due when they were queued
(the old sender then dead-letters them, as it always did).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    instant = core.db.UTCDateTime(timezone=True)
    outbox = sa.table('outbox_message', sa.column('status', sa.String()),
                      sa.column('created_at', instant), sa.column('next_attempt_at', instant),
                      sa.column('claimed_until', instant))
    op.get_bind().execute(outbox.update().where(outbox.c.status == 'waiting')
                          .values(status='pending', next_attempt_at=outbox.c.created_at,
                                  claimed_until=None))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
