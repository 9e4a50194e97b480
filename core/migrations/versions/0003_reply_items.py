"""reply items

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:51:07.481471
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import sqlmodel

import core.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reply_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('external_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('received_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_last_day', sa.Date(), nullable=False),
    sa.Column('ceiling_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provisional', sa.Boolean(), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('citation', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('extended_workdays', sa.Integer(), nullable=False),
    sa.Column('extension_requested', sa.Integer(), nullable=True),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('extension_requested_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['closed_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['extension_requested_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_ref'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('reply_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_item_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index('ix_reply_item_open_due', ['status', 'due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reply_item', schema=None) as batch_op:
        batch_op.drop_index('ix_reply_item_open_due')
        batch_op.drop_index(batch_op.f('ix_reply_item_assignee_id'))

    op.drop_table('reply_item')
