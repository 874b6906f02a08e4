"""The first schema: projects, organisations, ESMS, tranches and the audit log.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifications.storage import UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("selection_group", sa.String(1), nullable=True),
        sa.Column("services_socles", sa.String(200), nullable=False),
        sa.Column("owner_name", sa.String(200), nullable=False),
        sa.Column("owner_email", sa.String(254), nullable=False),
        sa.Column("esms_count", sa.Integer(), nullable=False),
        sa.Column("small_esms_count", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("needs_reference", sa.String(200), nullable=True),
        sa.Column("vendor", sa.String(200), nullable=True),
        sa.Column("configuration_invoice", sa.String(200), nullable=True),
        sa.Column("rollout_invoice", sa.String(200), nullable=True),
        sa.Column("withdrawal_reason", sa.String(1000), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_project_campaign_id", "project", ["campaign_id"])
    op.create_index("ix_project_state", "project", ["state"])
    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("project.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("finess", sa.String(9), nullable=False),
    )
    op.create_index("ix_organisation_project_id", "organisation", ["project_id"])
    op.create_table(
        "esms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("project.id"), nullable=False),
        sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=False),
        sa.Column("finess", sa.String(9), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("small", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_esms_project_id", "esms", ["project_id"])
    op.create_table(
        "tranche",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("project.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("percent", sa.String(16), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("project_id", "number", name="uq_tranche_project_number"),
    )
    op.create_index("ix_tranche_project_id", "tranche", ["project_id"])
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("project.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=True),
        sa.Column("dest", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("params", sa.String(), nullable=False),
        sa.UniqueConstraint("project_id", "seq", name="uq_audit_project_seq"),
    )
    op.create_index("ix_audit_entry_project_id", "audit_entry", ["project_id"])


def downgrade() -> None:
    for table in ("audit_entry", "tranche", "esms", "organisation", "project"):
        op.drop_table(table)
