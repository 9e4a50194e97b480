"""alert intake: incident_alert, one row per alert of a monitoring source, unique by
(source, fingerprint), with the incident it opened and whether it fires (issue 19)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:57:44
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('incident_number', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('fire_count', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('summary', sa.Text(), server_default='', nullable=False),
    sa.Column('first_seen', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'fingerprint', name='uq_incident_alert_fingerprint')
    )
    with op.batch_alter_table('incident_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_alert_incident_number'), ['incident_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_alert_incident_number'))

    op.drop_table('incident_alert')
