"""site support: the 技术保障 person of a site (issue 14 item 4)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('support_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_site_support_id_person', 'person', ['support_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_constraint('fk_site_support_id_person', type_='foreignkey')
        batch_op.drop_column('support_id')
