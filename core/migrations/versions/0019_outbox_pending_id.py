"""outbox: an index on (status, id), so that the sender's claim (pending rows in id order,
up to its batch size) reads its batch from the index instead of every pending row and a
sort (issue 21)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 15:20:00
"""

from __future__ import annotations

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending_id', ['status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending_id')
