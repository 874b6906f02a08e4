"""The address an owner's reply goes to: the campaign's ARS contact (the sender itself may be a robot).

Revision ID: 0007_reply_to
Revises: 0006_outbox_fencing

Existing messages have none: they are sent as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_reply_to"
down_revision = "0006_outbox_fencing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("reply_to", sa.String(254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("reply_to")
