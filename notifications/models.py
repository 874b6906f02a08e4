"""The outbox table: every e-mail the engine decided to send, with its delivery status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from notifications.storage import utc_column


class OutboxStatus(StrEnum):
    """What became of a queued message."""

    #: To send at `next_attempt_at` (a relay's claim pushes that forward; a failure too, with backoff).
    PENDING = "pending"
    #: Handed over to the mail server (or written as an `.eml` file).
    SENT = "sent"
    #: Handed over, but some recipients were refused: see `last_error`. Final, like `sent`.
    PARTIAL = "partial"
    #: Refused for good, or too many attempts; `esms outbox retry` makes it pending again.
    DEAD = "dead"


class OutboxMessage(SQLModel, table=True):
    """An e-mail decided in the same transaction as the change that causes it, delivered later by the relay.

    `idempotency_key` (project, event, tranche or deadline, offset) is unique: a repeated event or sweep can never
    queue the same message twice. The message is rendered when queued, so what is sent is what was decided.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "next_attempt_at"),
        sa.Index("ix_outbox_claim_token", "claim_token"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    project_id: int | None = Field(default=None, foreign_key="project.id", index=True)
    template: str = Field(max_length=64)
    recipients: str  # JSON array of addresses
    subject: str = Field(max_length=998)
    body_text: str
    body_html: str
    attachments: str = Field(default="[]")  # JSON array of {filename, content_type, content}
    # An `OutboxStatus`, stored as its text: a plain column, no database enum type to migrate when one is added.
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column())
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # Fencing: the relay pass that holds the message (`next_attempt_at` is then its claim's expiry, renewed while
    # it works); only that pass may mark it. NULL when nobody holds it.
    claim_token: str | None = Field(default=None, max_length=32)
    # Where the owner's reply goes: the campaign's ARS contact (the sender may be an address nobody reads).
    reply_to: str | None = Field(default=None, max_length=254)
    # How many times a relay began handing the message over; `handovers > attempts` on a delivered message means
    # a relay stopped between sending and marking: perhaps delivered more than once (`esms check` counts them).
    handovers: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
