"""The relay: delivers due outbox messages, at least once, and records what became of each.

A pass claims due messages (pushing their `next_attempt_at` forward by a claim period, with row locks skipped by
other relays on PostgreSQL), opens one connection, sends them one by one and marks each right after it is
sent. A relay killed between sending and marking leaves the message claimed: it becomes due again when the claim
runs out and is sent a second time, with the same Message-ID so that mail clients can fold the duplicate. That
window — one message per killed relay — is the price of never losing one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from notifications.models import OutboxMessage, OutboxStatus
from notifications.settings import MailSettings
from notifications.storage import transaction
from notifications.transport import (
    ConnectionLostError,
    Delivered,
    DeliveryError,
    PermanentDeliveryError,
    Transport,
    make_transport,
)


class Clock(Protocol):
    """The one clock the relay reads (`workflow.clock.SystemClock` or a simulated one)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""


log = logging.getLogger("esms.relay")

#: How long a claimed message stays reserved to the relay that claimed it.
CLAIM_PERIOD: Final = timedelta(minutes=5)
#: Retry backoff: 30 s, doubled each attempt, capped at 1 h, ±20 % jitter (so a day-long outage is survived).
BACKOFF_BASE: Final = timedelta(seconds=30)
BACKOFF_CAP: Final = timedelta(hours=1)
BACKOFF_JITTER: Final = 0.2
#: The longest a pending message can wait after a pass before it is due again, whatever happened in that pass
#: (its claim by a relay that was killed, or the longest backoff): the horizon a catch-up must look past.
LONGEST_WAIT: Final = max(CLAIM_PERIOD, BACKOFF_CAP * (1 + BACKOFF_JITTER))
#: How many due messages one pass claims, oldest first; the rest wait for the next pass.
BATCH_LIMIT: Final = 500


@dataclass
class RelayReport:
    """What one relay pass did."""

    sent: int = 0
    partial: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The report as a JSON-ready dict (`esms tick --json`, `esms outbox send --json`)."""
        return {
            "sent": self.sent,
            "partial": self.partial,
            "retried": self.retried,
            "dead": self.dead,
            "errors": self.errors,
        }

    @property
    def attempted(self) -> int:
        """How many messages the pass tried to send."""
        return self.sent + self.partial + self.retried + self.dead


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """The wait before attempt number `attempts + 1`."""
    delay = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    return timedelta(seconds=delay.total_seconds() * rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER))


def build_email(message: OutboxMessage, mail_from: str, now: datetime) -> EmailMessage:
    """Build the MIME message: text and HTML alternatives, attachments, a Message-ID stable across resends."""
    email = EmailMessage()
    recipients: list[str] = json.loads(message.recipients)
    domain = mail_from.rsplit("@", 1)[-1].rstrip(">").strip() or "esms-numerique.invalid"
    digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:20]
    email["From"] = mail_from
    email["To"] = ", ".join(recipients)
    email["Subject"] = message.subject
    email["Date"] = format_datetime(now)
    email["Message-ID"] = f"<esms.{message.id}.{digest}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"
    email["X-ESMS-Outbox-Id"] = str(message.id)
    email["X-ESMS-Template"] = message.template
    email.set_content(message.body_text)
    email.add_alternative(message.body_html, subtype="html")
    for attachment in json.loads(message.attachments):
        maintype, _, subtype = attachment["content_type"].partition("/")
        email.add_attachment(
            attachment["content"].encode("utf-8"),
            maintype=maintype,
            subtype=subtype,
            filename=attachment["filename"],
            params={"charset": "utf-8"},
        )
    return email


def claim_due(engine: Engine, now: datetime, limit: int) -> list[OutboxMessage]:
    """Reserve up to `limit` due messages for this relay and return them."""
    with transaction(engine) as session:
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING, col(OutboxMessage.next_attempt_at) <= now)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        messages = list(session.exec(query).all())
        if messages:
            session.execute(
                sa.update(OutboxMessage)
                .execution_options(synchronize_session=False)
                .where(col(OutboxMessage.id).in_([m.id for m in messages]))
                .values(next_attempt_at=now + CLAIM_PERIOD)
            )
        return messages


def deliver_due(
    engine: Engine,
    clock: Clock,
    settings: MailSettings,
    *,
    limit: int = BATCH_LIMIT,
    transport: Transport | None = None,
    rng: random.Random | None = None,
) -> RelayReport:
    """Deliver the messages due now over one connection; return what happened."""
    report = RelayReport()
    now = clock.now()
    messages = claim_due(engine, now, limit)
    if not messages:
        return report
    asyncio.run(
        _send_all(
            engine, clock, settings, messages, transport or make_transport(settings), rng or random.Random(), report
        )
    )
    return report


async def _send_all(
    engine: Engine,
    clock: Clock,
    settings: MailSettings,
    messages: list[OutboxMessage],
    transport: Transport,
    rng: random.Random,
    report: RelayReport,
) -> None:
    try:
        async with transport:
            for index, message in enumerate(messages):
                recipients: list[str] = json.loads(message.recipients)
                try:
                    delivered = await transport.send(build_email(message, settings.mail_from, clock.now()), recipients)
                except DeliveryError as error:
                    _mark_failed(engine, clock, settings, message, error, rng, report)
                    if isinstance(error, ConnectionLostError):
                        # The connection is gone: give the rest back for the next pass, attempt not counted.
                        _release(engine, clock, messages[index + 1 :])
                        return
                    continue
                _mark_sent(engine, clock, message, delivered, report)
    except DeliveryError as error:  # could not even connect: every claimed message had an attempt
        for message in messages:
            _mark_failed(engine, clock, settings, message, error, rng, report)


def _mark_sent(engine: Engine, clock: Clock, message: OutboxMessage, delivered: Delivered, report: RelayReport) -> None:
    partial = bool(delivered.refused)
    error = "refused: " + "; ".join(f"{r}: {a}" for r, a in sorted(delivered.refused.items())) if partial else None
    with transaction(engine) as session:
        session.execute(
            sa.update(OutboxMessage)
            .execution_options(synchronize_session=False)
            .where(col(OutboxMessage.id) == message.id)
            .values(
                status=OutboxStatus.PARTIAL if partial else OutboxStatus.SENT,
                attempts=message.attempts + 1,
                sent_at=clock.now(),
                last_error=error[:2000] if error else None,
            )
        )
    if partial:
        report.partial += 1
        log.warning("message %s delivered, but %s", message.id, error)
    else:
        report.sent += 1


def _mark_failed(
    engine: Engine,
    clock: Clock,
    settings: MailSettings,
    message: OutboxMessage,
    error: DeliveryError,
    rng: random.Random,
    report: RelayReport,
) -> None:
    attempts = message.attempts + 1
    dead = isinstance(error, PermanentDeliveryError) or attempts >= settings.max_attempts
    values: dict[str, object] = {"attempts": attempts, "last_error": str(error)[:2000]}
    if dead:
        values["status"] = OutboxStatus.DEAD
        report.dead += 1
    else:
        values["next_attempt_at"] = clock.now() + backoff(attempts, rng)
        report.retried += 1
    report.errors.append(f"message {message.id}: {error}")
    with transaction(engine) as session:
        session.execute(
            sa.update(OutboxMessage)
            .execution_options(synchronize_session=False)
            .where(col(OutboxMessage.id) == message.id)
            .values(**values)
        )
    log.warning("message %s %s: %s", message.id, "dead" if dead else f"retry #{attempts}", error)


def _release(engine: Engine, clock: Clock, messages: list[OutboxMessage]) -> None:
    if not messages:
        return
    with transaction(engine) as session:
        session.execute(
            sa.update(OutboxMessage)
            .execution_options(synchronize_session=False)
            .where(col(OutboxMessage.id).in_([m.id for m in messages]))
            .values(next_attempt_at=clock.now())
        )
