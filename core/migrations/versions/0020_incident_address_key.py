"""incident: ``address_key``, the indexed key of an incident's address, so that a second
report of an address finds the first by an index seek instead of reading every open
incident (issue 21); filled here for the incidents already stored

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 15:30:00
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# A copy of incidents.address as of this revision (a migration does not follow later changes).
_LOOKS_LIKE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://\S+|(?:[\w-]+\.)+[a-z]{2,}(?:[/:?#]\S*)?)$", re.IGNORECASE)
_BATCH = 1000


def _key(address: str | None) -> str | None:
    text = (address or "").strip()
    if not _LOOKS_LIKE_URL.match(text):
        return None
    parts = urlsplit(text if "://" in text else f"http://{text}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port in {80, 443} else f"{host}:{port}"
    normalized = netloc + parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address_key', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_incident_address_key', ['address_key'], unique=False)
    conn = op.get_bind()
    incident = sa.table('incident', sa.column('id', sa.Integer), sa.column('url', sa.String),
                        sa.column('site', sa.String), sa.column('address_key', sa.String))
    last = 0
    while True:
        rows = conn.execute(sa.select(incident.c.id, incident.c.url, incident.c.site)
                            .where(incident.c.id > last).order_by(incident.c.id).limit(_BATCH)).all()
        if not rows:
            break
        keyed = [{"b_id": r.id, "b_key": _key(r.url or r.site)} for r in rows]
        keyed = [k for k in keyed if k["b_key"] is not None]
        if keyed:
            conn.execute(incident.update().where(incident.c.id == sa.bindparam("b_id"))
                         .values(address_key=sa.bindparam("b_key")), keyed)
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_address_key')
        batch_op.drop_column('address_key')
