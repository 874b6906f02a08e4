"""Outbox fencing: the claim token of the relay pass that holds a message, and how often it was handed over.

Revision ID: 0006_outbox_fencing
Revises: 0005_audit_integrity

Existing messages are held by nobody (`claim_token` NULL) and were handed over as often as they were attempted
(`handovers` = `attempts`): an upgraded database counts no duplicate it cannot know about.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox_fencing"
down_revision = "0005_audit_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(32), nullable=True))
        batch.add_column(sa.Column("handovers", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_outbox_claim_token", "outbox_message", ["claim_token"])
    op.execute("UPDATE outbox_message SET handovers = attempts")


def downgrade() -> None:
    op.drop_index("ix_outbox_claim_token", "outbox_message")
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("handovers")
        batch.drop_column("claim_token")
