"""outbox claimed_by: the worker that claimed a row, so that a row claimed by a process
that is gone is taken again at once rather than after its lease (issue 16 item 9)

Each outbox sender holds a liveness lock of its own while it runs (``bot.instance_lock``)
and writes its worker id on the rows it claims; another sender that finds the claimer's
lock free claims those rows without waiting for ``claimed_until``. A row claimed before
this revision has no claimer and waits for its lease, as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
