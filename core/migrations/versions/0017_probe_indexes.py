"""site watch probes: a covering index (site_id, column_id, at, ok) in place of
(site_id, at), so a month's probes of a site are counted from the index alone; an index
on ``at`` for the last hour's probes (/metrics) and the nightly purge (issue 17)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('watch_probe', schema=None) as batch_op:
        batch_op.drop_index('ix_watch_probe_site_at')
        batch_op.create_index('ix_watch_probe_site_column_at', ['site_id', 'column_id', 'at', 'ok'], unique=False)
        batch_op.create_index('ix_watch_probe_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('watch_probe', schema=None) as batch_op:
        batch_op.drop_index('ix_watch_probe_at')
        batch_op.drop_index('ix_watch_probe_site_column_at')
        batch_op.create_index('ix_watch_probe_site_at', ['site_id', 'at'], unique=False)
