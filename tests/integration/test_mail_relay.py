"""The mail relay against a real SMTP server (aiosmtpd on loopback), with messages queued by the engine itself.

What arrives (French subject, text and HTML parts, amounts, the `.ics` of a reminder, a Message-ID), one SMTP
session per batch, a recipient refused among several, every recipient refused, a temporary 451, the server down
for hours then back, a relay killed between sending and marking (the documented one-duplicate window), the SMTP
password never printed, and the `.eml` files written when no SMTP host is set.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from notifications.relay import CLAIM_PERIOD, RelayReport, deliver_due
from notifications.settings import MailSettings
from tests.conftest import Cli, write_project
from workflow.campaigns import load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine, migrate, transaction
from workflow.engine import Workflow
from workflow.messages import queue_digest
from workflow.models import OutboxMessage
from workflow.project_file import load_project_file
from workflow.settings import load_settings
from workflow.sweep import sweep

pytestmark = pytest.mark.slow  # a real SMTP server, and relays killed in subprocesses

PARIS = ZoneInfo("Europe/Paris")
MAIL_FROM = "ESMS numérique <no-reply@ars.example>"
OWNER = "dui@tilleuls.example"
REMINDED_OWNER = "dui@avesnois.example"
ADMINS = ["a@ars.example", "b@ars.example"]
TRANCHE_1 = "232\u202f000,00\u00a0€"
SECRET = "s3cr3t-P4ss"
REFUSED_USER = "550 5.1.1 unknown user"
GREYLISTED = "451 4.7.1 greylisted, try again later"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


# --- the SMTP server ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One envelope the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class RecordingHandler:
    """Records every accepted envelope and every SMTP session (EHLO/HELO); can refuse recipients or answer 451."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.sessions = 0
        self.refuse: set[str] = set()
        self.temporary: str | None = None  # "mail", "rcpt" or "data": answer 451 there
        # Fault injection from the server's side: with `hold`, the first message is kept and its DATA left
        # unanswered until `released` is set; `holding` tells the test that the server has the message.
        self.hold = False
        self.holding = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> Any:  # noqa: N802
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:  # noqa: N802
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.temporary == "mail":
            return GREYLISTED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return REFUSED_USER
        if self.temporary == "rcpt":
            return GREYLISTED
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.temporary == "data":
            return GREYLISTED
        content = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), content, session.peer))
            hold = self.hold and not self.holding.is_set()
            if hold:
                self.holding.set()
        if hold:
            # The message is in the server's hands but the relay has no answer yet: the relay has sent it and
            # cannot have marked it. Wait in a thread, so that the server's event loop keeps serving.
            await asyncio.to_thread(self.released.wait, 60)
        return "250 Message accepted for delivery"

    def by_message_id(self) -> Counter[str]:
        return Counter(r.message_id for r in self.received)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that can be stopped (connection refused) and started again on its port."""

    def __init__(self, **smtp_options: Any) -> None:
        self.port = free_port()
        self.handler = RecordingHandler()
        self.smtp_options = smtp_options
        self.passwords: list[bytes] = []  # what a client sent to log in, when AUTH is offered
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.smtp_options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refusing_login(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        self.passwords.append(bytes(getattr(auth_data, "password", b"")))
        return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


# --- the engine on a simulated clock -----------------------------------------------------------------------------


class World:
    """A workflow on a fresh database with a simulated clock, and the relay's settings."""

    def __init__(self, url: str, config_dir: Path, tmp_path: Path) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.clock = SimulatedClock(paris(2021, 3, 1, 9))
        self.workflow = Workflow(self.engine, load_campaigns(config_dir), self.clock)
        self.tmp_path = tmp_path
        self.rng = random.Random(0)

    def add(self, name: str = "Grappe du Hainaut", owner_email: str = OWNER) -> int:
        spec = load_project_file(write_project(self.tmp_path, name=name, owner_email=owner_email))
        return self.workflow.register(spec, "test")

    def walk(self) -> int:
        """Queue five messages through the engine: four to the Hainaut owner and one reminder with an .ics."""
        hainaut = self.add()
        self.clock.set(paris(2021, 3, 10, 10))
        self.workflow.fire(hainaut, "submit", {}, "test")  # submission_received
        self.add("Grappe de l'Avesnois", REMINDED_OWNER)
        self.clock.set(paris(2021, 3, 24, 9))
        report = sweep(self.workflow)  # the 7-day reminder of the 31/03 application deadline
        assert [r.days_before for r in report.reminders] == [7]
        self.clock.set(paris(2021, 4, 2, 10))
        self.workflow.fire(hainaut, "select", {"group": "A"}, "test")  # selection_result
        self.clock.set(paris(2021, 5, 3, 10))
        self.workflow.force(hainaut, "agreement", "mise en place du test", "test")  # forced
        self.clock.set(paris(2021, 6, 1, 10))
        self.workflow.fire(hainaut, "sign_agreement", {}, "test")  # tranche_released (tranche 1)
        return hainaut

    def digest(self, day: date) -> None:
        with transaction(self.engine) as session:
            assert queue_digest(session, self.workflow.campaigns, ADMINS, day, self.clock.now(), PARIS)

    def mail(self, port: int | None, *, max_attempts: int = 48) -> MailSettings:
        return MailSettings(
            smtp_host="127.0.0.1" if port is not None else None,
            smtp_port=port or 25,
            smtp_tls="none",
            smtp_username=None,
            smtp_password=None,
            smtp_timeout=5,
            mail_from=MAIL_FROM,
            mail_dir=self.tmp_path / "mail",
            admin_emails=tuple(ADMINS),
            max_attempts=max_attempts,
        )

    def deliver(self, port: int | None, **options: Any) -> RelayReport:
        return deliver_due(self.engine, self.clock, self.mail(port, **options), rng=self.rng)

    def rows(self) -> list[OutboxMessage]:
        return outbox_rows(self.engine)

    def row(self, template: str) -> OutboxMessage:
        (found,) = [r for r in self.rows() if r.template == template]
        return found


def outbox_rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


@pytest.fixture
def world(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[World]:
    created = World(database_url, config_dir, tmp_path)
    yield created
    created.engine.dispose()


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None, "both a text/plain and a text/html part"
    return str(plain.get_content()), str(html.get_content())


# --- 1. what arrives ---------------------------------------------------------------------------------------------


def test_what_arrives_is_the_french_message_with_both_parts_and_the_reminder_calendar(
    world: World, smtp: SmtpServer
) -> None:
    world.walk()
    world.clock.set(paris(2021, 6, 1, 12))
    queued = world.rows()
    assert [r.template for r in queued] == [
        "submission_received",
        "reminder",
        "selection_result",
        "forced",
        "tranche_released",
    ]

    report = world.deliver(smtp.port)

    assert (report.sent, report.partial, report.retried, report.dead, report.errors) == (5, 0, 0, 0, [])
    received = {str(r.message["X-ESMS-Outbox-Id"]): r for r in smtp.handler.received}
    assert sorted(received, key=int) == [str(r.id) for r in queued]
    for row in queued:
        envelope = received[str(row.id)]
        message = envelope.message
        assert envelope.mail_from == "no-reply@ars.example"
        assert envelope.rcpt_tos == json.loads(row.recipients)
        assert message["From"] == MAIL_FROM
        assert message["To"] == envelope.rcpt_tos[0]
        assert message["Subject"] == row.subject
        assert message["Subject"].startswith("ESMS numérique — ")
        assert message["Subject"].endswith((": Grappe du Hainaut", ": Grappe de l'Avesnois"))
        assert message["Message-ID"].startswith(f"<esms.{row.id}.") and message["Message-ID"].endswith("@ars.example>")
        text, html = parts(message)
        assert text.strip() and "<html" in html.lower()
    assert {tuple(r.rcpt_tos) for r in smtp.handler.received} == {(OWNER,), (REMINDED_OWNER,)}
    assert len({r.message_id for r in smtp.handler.received}) == 5

    tranche = received[str(world.row("tranche_released").id)].message
    assert "Grappe du Hainaut" in tranche["Subject"] and "tranche 1 débloquée" in tranche["Subject"]
    text, html = parts(tranche)
    assert TRANCHE_1 in text
    assert TRANCHE_1 in html
    assert "Grappe du Hainaut" in text and "Grappe du Hainaut" in html
    assert list(tranche.iter_attachments()) == []

    reminder = received[str(world.row("reminder").id)].message
    assert reminder["Subject"] == "ESMS numérique — rappel d'échéance du 31 mars 2021 : Grappe de l'Avesnois"
    (ics,) = list(reminder.iter_attachments())
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_filename() == "application_deadline.ics"
    calendar = ics.get_payload(decode=True).decode("utf-8")
    assert "DTSTART;VALUE=DATE:20210331\r\n" in calendar
    assert calendar.startswith("BEGIN:VCALENDAR\r\n") and calendar.endswith("END:VCALENDAR\r\n")
    assert "ESMS numérique" in calendar.replace("\r\n ", "")
    text, html = parts(reminder)
    assert "31 mars 2021" in text and "31 mars 2021" in html

    delivered_at = world.clock.now()
    for row in world.rows():
        assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, delivered_at, None)

    world.clock.advance(timedelta(days=3))
    again = world.deliver(smtp.port)
    assert again.attempted == 0
    assert len(smtp.handler.received) == 5


# --- 2. one connection per batch ---------------------------------------------------------------------------------


def test_one_smtp_session_carries_the_whole_batch(world: World, smtp: SmtpServer) -> None:
    world.walk()
    world.digest(date(2021, 6, 2))
    world.clock.set(paris(2021, 6, 2, 8))
    assert smtp.handler.sessions == 0

    report = world.deliver(smtp.port)

    assert report.sent == 6
    assert len(smtp.handler.received) == 6
    assert smtp.handler.sessions == 1
    assert len({r.peer for r in smtp.handler.received}) == 1, "every message over the same TCP connection"

    world.clock.advance(timedelta(hours=1))
    assert world.deliver(smtp.port).attempted == 0
    assert smtp.handler.sessions == 1, "nothing due: no connection opened at all"


# --- 3. refused recipients ---------------------------------------------------------------------------------------


def test_a_refused_admin_does_not_stop_the_other_and_the_digest_is_partial(world: World, smtp: SmtpServer) -> None:
    world.walk()
    world.digest(date(2021, 6, 2))
    world.clock.set(paris(2021, 6, 2, 8))
    smtp.handler.refuse = {"b@ars.example"}

    report = world.deliver(smtp.port)

    assert (report.sent, report.partial, report.retried, report.dead) == (5, 1, 0, 0)
    (digest,) = [r for r in smtp.handler.received if r.rcpt_tos != [OWNER] and r.rcpt_tos != [REMINDED_OWNER]]
    assert digest.rcpt_tos == ["a@ars.example"]
    assert "point du 2 juin 2021" in digest.message["Subject"]
    assert TRANCHE_1 in parts(digest.message)[0], "the digest lists yesterday's tranche"
    row = world.row("digest")
    assert row.status == "partial"
    assert row.attempts == 1
    assert row.sent_at == world.clock.now()
    assert row.last_error is not None
    assert "b@ars.example" in row.last_error and "550" in row.last_error
    assert "a@ars.example" not in row.last_error
    assert {r.status for r in world.rows() if r.template != "digest"} == {"sent"}

    world.clock.advance(timedelta(days=1))
    assert world.deliver(smtp.port).attempted == 0, "partial is final: the accepted admin gets it once"
    assert len(smtp.handler.received) == 6


def test_every_recipient_refused_for_good_is_dead_and_never_retried(world: World, smtp: SmtpServer) -> None:
    world.add()
    world.clock.set(paris(2021, 3, 24, 8))
    world.digest(date(2021, 3, 24))
    smtp.handler.refuse = set(ADMINS)

    report = world.deliver(smtp.port)

    assert (report.sent, report.partial, report.retried, report.dead) == (0, 0, 0, 1)
    assert smtp.handler.received == []
    row = world.row("digest")
    assert (row.status, row.attempts, row.sent_at) == ("dead", 1, None)
    assert row.last_error is not None
    assert "a@ars.example" in row.last_error and "b@ars.example" in row.last_error and "550" in row.last_error

    smtp.handler.refuse = set()
    world.clock.advance(timedelta(days=2))
    assert world.deliver(smtp.port).attempted == 0
    assert smtp.handler.received == []
    assert (world.row("digest").status, world.row("digest").attempts) == ("dead", 1)


# --- 4. temporary failure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_a_451_is_retried_after_the_backoff_and_then_delivered_once(world: World, smtp: SmtpServer, stage: str) -> None:
    project = world.add()
    world.clock.set(paris(2021, 3, 10, 10))
    world.workflow.fire(project, "submit", {}, "test")
    world.clock.set(paris(2021, 3, 10, 10, 5))
    smtp.handler.temporary = stage
    failed_at = world.clock.now()

    report = world.deliver(smtp.port)

    assert (report.sent, report.retried, report.dead) == (0, 1, 0)
    assert smtp.handler.received == []
    (row,) = world.rows()
    assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None)
    assert row.last_error is not None and "451" in row.last_error
    # 30 s ± 20 % after the failure: later than before, far sooner than the 5-minute claim.
    assert failed_at + timedelta(seconds=24) <= row.next_attempt_at <= failed_at + timedelta(seconds=36)

    assert world.deliver(smtp.port).attempted == 0, "not due again before the backoff runs out"
    smtp.handler.temporary = None
    world.clock.advance(timedelta(seconds=37))

    again = world.deliver(smtp.port)

    assert again.sent == 1
    assert len(smtp.handler.received) == 1
    assert smtp.handler.received[0].rcpt_tos == [OWNER]
    (row,) = world.rows()
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 2, world.clock.now(), None)
    world.clock.advance(timedelta(hours=2))
    assert world.deliver(smtp.port).attempted == 0
    assert len(smtp.handler.received) == 1


# --- 5. server down, then back -----------------------------------------------------------------------------------


def test_server_down_for_hours_then_back_loses_nothing_and_sends_each_message_once(
    world: World, smtp: SmtpServer
) -> None:
    world.walk()
    world.digest(date(2021, 6, 2))
    world.clock.set(paris(2021, 6, 2, 8))
    count = len(world.rows())
    smtp.stop()

    report = world.deliver(smtp.port)

    # A server that cannot be reached is the server's fault, not the messages': delivery pauses, nothing is
    # counted against them, and the pass says so once.
    assert (report.sent, report.retried, report.dead) == (0, 0, 0)
    assert report.paused is not None and f"127.0.0.1:{smtp.port}" in report.paused
    for row in world.rows():
        assert (row.status, row.attempts, row.sent_at) == ("pending", 0, None)
        assert row.last_error is not None and "delivery paused" in row.last_error
        assert f"127.0.0.1:{smtp.port}" in row.last_error
        assert row.next_attempt_at > world.clock.now()

    for _ in range(16):  # eight hours down, a pass every 30 minutes
        world.clock.advance(timedelta(minutes=30))
        step = world.deliver(smtp.port)
        assert (step.sent, step.partial, step.dead) == (0, 0, 0) and step.paused is not None
        assert {r.status for r in world.rows()} == {"pending"}
    assert {r.attempts for r in world.rows()} == {0}, "eight hours of outage consumed no attempt"
    assert smtp.handler.received == []

    smtp.start()
    world.clock.advance(timedelta(minutes=5))  # beyond the pause: every message is due

    back = world.deliver(smtp.port)

    assert (back.sent, back.retried, back.dead) == (count, 0, 0) and back.paused is None
    per_message_id = smtp.handler.by_message_id()
    assert len(smtp.handler.received) == count
    assert set(per_message_id.values()) == {1}
    for row in world.rows():
        assert (row.status, row.last_error, row.sent_at) == ("sent", None, world.clock.now())
        assert row.attempts == 1
    world.clock.advance(timedelta(days=1))
    assert world.deliver(smtp.port).attempted == 0
    assert len(smtp.handler.received) == count


def test_with_the_default_settings_a_day_long_outage_is_survived(
    world: World, smtp: SmtpServer, config_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings(
        {
            "HOME": str(tmp_path),
            "ESMS_CONFIG_DIR": str(config_dir),
            "ESMS_SMTP_HOST": "127.0.0.1",
            "ESMS_SMTP_PORT": str(smtp.port),
            "ESMS_SMTP_TIMEOUT": "5",
            "ESMS_MAIL_FROM": MAIL_FROM,
        }
    ).mail
    world.walk()
    world.clock.set(paris(2021, 6, 2, 8))
    count = len(world.rows())
    smtp.stop()
    for _ in range(48):  # 24 hours down, a pass every 30 minutes
        deliver_due(world.engine, world.clock, settings, rng=world.rng)
        world.clock.advance(timedelta(minutes=30))
    smtp.start()
    world.clock.advance(timedelta(minutes=75))

    deliver_due(world.engine, world.clock, settings, rng=world.rng)

    assert [r.status for r in world.rows()] == ["sent"] * count
    assert len(smtp.handler.received) == count


def test_an_address_the_server_cannot_take_neither_passes_for_a_lost_connection_nor_holds_back_the_batch(
    world: World,
) -> None:
    server = SmtpServer(enable_SMTPUTF8=False)
    server.start()
    try:
        accented = world.add("Grappe de l'Escaut", "élise@escaut.example")  # accepted by the project file
        plain = world.add()
        world.clock.set(paris(2021, 3, 10, 10))
        world.workflow.fire(accented, "submit", {}, "test")
        world.clock.set(paris(2021, 3, 10, 10, 1))
        world.workflow.fire(plain, "submit", {}, "test")
        world.clock.set(paris(2021, 3, 10, 10, 5))

        report = world.deliver(server.port)
    finally:
        server.stop()

    assert [r.rcpt_tos for r in server.handler.received] == [[OWNER]], "the next message goes on the same connection"
    assert report.sent == 1
    (failed,) = [r for r in world.rows() if r.project_id == accented]
    assert failed.last_error is not None and "connection lost" not in failed.last_error


# --- 6. a relay killed between sending and marking ---------------------------------------------------------------


def queue_through_cli(cli: Cli, tmp_path: Path) -> str:
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-03-01T10:00:00+01:00").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-10T10:00:00+01:00")
    cli.ok("fire", project, "select", "group=A", now="2021-04-02T10:00:00+02:00")
    cli.ok("force", project, "agreement", "--reason", "mise en place du test", now="2021-05-03T10:00:00+02:00")
    cli.ok("fire", project, "sign_agreement", now="2021-06-01T10:00:00+02:00")
    return project


def smtp_env(cli: Cli, port: int, **extra: str) -> None:
    cli.env.update(
        {
            "ESMS_SMTP_HOST": "127.0.0.1",
            "ESMS_SMTP_PORT": str(port),
            "ESMS_SMTP_TIMEOUT": "5",
            "ESMS_MAIL_FROM": MAIL_FROM,
            **extra,
        }
    )


def test_a_relay_killed_after_sending_resends_that_message_once_with_the_same_message_id(
    cli: Cli, tmp_path: Path, smtp: SmtpServer
) -> None:
    queue_through_cli(cli, tmp_path)
    smtp_env(cli, smtp.port)
    smtp.handler.hold = True
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        count = len(outbox_rows(engine))
        assert count == 4
        killed_at = datetime.fromisoformat("2021-06-01T12:00:00+02:00")

        relay = subprocess.Popen(
            [sys.executable, "-m", "workflow.cli.main", "--now", killed_at.isoformat(), "outbox", "send"],
            env={**os.environ, **cli.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert smtp.handler.holding.wait(60), "the relay never handed a message over"
            relay.send_signal(signal.SIGKILL)  # the server has the first message; the relay has marked nothing
            _, stderr = relay.communicate(timeout=30)
        finally:
            if relay.poll() is None:
                relay.kill()
                relay.wait(30)
            smtp.handler.released.set()

        assert relay.returncode == -signal.SIGKILL, stderr.decode(errors="replace")
        assert len(smtp.handler.received) == 1
        first = smtp.handler.received[0]
        first_id = int(str(first.message["X-ESMS-Outbox-Id"]))
        rows = outbox_rows(engine)
        assert rows[0].id == first_id, "the oldest due message goes first"
        for row in rows:  # the whole batch stays claimed: nothing marked, nothing lost
            assert (row.status, row.attempts, row.sent_at) == ("pending", 0, None)
            assert row.next_attempt_at == killed_at + CLAIM_PERIOD

        early = cli.ok("outbox", "send", "--json", now="2021-06-01T12:04:59+02:00")
        assert early.json()["sent"] == 0, "still claimed by the dead relay"
        resent = cli.subprocess("outbox", "send", "--json", now="2021-06-01T12:05:01+02:00")

        assert resent.code == 0, resent.err
        assert resent.json() == {"sent": count, "partial": 0, "retried": 0, "dead": 0, "errors": []}
        per_message_id = smtp.handler.by_message_id()
        assert len(smtp.handler.received) == count + 1
        assert per_message_id[first.message_id] == 2, "the documented duplicate, with the same Message-ID"
        assert sorted(per_message_id.values()) == [1] * (count - 1) + [2]
        duplicate = [r for r in smtp.handler.received if r.message_id == first.message_id][1]
        assert duplicate.message["Subject"] == first.message["Subject"]
        assert {r.status for r in outbox_rows(engine)} == {"sent"}
    finally:
        engine.dispose()


# --- 7. the password is never printed ----------------------------------------------------------------------------


@pytest.mark.parametrize("server_kind", ["without_auth", "refusing_login", "down"])
def test_the_smtp_password_is_never_printed(cli: Cli, tmp_path: Path, server_kind: str) -> None:
    if server_kind == "refusing_login":
        server = SmtpServer(auth_require_tls=False)
        server.smtp_options["authenticator"] = server.refusing_login
    else:
        server = SmtpServer()
    if server_kind != "down":
        server.start()
    try:
        queue_through_cli(cli, tmp_path)
        smtp_env(cli, server.port, ESMS_SMTP_USERNAME="relay@ars.example", ESMS_SMTP_PASSWORD=SECRET)

        plain = cli.subprocess("outbox", "send", now="2021-06-01T12:00:00+02:00")
        listed = cli("outbox", "list", "--json")
        shown = cli("outbox", "send", "--json", now="2021-06-03T12:00:00+02:00")
    finally:
        server.stop()

    for result in (plain, listed, shown):
        assert result.code == 0, result.err
        assert SECRET not in result.out
        assert SECRET not in result.err
    # A refused login, a server down or one without AUTH is the server's fault: delivery pauses, nothing is lost.
    assert "0 envoyé, 0 partiel, 0 à réessayer, 0 abandonné" in plain.out
    assert "delivery paused" in plain.out, "the relay really tried, and said why nothing left"
    assert server.handler.received == []
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        rows = outbox_rows(engine)
    finally:
        engine.dispose()
    assert rows and all(r.last_error and SECRET not in r.last_error for r in rows)
    assert {r.status for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}
    if server_kind == "refusing_login":
        assert server.passwords and all(p == SECRET.encode() for p in server.passwords), "the login was tried"
        assert all("535" in (r.last_error or "") for r in rows)
    elif server_kind == "down":
        assert all(f"127.0.0.1:{server.port}" in (r.last_error or "") for r in rows)


# --- without an SMTP host: .eml files ----------------------------------------------------------------------------


def test_without_an_smtp_host_each_message_is_an_eml_file_named_by_its_outbox_id(world: World) -> None:
    world.walk()
    world.clock.set(paris(2021, 6, 1, 12))
    folder = world.tmp_path / "mail"

    report = world.deliver(None)

    rows = world.rows()
    assert report.sent == len(rows) == 5
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{r.id}.eml" for r in rows)
    for row in rows:
        message = email.message_from_bytes((folder / f"{row.id}.eml").read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        assert message["Subject"] == row.subject
        assert message["To"] == ", ".join(json.loads(row.recipients))
        assert message["From"] == MAIL_FROM
        assert message["X-ESMS-Outbox-Id"] == str(row.id)
        text, html = parts(message)
        assert text.strip() and "<html" in html.lower()
        assert (row.status, row.attempts) == ("sent", 1)
    tranche = email.message_from_bytes(
        (folder / f"{world.row('tranche_released').id}.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(tranche, EmailMessage)
    assert all(TRANCHE_1 in part for part in parts(tranche))
    reminder = email.message_from_bytes(
        (folder / f"{world.row('reminder').id}.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(reminder, EmailMessage)
    (ics,) = list(reminder.iter_attachments())
    assert ics.get_filename() == "application_deadline.ics"
    assert b"DTSTART;VALUE=DATE:20210331" in ics.get_payload(decode=True)
