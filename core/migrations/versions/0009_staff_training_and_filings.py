"""staff training and filings: the day a person was trained (STAFF-1, 先培训后上岗) and the
staff changes to file with the district office (STAFF-2, 人员变动备案) (issue 14 item 6)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db
from core.clock import SHANGHAI


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trained_on', sa.Date(), nullable=True))
    _backfill_people_already_on_duty()
    op.create_table('staff_filing',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('change', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('filed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('filed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staff_filing', schema=None) as batch_op:
        batch_op.create_index('ix_staff_filing_open', ['filed_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_filing_person_id'), ['person_id'], unique=False)


def _backfill_people_already_on_duty() -> None:
    """People registered before this upgrade were already on duty: 先培训后上岗 (梁平办法第三十四条)
    is about newcomers, so they count as trained on the day they were registered (in
    Beijing time). Without this, an upgraded office's next ``roster generate`` would leave
    every officer out. Newcomers from now on start untrained."""
    person = sa.table('person', sa.column('id', sa.Integer()),
                      sa.column('created_at', core.db.UTCDateTime(timezone=True)),
                      sa.column('trained_on', sa.Date()))
    bind = op.get_bind()
    for pid, created in bind.execute(sa.select(person.c.id, person.c.created_at)).all():
        day = created.astimezone(SHANGHAI).date()
        bind.execute(person.update().where(person.c.id == pid).values(trained_on=day))


def downgrade() -> None:
    with op.batch_alter_table('staff_filing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_filing_person_id'))
        batch_op.drop_index('ix_staff_filing_open')
    op.drop_table('staff_filing')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('trained_on')
