"""Audit integrity: each row covers the project's money after the change, and a chain across all projects.

Revision ID: 0005_audit_integrity
Revises: 0004_programme_money

Existing rows keep their hashes (they have no money snapshot, `money` NULL) and are linked into the chain across
projects in insertion (id) order, under `ESMS_AUDIT_KEY` when the settings give one: an upgraded database
verifies like a new one. The rows' own hashes are linked as stored, never recomputed, so an edit made before the
upgrade is still found after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifications.storage import UTCDateTime
from workflow.audit import rechain

revision = "0005_audit_integrity"
down_revision = "0004_programme_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("money", sa.String(), nullable=True))
        batch.add_column(sa.Column("global_seq", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("global_prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("global_prev_project_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("global_prev_seq", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("global_hash", sa.String(64), nullable=True))
    op.create_index("ix_audit_entry_global_seq", "audit_entry", ["global_seq"], unique=True)
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=True),
    )
    rechain(op.get_bind(), key=_audit_key())


def _audit_key() -> str | None:
    # The key lives in the settings, outside the database; a database upgraded before the key is set is linked
    # without one (plain SHA-256).
    from workflow.settings import load_settings

    return load_settings().audit_key


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    op.drop_index("ix_audit_entry_global_seq", "audit_entry")
    with op.batch_alter_table("audit_entry") as batch:
        for column in ("global_hash", "global_prev_seq", "global_prev_project_id", "global_prev_hash", "global_seq"):
            batch.drop_column(column)
        batch.drop_column("money")
