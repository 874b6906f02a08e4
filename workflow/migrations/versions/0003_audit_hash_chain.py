"""Tamper-evident audit: each row carries its hash chained to the previous row of its project.

Revision ID: 0003_audit_hash_chain
Revises: 0002_scheduler_and_outbox

Existing rows are hashed in order, so a database upgraded with data in it verifies like a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifications.storage import UTCDateTime
from workflow.audit import GENESIS, hash_of

revision = "0003_audit_hash_chain"
down_revision = "0002_scheduler_and_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=False, server_default=""))
    audit = sa.table(
        "audit_entry",
        sa.column("id", sa.Integer()),
        sa.column("project_id", sa.Integer()),
        sa.column("seq", sa.Integer()),
        sa.column("at", UTCDateTime()),
        sa.column("recorded_at", UTCDateTime()),
        sa.column("event", sa.String()),
        sa.column("source", sa.String()),
        sa.column("dest", sa.String()),
        sa.column("actor", sa.String()),
        sa.column("reason", sa.String()),
        sa.column("forced", sa.Boolean()),
        sa.column("params", sa.String()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    connection = op.get_bind()
    previous: dict[int, str] = {}
    rows = connection.execute(sa.select(audit).order_by(audit.c.project_id, audit.c.seq)).mappings().all()
    for row in rows:
        prev = previous.get(row["project_id"], GENESIS)
        digest = hash_of(dict(row), prev)
        connection.execute(sa.update(audit).where(audit.c.id == row["id"]).values(prev_hash=prev, hash=digest))
        previous[row["project_id"]] = digest


def downgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
