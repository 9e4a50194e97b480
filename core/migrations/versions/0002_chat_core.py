"""chat core

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:18:53.548530
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
import sqlmodel

import core.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('due_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('due_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('payload', sa.Text(), server_default='{}', nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('due_item', schema=None) as batch_op:
        batch_op.create_index('ix_due_item_pending', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_due_item_ref'), ['ref'], unique=False)

    op.create_table('job_state',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('last_fire_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('roles', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('organization', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('processed_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('update_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('received_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'update_id', name='uq_processed_update')
    )
    with op.batch_alter_table('processed_update', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_update_received_at'), ['received_at'], unique=False)

    op.create_table('chat_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('bound_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'external_id', name='uq_chat_identity_ext')
    )
    with op.batch_alter_table('chat_identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_identity_person_id'), ['person_id'], unique=False)

    op.create_table('invite_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('invite_code', schema=None) as batch_op:
        batch_op.create_index('ix_invite_code_code', ['code'], unique=True)
        batch_op.create_index(batch_op.f('ix_invite_code_person_id'), ['person_id'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('buttons', sa.Text(), server_default='[]', nullable=False),
    sa.Column('card_key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('platform_message_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_card', ['card_key', 'chat_id'], unique=False)
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_person_id'), ['person_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_person_id'))
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_index('ix_outbox_card')

    op.drop_table('outbox_message')
    with op.batch_alter_table('invite_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invite_code_person_id'))
        batch_op.drop_index('ix_invite_code_code')

    op.drop_table('invite_code')
    with op.batch_alter_table('chat_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_identity_person_id'))

    op.drop_table('chat_identity')
    with op.batch_alter_table('processed_update', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_update_received_at'))

    op.drop_table('processed_update')
    op.drop_table('person')
    op.drop_table('job_state')
    with op.batch_alter_table('due_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_due_item_ref'))
        batch_op.drop_index('ix_due_item_pending')

    op.drop_table('due_item')
