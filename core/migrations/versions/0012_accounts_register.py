"""accounts register: new-media accounts beside their site rows, lifecycle requests and
their approvals, tracked duties with deadlines, and posts (issue 18)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('owner_unit', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('approver', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('government', sa.Boolean(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('state_since', sa.Date(), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=True),
    sa.Column('filing_status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('filing_number', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=True),
    sa.Column('feed_url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('comments_open', sa.Boolean(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id')
    )
    op.create_table('account_post',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('posted_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('original', sa.Boolean(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'key', name='uq_account_post_key')
    )
    with op.batch_alter_table('account_post', schema=None) as batch_op:
        batch_op.create_index('ix_account_post_time', ['account_id', 'posted_at'], unique=False)

    op.create_table('account_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('approvals_needed', sa.Text(), server_default='[]', nullable=False),
    sa.Column('citation', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notice_started_on', sa.Date(), nullable=True),
    sa.Column('finished_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('account_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_request_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_account_request_status', ['status', 'id'], unique=False)

    op.create_table('account_approval',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('by_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['account_request.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'step', name='uq_account_approval_step')
    )
    with op.batch_alter_table('account_approval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_approval_request_id'), ['request_id'], unique=False)

    op.create_table('account_duty',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('rule_id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('citation', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('due_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_last_day', sa.Date(), nullable=True),
    sa.Column('provisional', sa.Boolean(), nullable=False),
    sa.Column('basis_start', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('basis_amount', sa.Integer(), nullable=True),
    sa.Column('basis_unit', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('not_before', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('opened_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['account_request.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('account_duty', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_duty_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_account_duty_open', ['status', 'due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('account_duty', schema=None) as batch_op:
        batch_op.drop_index('ix_account_duty_open')
        batch_op.drop_index(batch_op.f('ix_account_duty_account_id'))

    op.drop_table('account_duty')
    with op.batch_alter_table('account_approval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_approval_request_id'))

    op.drop_table('account_approval')
    with op.batch_alter_table('account_request', schema=None) as batch_op:
        batch_op.drop_index('ix_account_request_status')
        batch_op.drop_index(batch_op.f('ix_account_request_account_id'))

    op.drop_table('account_request')
    with op.batch_alter_table('account_post', schema=None) as batch_op:
        batch_op.drop_index('ix_account_post_time')

    op.drop_table('account_post')
    op.drop_table('account')
