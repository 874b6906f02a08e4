"""The scheduler and the outbox: each project's next due instant, outbox messages, the daemon lease.

Revision ID: 0002_scheduler_and_outbox
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notifications.storage import UTCDateTime

revision = "0002_scheduler_and_outbox"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("project") as batch:
        batch.add_column(sa.Column("next_due_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_project_next_due_at", ["next_due_at"])
    op.create_index("ix_tranche_released_at", "tranche", ["released_at"])
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("project.id"), nullable=True),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("recipients", sa.String(), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("body_text", sa.String(), nullable=False),
        sa.Column("body_html", sa.String(), nullable=False),
        sa.Column("attachments", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_outbox_message_project_id", "outbox_message", ["project_id"])
    op.create_index("ix_outbox_due", "outbox_message", ["status", "next_attempt_at"])
    op.create_table(
        "lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("renewed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lease")
    op.drop_table("outbox_message")
    op.drop_index("ix_tranche_released_at", "tranche")
    with op.batch_alter_table("project") as batch:
        batch.drop_index("ix_project_next_due_at")
        batch.drop_column("next_due_at")
