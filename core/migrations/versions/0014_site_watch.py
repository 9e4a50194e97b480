"""site watch: columns of websites, availability probes, findings, homepage baselines,
and the intranet mark on sites that may be fetched on a private address (issue 17)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('site_column',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'name', name='uq_site_column_name')
    )
    with op.batch_alter_table('site_column', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_column_site_id'), ['site_id'], unique=False)

    op.create_table('watch_baseline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('taken_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('text_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('links', sa.Text(), server_default='[]', nullable=False),
    sa.Column('scripts', sa.Text(), server_default='[]', nullable=False),
    sa.Column('iframes', sa.Text(), server_default='[]', nullable=False),
    sa.Column('meta_refresh', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('html', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'url', name='uq_watch_baseline_url')
    )
    op.create_table('watch_finding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('data', sa.Text(), server_default='{}', nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('first_seen', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('incident_number', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('watch_finding', schema=None) as batch_op:
        batch_op.create_index('ix_watch_finding_key', ['site_id', 'kind', 'key'], unique=False)
        batch_op.create_index('ix_watch_finding_open', ['status', 'site_id'], unique=False)

    op.create_table('watch_probe',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('column_id', sa.Integer(), nullable=True),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('elapsed_ms', sa.Integer(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['column_id'], ['site_column.id'], ),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('watch_probe', schema=None) as batch_op:
        batch_op.create_index('ix_watch_probe_site_at', ['site_id', 'at'], unique=False)

    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intranet', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_column('intranet')

    with op.batch_alter_table('watch_probe', schema=None) as batch_op:
        batch_op.drop_index('ix_watch_probe_site_at')

    op.drop_table('watch_probe')
    with op.batch_alter_table('watch_finding', schema=None) as batch_op:
        batch_op.drop_index('ix_watch_finding_open')
        batch_op.drop_index('ix_watch_finding_key')

    op.drop_table('watch_finding')
    op.drop_table('watch_baseline')
    with op.batch_alter_table('site_column', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_column_site_id'))

    op.drop_table('site_column')
