"""Money at the programme level and the whole life of a project: repayments and waivers of a project in
recovery, the approver of a release, the FINESS index that one-ESMS-one-funding looks up, and each project's own
deadlines (completion, promotion, extensions), the last error of the deadline sweep on it, and when its
personal data were purged.

Revision ID: 0004_programme_money
Revises: 0003_audit_hash_chain

Existing audit rows keep their hashes: a row without an approver hashes as before (`workflow.audit`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifications.storage import UTCDateTime

revision = "0004_programme_money"
down_revision = "0003_audit_hash_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("repaid_cents", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("waived_cents", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("own_deadlines", sa.String(2000), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("sweep_error", sa.String(300), nullable=True))
        batch.add_column(sa.Column("sweep_error_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("purged_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(200), nullable=True))
    op.create_index("ix_esms_finess", "esms", ["finess"])


def downgrade() -> None:
    op.drop_index("ix_esms_finess", "esms")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_column("approved_by")
    with op.batch_alter_table("project") as batch:
        batch.drop_column("purged_at")
        batch.drop_column("sweep_error_at")
        batch.drop_column("sweep_error")
        batch.drop_column("own_deadlines")
        batch.drop_column("waived_cents")
        batch.drop_column("repaid_cents")
