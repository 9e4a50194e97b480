"""grade names and sign-offs: the grade as the office's document names it, and who did
each 审 and 校 of a republishing step (issue 14 items 1 and 3)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grade_name', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    with op.batch_alter_table('incident_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signoff_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('signoffs', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incident_step', schema=None) as batch_op:
        batch_op.drop_column('signoffs')
        batch_op.drop_column('signoff_required')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_column('grade_name')
