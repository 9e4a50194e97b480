"""chat alias (a chat the platform moved to a new id)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import sqlmodel

import core.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chat_alias',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('old_chat_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('new_chat_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('migrated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'old_chat_id', name='uq_chat_alias_old')
    )


def downgrade() -> None:
    op.drop_table('chat_alias')
