"""The relay: delivers due outbox messages, at least once, and records what became of each.

A pass claims due messages under a token of its own (a random claim id written on each row, with
`next_attempt_at` pushed forward by a claim period; row locks skipped by other relays on PostgreSQL), opens one
connection, sends them one by one and marks each right after it is sent. The claim is fenced and kept alive:

- a heartbeat renews the claims of the messages the pass still holds, and just before a message is handed over
  its claim is renewed again and checked: a message whose claim another relay has taken is skipped;
- a message is marked (sent, retried, dead) only by the holder of its claim (`WHERE claim_token = :token`);
- `keep_going` (the daemon's lease) is asked between messages and by the heartbeat: once it says no, the pass
  stops and gives back what it still holds.

So a slow server or two overlapping relays deliver each message once. A relay killed between sending and
marking leaves the message claimed: it becomes due again when the claim runs out and is sent a second time, with
the same Message-ID so that mail clients can fold the duplicate. That window — one message per killed relay — is
the price of never losing one; `handovers` (counted before each handover) exceeding `attempts` (counted when
marked) shows it afterwards (`esms check`).

Faults of the server (no connection, TLS, login refused) pause delivery: the messages wait, no attempt counted,
and the pass reports the fault once (`paused`). Faults of one message (it cannot be built, a 4xx or 5xx about
it or its recipients, an address not stored normalised) are that message's alone: it is retried with backoff,
then dead, and the others go on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from notifications.addresses import is_normalised_address
from notifications.models import OutboxMessage, OutboxStatus
from notifications.settings import MailSettings
from notifications.storage import transaction
from notifications.transport import (
    ConnectionLostError,
    Delivered,
    DeliveryError,
    PermanentDeliveryError,
    ServerFaultError,
    TemporaryDeliveryError,
    Transport,
    make_transport,
)


class Clock(Protocol):
    """The one clock the relay reads (`workflow.clock.SystemClock` or a simulated one)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""


log = logging.getLogger("esms.relay")

#: How long a claim lasts unless renewed: the heartbeat renews it every third of that while the relay works.
CLAIM_PERIOD: Final = timedelta(minutes=5)
#: After a fault of the server (no connection, TLS, login), the held messages are due again this much later.
PAUSE_DELAY: Final = timedelta(minutes=2)
#: Retry backoff: 30 s, doubled each attempt, capped at 1 h, ±20 % jitter (so a day-long outage is survived).
BACKOFF_BASE: Final = timedelta(seconds=30)
BACKOFF_CAP: Final = timedelta(hours=1)
BACKOFF_JITTER: Final = 0.2
#: The longest a pending message can wait after a pass before it is due again, whatever happened in that pass
#: (its claim by a relay that was killed, a pause, or the longest backoff): the horizon a catch-up must look past.
LONGEST_WAIT: Final = max(CLAIM_PERIOD, PAUSE_DELAY, BACKOFF_CAP * (1 + BACKOFF_JITTER))
#: How many due messages one pass claims, oldest first; the rest wait for the next pass.
BATCH_LIMIT: Final = 500
#: The heartbeat asks `keep_going` at least this often (seconds): a daemon's lease lasts a few intervals.
HEARTBEAT_MAX: Final = 1.0


@dataclass
class RelayReport:
    """What one relay pass did; `paused` is the fault of the server that held every message back, if any."""

    sent: int = 0
    partial: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)
    paused: str | None = None
    #: Messages skipped because another relay had taken their claim over (a slow pass; nothing sent twice).
    lost: int = 0
    #: The pass stopped early: `keep_going` said no (the daemon lost its lease); the rest was given back.
    stopped: bool = False

    def as_dict(self) -> dict[str, object]:
        """The report as a JSON-ready dict (`esms tick --json`, `esms outbox send --json`).

        `paused`, `lost` and `stopped` appear only when something happened: a quiet pass keeps the short form.
        """
        document: dict[str, object] = {
            "sent": self.sent,
            "partial": self.partial,
            "retried": self.retried,
            "dead": self.dead,
            "errors": self.errors,
        }
        if self.paused is not None:
            document["paused"] = self.paused
        if self.lost:
            document["lost"] = self.lost
        if self.stopped:
            document["stopped"] = True
        return document

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
    if message.reply_to:
        email["Reply-To"] = message.reply_to
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


def claim_due(
    engine: Engine, now: datetime, limit: int, *, token: str | None = None, claim_period: timedelta = CLAIM_PERIOD
) -> list[OutboxMessage]:
    """Reserve up to `limit` due messages for this relay under `token` and return them, oldest first."""
    token = token or uuid.uuid4().hex
    due = (
        sa.select(col(OutboxMessage.id))
        .where(col(OutboxMessage.status) == OutboxStatus.PENDING, col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    with transaction(engine) as session:
        # One UPDATE first: on SQLite it takes the write lock before anything is read, so two relays queue
        # instead of both reading the same due rows.
        session.execute(
            sa.update(OutboxMessage)
            .execution_options(synchronize_session=False)
            .where(col(OutboxMessage.id).in_(due))
            .values(next_attempt_at=now + claim_period, claim_token=token)
        )
        return list(
            session.exec(
                select(OutboxMessage).where(col(OutboxMessage.claim_token) == token).order_by(col(OutboxMessage.id))
            ).all()
        )


def deliver_due(
    engine: Engine,
    clock: Clock,
    settings: MailSettings,
    *,
    limit: int = BATCH_LIMIT,
    transport: Transport | None = None,
    rng: random.Random | None = None,
    claim_period: timedelta = CLAIM_PERIOD,
    keep_going: Callable[[], bool] | None = None,
) -> RelayReport:
    """Deliver the messages due now over one connection; return what happened.

    `keep_going` is asked between messages and by the heartbeat (the daemon: "do I still hold the lease?").
    """
    report = RelayReport()
    token = uuid.uuid4().hex
    messages = claim_due(engine, clock.now(), limit, token=token, claim_period=claim_period)
    if not messages:
        return report
    pass_ = _Pass(engine, clock, settings, token, [m.id for m in messages if m.id is not None], claim_period)
    heartbeat = _Heartbeat(pass_, keep_going)
    heartbeat.start()
    try:
        asyncio.run(
            _send_all(pass_, messages, transport or make_transport(settings), rng or random.Random(), report, heartbeat)
        )
    finally:
        heartbeat.finish()
        try:
            pass_.give_back(clock.now())  # whatever this pass still holds (stopped early, or an error)
        except Exception as error:  # the claims then run out by themselves; the first error is the one to raise
            log.warning("could not give back the claimed messages: %s", error)
    return report


@dataclass
class _Pass:
    """One relay pass's claim: its token, the messages it claimed, and the fenced writes on them."""

    engine: Engine
    clock: Clock
    settings: MailSettings
    token: str
    ids: list[int]
    claim_period: timedelta

    def _held(self, *ids: int) -> sa.Update:
        chosen = list(ids) if ids else self.ids
        return (
            sa.update(OutboxMessage)
            .execution_options(synchronize_session=False)
            .where(
                col(OutboxMessage.id).in_(chosen),
                col(OutboxMessage.claim_token) == self.token,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
            )
        )

    def _write(self, statement: sa.Update) -> int:
        with transaction(self.engine) as session:
            return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def renew(self) -> int:
        """Push the expiry of every claim this pass still holds; return how many it holds."""
        return self._write(self._held().values(next_attempt_at=self.clock.now() + self.claim_period))

    def take(self, message_id: int) -> bool:
        """Renew this message's claim and count a handover, if this pass still holds it."""
        until = self.clock.now() + self.claim_period
        return (
            self._write(self._held(message_id).values(next_attempt_at=until, handovers=OutboxMessage.handovers + 1))
            == 1
        )

    def mark(self, message_id: int, **values: object) -> bool:
        """Record what became of a message and end its claim, if this pass still holds it."""
        return self._write(self._held(message_id).values(claim_token=None, **values)) == 1

    def pause(self, reason: str, in_flight: int | None) -> int:
        """Give every held message back for after the pause, no attempt counted; return how many."""
        if in_flight is not None:  # refused before it was taken: this handover delivered nothing
            self._write(self._held(in_flight).values(handovers=OutboxMessage.handovers - 1))
        until = self.clock.now() + PAUSE_DELAY
        return self._write(
            self._held().values(next_attempt_at=until, claim_token=None, last_error=f"delivery paused: {reason}"[:2000])
        )

    def give_back(self, at: datetime) -> int:
        """Release what this pass still holds, due at `at`."""
        return self._write(self._held().values(next_attempt_at=at, claim_token=None))


class _Heartbeat(threading.Thread):
    """Renews the pass's claims every third of the claim period and asks `keep_going` every second or so."""

    def __init__(self, pass_: _Pass, keep_going: Callable[[], bool] | None) -> None:
        super().__init__(name="esms-relay-heartbeat", daemon=True)
        self._pass = pass_
        self._keep_going = keep_going
        self._renew_every = pass_.claim_period.total_seconds() / 3
        self._done = threading.Event()
        self.stop_requested = threading.Event()

    def should_stop(self) -> bool:
        """Asked before each message: the heartbeat's verdict, or `keep_going` itself."""
        if self.stop_requested.is_set():
            return True
        if self._keep_going is not None and not self._keep_going():
            self.stop_requested.set()
        return self.stop_requested.is_set()

    def run(self) -> None:
        renewed = time.monotonic()
        while not self._done.wait(min(self._renew_every, HEARTBEAT_MAX)):
            try:
                if self._keep_going is not None and not self._keep_going():
                    self.stop_requested.set()
                    return
                if time.monotonic() - renewed >= self._renew_every:
                    renewed = time.monotonic()
                    self._pass.renew()
            except Exception as error:  # a missed renewal is caught by the check before each handover
                log.warning("relay heartbeat: %s", error)

    def finish(self) -> None:
        """Stop the thread and wait for it."""
        self._done.set()
        self.join()


async def _send_all(
    pass_: _Pass,
    messages: list[OutboxMessage],
    transport: Transport,
    rng: random.Random,
    report: RelayReport,
    heartbeat: _Heartbeat,
) -> None:
    try:
        async with transport:
            for message in messages:
                assert message.id is not None
                if heartbeat.should_stop():
                    report.stopped = True
                    log.warning("relay stopped: the daemon lost its lease; the rest is given back")
                    return
                try:
                    recipients: list[str] = json.loads(message.recipients)
                    unusable = [r for r in recipients if not is_normalised_address(r)]
                    if unusable or not recipients:
                        raise PermanentDeliveryError(f"not an address the relay sends to: {unusable!r}")
                    email = build_email(message, pass_.settings.mail_from, pass_.clock.now())
                except DeliveryError as error:
                    _mark_failed(pass_, message, error, rng, report)
                    continue
                except Exception as error:  # this message cannot be built: its fault alone, the others go on
                    failure = TemporaryDeliveryError(f"cannot build the message: {type(error).__name__}: {error}")
                    _mark_failed(pass_, message, failure, rng, report)
                    continue
                if not pass_.take(message.id):
                    report.lost += 1
                    log.warning("message %s: claim taken over by another relay, not sent by this one", message.id)
                    continue
                try:
                    delivered = await transport.send(email, recipients)
                except ServerFaultError as error:
                    _pause(pass_, str(error), message.id, report)
                    return
                except DeliveryError as error:
                    _mark_failed(pass_, message, error, rng, report)
                    if isinstance(error, ConnectionLostError):
                        return  # the connection is gone: the rest is given back for the next pass, no attempt
                    continue
                except Exception as error:  # the transport broke on this message: give the rest back
                    failure = ConnectionLostError(f"transport failed: {type(error).__name__}: {error}")
                    _mark_failed(pass_, message, failure, rng, report)
                    return
                _mark_sent(pass_, message, delivered, report)
    except DeliveryError as error:  # could not even connect or log in: a fault of the server, not the messages
        _pause(pass_, str(error), None, report)


def _pause(pass_: _Pass, reason: str, in_flight: int | None, report: RelayReport) -> None:
    held = pass_.pause(reason, in_flight)
    report.paused = reason
    report.errors.append(f"delivery paused, {held} message(s) wait, no attempt counted: {reason}")
    log.warning("delivery paused (%d message(s) wait): %s", held, reason)


def _mark_sent(pass_: _Pass, message: OutboxMessage, delivered: Delivered, report: RelayReport) -> None:
    assert message.id is not None
    partial = bool(delivered.refused)
    error = "refused: " + "; ".join(f"{r}: {a}" for r, a in sorted(delivered.refused.items())) if partial else None
    marked = pass_.mark(
        message.id,
        status=OutboxStatus.PARTIAL if partial else OutboxStatus.SENT,
        attempts=OutboxMessage.attempts + 1,
        sent_at=pass_.clock.now(),
        last_error=error[:2000] if error else None,
    )
    if not marked:
        # Handed over after the claim ran out and was taken: the other holder may send it too (counted by
        # `handovers`); its mark is the one that stands.
        report.lost += 1
        log.warning("message %s sent, but its claim was taken over meanwhile: it may arrive twice", message.id)
        return
    if partial:
        report.partial += 1
        log.warning("message %s delivered, but %s", message.id, error)
    else:
        report.sent += 1


def _mark_failed(
    pass_: _Pass, message: OutboxMessage, error: DeliveryError, rng: random.Random, report: RelayReport
) -> None:
    assert message.id is not None
    attempts = message.attempts + 1
    dead = isinstance(error, PermanentDeliveryError) or attempts >= pass_.settings.max_attempts
    values: dict[str, object] = {"attempts": attempts, "last_error": str(error)[:2000]}
    if dead:
        values["status"] = OutboxStatus.DEAD
    else:
        values["next_attempt_at"] = pass_.clock.now() + backoff(attempts, rng)
    if not pass_.mark(message.id, **values):
        report.lost += 1
        log.warning("message %s: claim taken over by another relay; its failure (%s) not recorded", message.id, error)
        return
    if dead:
        report.dead += 1
    else:
        report.retried += 1
    report.errors.append(f"message {message.id}: {error}")
    log.warning("message %s %s: %s", message.id, "dead" if dead else f"retry #{attempts}", error)
