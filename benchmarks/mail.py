"""Case 3: the relay delivering M queued messages over one reused SMTP connection vs one connection per message.

The messages are real ones: M projects in `agreement` are swept at their 7-day reminder (2021-06-23 08:00 Paris),
which queues M reminders with their `.ics` attachment. The SMTP server is aiosmtpd on 127.0.0.1, in its own
process (`benchmarks.smtpsink`). Every variant starts from the same M pending messages (reset between runs,
outside the timing) and the server's count is checked after each run.

- reused: `notifications.relay.deliver_due(limit=M)`, the code's default: one claim, one connection, each
  message built, sent and marked sent in its own transaction.
- per message, same code: `deliver_due(limit=1)` called M times: the same building and marking, plus one claim
  transaction and one connection (and event loop) per message. This is the baseline of the goal.
- per message, SMTP only: `aiosmtplib.send()` of the same `build_email()` message, one connection each, no
  database at all. A stricter floor, shown for reference.
- one connection, SMTP only: the same without the database, over one connection: what reuse alone is worth.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiosmtplib
import sqlalchemy as sa
from sqlmodel import Session, col, select

from benchmarks.context import Context
from benchmarks.generate import PARIS, Cohort, populate
from benchmarks.report import Goal, Row, median, seconds, verdict
from notifications.models import OutboxStatus
from notifications.relay import build_email, deliver_due
from notifications.settings import MailSettings
from states import lifecycle
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.models import OutboxMessage
from workflow.settings import load_settings
from workflow.sweep import sweep

GENERATED_AT = datetime(2021, 6, 20, 12, tzinfo=PARIS)
REMINDED_AT = datetime(2021, 6, 23, 8, 0, 1, tzinfo=PARIS)
RELAY_AT = REMINDED_AT + timedelta(seconds=1)
GOAL_SPEEDUP = 3.0


class SmtpSink:
    """The `benchmarks.smtpsink` process."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.smtpsink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())

    def received(self) -> int:
        """How many messages the server accepted so far."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write("count\n")
        self._process.stdin.flush()
        return int(self._process.stdout.readline())

    def close(self) -> None:
        """Stop the server."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def _reset(engine: sa.Engine) -> None:
    """Make every message pending again, as queued (outside the timings)."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(OutboxMessage).values(status=OutboxStatus.PENDING, attempts=0, sent_at=None, last_error=None)
        )
        connection.execute(sa.text("UPDATE outbox_message SET next_attempt_at = created_at"))


def _reused(engine: sa.Engine, settings: MailSettings, messages: int) -> float:
    started = time.perf_counter()
    report = deliver_due(engine, SimulatedClock(RELAY_AT), settings, limit=messages)
    elapsed = time.perf_counter() - started
    if report.sent != messages:
        raise RuntimeError(f"reused connection: sent {report.sent} of {messages}: {report.errors[:3]}")
    return elapsed


def _per_message_relay(engine: sa.Engine, settings: MailSettings, messages: int) -> float:
    clock = SimulatedClock(RELAY_AT)
    sent = 0
    started = time.perf_counter()
    for _ in range(messages):
        sent += deliver_due(engine, clock, settings, limit=1).sent
    elapsed = time.perf_counter() - started
    if sent != messages:
        raise RuntimeError(f"one connection per message: sent {sent} of {messages}")
    return elapsed


def _load(engine: sa.Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def _smtp_only(loaded: list[OutboxMessage], settings: MailSettings, *, reuse: bool) -> float:
    import json

    async def send_all() -> None:
        if reuse:
            client = aiosmtplib.SMTP(
                hostname=settings.smtp_host, port=settings.smtp_port, start_tls=False, timeout=settings.smtp_timeout
            )
            async with client:
                for message in loaded:
                    email = build_email(message, settings.mail_from, RELAY_AT)
                    await client.send_message(email, recipients=json.loads(message.recipients))
            return
        for message in loaded:
            email = build_email(message, settings.mail_from, RELAY_AT)
            await aiosmtplib.send(
                email,
                recipients=json.loads(message.recipients),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                start_tls=False,
                timeout=settings.smtp_timeout,
            )

    started = time.perf_counter()
    asyncio.run(send_all())
    return time.perf_counter() - started


def mail_case(ctx: Context) -> None:
    """Case 3 (SQLite)."""
    messages = 200 if ctx.quick else 500
    repeats = 1 if ctx.quick else 3
    database = ctx.databases.new("sqlite", "mail")
    populate(database.url, ctx.campaigns, [Cohort("hdf-2021", messages, (lifecycle.State.AGREEMENT,))], GENERATED_AT)
    engine = make_engine(database.url)
    queued = sweep(Workflow(engine, ctx.campaigns, SimulatedClock(REMINDED_AT)))
    if len(queued.reminders) != messages:
        raise RuntimeError(f"expected {messages} reminders queued, got {len(queued.reminders)}")
    ctx.log(f"sqlite: {messages} reminders queued; relaying them to aiosmtpd, {repeats} run(s) per variant…")
    sink = SmtpSink()
    settings = load_settings(
        {
            "ESMS_SMTP_HOST": "127.0.0.1",
            "ESMS_SMTP_PORT": str(sink.port),
            "ESMS_SMTP_TLS": "none",
            "ESMS_CONFIG_DIR": str(ctx.config_dir),
            "ESMS_DATA_DIR": str(ctx.workdir / "data"),
            "HOME": str(ctx.workdir),
        }
    ).mail
    loaded = _load(engine)
    timings: dict[str, list[float]] = {"reused": [], "relay1": [], "smtp1": [], "smtp_reused": []}
    try:
        for _ in range(repeats):
            for variant in timings:
                _reset(engine)
                before = sink.received()
                if variant == "reused":
                    elapsed = _reused(engine, settings, messages)
                elif variant == "relay1":
                    elapsed = _per_message_relay(engine, settings, messages)
                else:
                    elapsed = _smtp_only(loaded, settings, reuse=variant == "smtp_reused")
                if sink.received() - before != messages:
                    raise RuntimeError(f"{variant}: the server got {sink.received() - before} of {messages}")
                timings[variant].append(elapsed)
                ctx.log(f"mail {variant}: {seconds(elapsed)}")
    finally:
        sink.close()
        engine.dispose()
        ctx.databases.drop(database)
    reused, relay1 = median(timings["reused"]), median(timings["relay1"])
    smtp1, smtp_reused = median(timings["smtp1"]), median(timings["smtp_reused"])
    speedup = relay1 / reused
    met = speedup >= GOAL_SPEEDUP
    size = f"{messages} msgs"
    case = f"3 relay, median of {repeats}" if repeats > 1 else "3 relay"

    def rate(value: float) -> str:
        return f"{seconds(value)} ({messages / value:,.0f} msg/s)"

    ctx.rows += [
        Row(
            case=case,
            backend="sqlite",
            size=size,
            result=f"reused connection (deliver_due): {rate(reused)}",
            baseline=f"deliver_due(limit=1) × {messages}: {rate(relay1)}",
            ratio=f"{speedup:.2f}× faster",
            goal=f"≥ {GOAL_SPEEDUP:g}× faster",
            verdict=verdict(met),
        ),
        Row(
            case=case,
            backend="—",
            size=size,
            result=f"reused connection (deliver_due): {rate(reused)}",
            baseline=f"aiosmtplib.send() per message, no DB: {rate(smtp1)}",
            ratio=f"{smtp1 / reused:.2f}× faster",
        ),
        Row(
            case=case,
            backend="—",
            size=size,
            result=f"one aiosmtplib connection, no DB: {rate(smtp_reused)}",
            baseline=f"aiosmtplib.send() per message, no DB: {rate(smtp1)}",
            ratio=f"{smtp1 / smtp_reused:.2f}× faster",
        ),
    ]
    ctx.goals.append(
        Goal(
            f"3. relay over a reused connection ≥ {GOAL_SPEEDUP:g}× faster than one connection per message",
            met,
            f"{rate(reused)} vs deliver_due(limit=1): {rate(relay1)}: {speedup:.2f}×; "
            f"vs SMTP-only per-message loop {rate(smtp1)}: {smtp1 / reused:.2f}×",
        )
    )
