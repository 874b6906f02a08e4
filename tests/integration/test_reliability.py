"""Issue 12, the mail, lease and address reproducers: one bad message, overlapping relays, hostile addresses,
SMTP faults that are not message faults, and a daemon on a read-only database.

Each test is named after what the reproducer showed and asserts the result after the fix.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from notifications.relay import deliver_due
from tests.conftest import Cli, write_project
from tests.integration.test_mail_relay import (
    OWNER,
    SECRET,
    SmtpServer,
    World,
    outbox_rows,
    paris,
    queue_through_cli,
    smtp_env,
)
from workflow.clock import SystemClock
from workflow.db import make_engine
from workflow.lease import ReadOnlyDatabaseError, acquire


@pytest.fixture
def world(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[World]:
    created = World(database_url, config_dir, tmp_path)
    yield created
    created.engine.dispose()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def submitted(world: World, *owners: str) -> list[int]:
    """One submitted project per owner address, each queuing one `submission_received` message."""
    projects = []
    for index, owner in enumerate(owners):
        world.clock.set(paris(2021, 3, 1, 9))
        project = world.add(f"Grappe {index}", owner)
        world.clock.set(paris(2021, 3, 10, 10, index))
        world.workflow.fire(project, "submit", {}, "test")
        projects.append(project)
    world.clock.set(paris(2021, 3, 10, 11))
    return projects


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


# --- 1. one bad message never stops all mail ----------------------------------------------------------------------


@pytest.mark.slow
def test_one_bad_message_never_stops_all_mail(world: World) -> None:
    server = SmtpServer()
    server.start()
    try:
        good, unbuildable, badly_addressed = submitted(world, OWNER, "dui@avesnois.example", "dui@escaut.example")
        with world.engine.begin() as connection:  # rows written behind the engine's back, as an old version could
            connection.execute(
                sa.text("UPDATE outbox_message SET attachments = '[{\"filename\": 1}]' WHERE project_id = :p"),
                {"p": unbuildable},
            )
            connection.execute(
                sa.text("UPDATE outbox_message SET recipients = :r WHERE project_id = :p"),
                {"r": json.dumps(["a@ars.example\nb@ars.example"]), "p": badly_addressed},
            )

        report = world.deliver(server.port, max_attempts=2)

        assert (report.sent, report.retried, report.dead) == (1, 1, 1)
        assert [r.rcpt_tos for r in server.handler.received] == [[OWNER]]
        rows = {r.project_id: r for r in world.rows()}
        assert rows[good].status == "sent"
        assert (rows[unbuildable].status, rows[unbuildable].attempts) == ("pending", 1)
        assert "cannot build the message" in (rows[unbuildable].last_error or "")
        assert (rows[badly_addressed].status, rows[badly_addressed].attempts) == ("dead", 1)

        world.clock.advance(timedelta(minutes=2))
        again = world.deliver(server.port, max_attempts=2)

        assert (again.sent, again.dead) == (0, 1), "retried with backoff, then dead: no loop"
        assert {r.status for r in world.rows()} == {"sent", "dead"}
        world.clock.advance(timedelta(days=1))
        assert world.deliver(server.port, max_attempts=2).attempted == 0
        assert len(server.handler.received) == 1
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ESMS_SMTP_PORT", "70000"),
        ("ESMS_SMTP_PORT", "0"),
        ("ESMS_SMTP_TLS", "ssl"),
        ("ESMS_ADMIN_EMAILS", "a@ars.example\nb@ars.example"),
        ("ESMS_ADMIN_EMAILS", "root(x@evil.com"),
        ("ESMS_MAIL_FROM", "ESMS <no-reply@ars.example>\r\nBcc: victim@evil.com"),
    ],
)
def test_a_bad_mail_setting_is_refused_when_read_in_one_line_naming_it(cli: Cli, variable: str, value: str) -> None:
    cli.env.update({variable: value, "ESMS_SMTP_HOST": "127.0.0.1", "ESMS_SMTP_PASSWORD": SECRET})

    result = cli("outbox", "send")

    assert result.code == 2
    assert one_line(result.err) and variable in result.err
    assert SECRET not in result.err + result.out


def test_an_admin_address_with_a_line_break_in_the_settings_file_is_refused_when_read(cli: Cli, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('admin_emails = """a@ars.example\nb@ars.example"""\nsmtp_password = "' + SECRET + '"\n')
    settings.chmod(0o600)
    cli.env["ESMS_SETTINGS_FILE"] = str(settings)

    result = cli("digest")

    assert result.code == 2
    assert one_line(result.err) and "ESMS_ADMIN_EMAILS" in result.err
    assert SECRET not in result.err + result.out


# --- 2. fencing: overlapping relays, a lost lease -----------------------------------------------------------------


class SlowHandler:
    """Wraps the recording handler: each DATA takes `delay` seconds, like a server that takes 8 s a message."""

    def __init__(self, server: SmtpServer, delay: float) -> None:
        self._recording = server.handler
        self._delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recording, name)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self._delay)
        return str(await self._recording.handle_DATA(server, session, envelope))


@pytest.mark.slow
def test_two_relays_overlapping_against_a_slow_server_send_no_duplicate(world: World) -> None:
    server = SmtpServer()
    recording = server.handler
    server.handler = SlowHandler(server, 0.8)  # type: ignore[assignment]
    server.start()
    owners = [f"dui{n}@grappe.example" for n in range(4)]
    submitted(world, *owners)
    settings = world.mail(server.port)
    clock = SystemClock()  # real time: the claims really run out unless renewed
    claim = timedelta(seconds=0.5)  # shorter than one message takes
    reports = []

    def relay(start_after: float) -> None:
        time.sleep(start_after)
        end = time.monotonic() + 4
        while time.monotonic() < end:  # a relay passing again and again, as `esms outbox send` in a loop
            reports.append(deliver_due(world.engine, clock, settings, claim_period=claim))
            time.sleep(0.1)

    try:
        threads = [threading.Thread(target=relay, args=(delay,)) for delay in (0.0, 0.3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        server.stop()

    per_message_id = recording.by_message_id()
    assert len(per_message_id) == len(owners)
    assert set(per_message_id.values()) == {1}, f"duplicates: {per_message_id}"
    assert sum(r.sent for r in reports) == len(owners)
    rows = world.rows()
    assert {(r.status, r.attempts, r.handovers, r.claim_token) for r in rows} == {("sent", 1, 1, None)}


def test_a_relay_whose_daemon_lost_its_lease_stops_and_gives_the_rest_back(world: World) -> None:
    submitted(world, OWNER, "dui@avesnois.example")

    report = deliver_due(world.engine, world.clock, world.mail(None), keep_going=lambda: False)

    assert report.stopped and report.attempted == 0
    assert not (world.tmp_path / "mail").exists() or not list((world.tmp_path / "mail").iterdir())
    for row in world.rows():
        assert (row.status, row.attempts, row.claim_token, row.next_attempt_at) == (
            "pending",
            0,
            None,
            world.clock.now(),
        ), "given back, due at once for the lease's holder"


def test_a_lease_taken_over_by_another_daemon_is_lost_for_its_former_holder(world: World) -> None:
    start = world.clock.now()
    assert acquire(world.engine, "a", start, timedelta(seconds=6))
    assert not acquire(world.engine, "b", start + timedelta(seconds=1), timedelta(seconds=6))
    assert acquire(world.engine, "b", start + timedelta(seconds=7), timedelta(seconds=6)), "a's lease ran out"
    assert not acquire(world.engine, "a", start + timedelta(seconds=8), timedelta(seconds=6)), "a must stop"


def test_esms_check_counts_a_message_handed_over_twice(cli: Cli, tmp_path: Path) -> None:
    queue_through_cli(cli, tmp_path)
    cli.ok("outbox", "send", now="2021-06-01T12:00:00+02:00")  # no SMTP host: .eml files
    assert cli.ok("check", "--json").json()["possible_duplicates"] == 0
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        with engine.begin() as connection:  # what a relay killed between sending and marking leaves, once resent
            connection.execute(
                sa.text("UPDATE outbox_message SET handovers = 2 WHERE id = (SELECT MIN(id) FROM outbox_message)")
            )
    finally:
        engine.dispose()

    document = cli.ok("check", "--json").json()

    assert document["possible_duplicates"] == 1
    assert document["ok"], "the documented window is counted, not a broken invariant"


# --- 3. the stored address is where mail goes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "root(x@evil.com",  # a comment: RCPT TO:<root>
        "anything:victim@evil.com",  # a group: RCPT TO:<victim@evil.com>
        "Owner <dui@tilleuls.example>",  # a display name
        "dui\u202e@tilleuls.example",  # RIGHT-TO-LEFT OVERRIDE
        "dui\u200b@tilleuls.example",  # ZERO WIDTH SPACE
        "dui@tilleuls.example\u202e",
        '\\"dui\\"@tilleuls.example',  # a quoted local part (escaped for the TOML file)
        "dui@[127.0.0.1]",  # an IP literal
    ],
)
def test_an_address_that_is_not_a_plain_addr_spec_is_refused_in_a_project_file(
    cli: Cli, tmp_path: Path, address: str
) -> None:
    result = cli("project", "add", str(write_project(tmp_path, owner_email=address)))

    assert result.code == 2, result.out
    assert one_line(result.err) and "e-mail" in result.err
    assert cli.ok("project", "list", "--json").json() == []


@pytest.mark.slow
def test_the_stored_address_is_exactly_rcpt_to_and_to(world: World, smtp: SmtpServer) -> None:
    (project,) = submitted(world, "Dui@Tilleuls.EXAMPLE")
    assert world.workflow.engine is world.engine
    (row,) = world.rows()
    assert json.loads(row.recipients) == ["Dui@tilleuls.example"], "normalised once, when read"

    assert world.deliver(smtp.port).sent == 1

    (received,) = smtp.handler.received
    assert received.rcpt_tos == ["Dui@tilleuls.example"]
    assert received.message["To"] == "Dui@tilleuls.example"
    assert received.mail_from == "no-reply@ars.example"
    assert project


# --- 4. SMTP faults are not message faults ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_wrong_smtp_password_pauses_delivery_without_consuming_attempts(cli: Cli, tmp_path: Path) -> None:
    server = SmtpServer(auth_require_tls=False)
    server.smtp_options["authenticator"] = server.refusing_login
    server.start()
    try:
        queue_through_cli(cli, tmp_path)
        smtp_env(cli, server.port, ESMS_SMTP_USERNAME="relay@ars.example", ESMS_SMTP_PASSWORD=SECRET)

        sent = cli.ok("outbox", "send", "--json", now="2021-06-01T12:00:00+02:00").json()
        listed = cli.ok("outbox", "list")
        again = cli.ok("outbox", "send", "--json", now="2021-06-01T13:00:00+02:00").json()
    finally:
        server.stop()

    assert (sent["sent"], sent["retried"], sent["dead"]) == (0, 0, 0)
    assert "535" in sent["paused"]
    assert len(sent["errors"]) == 1, "the fault is reported once, not once per message"
    assert "535" in again["paused"]
    assert server.passwords and server.handler.received == []
    assert "535" in listed.out.splitlines()[0], "outbox list says why nothing leaves, above the list"
    for output in (json.dumps(sent), listed.out, json.dumps(again)):
        assert SECRET not in output
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        rows = outbox_rows(engine)
    finally:
        engine.dispose()
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert all("535" in (r.last_error or "") for r in rows)


@pytest.mark.slow
def test_a_refused_connection_pauses_delivery_and_the_mail_goes_once_the_server_is_back(world: World) -> None:
    server = SmtpServer()
    submitted(world, OWNER, "dui@avesnois.example")

    down = world.deliver(server.port)

    assert down.paused is not None and f"127.0.0.1:{server.port}" in down.paused
    assert {(r.status, r.attempts) for r in world.rows()} == {("pending", 0)}
    server.start()
    try:
        world.clock.advance(timedelta(minutes=3))
        back = world.deliver(server.port)
    finally:
        server.stop()
    assert (back.sent, back.paused) == (2, None)
    assert {(r.status, r.attempts, r.last_error) for r in world.rows()} == {("sent", 1, None)}


# --- 5. the daemon on a read-only database -------------------------------------------------------------------------


def read_only_url(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        if os.geteuid() == 0:
            pytest.skip("root writes to a read-only SQLite file anyway: PostgreSQL shows it")
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in path.parent.glob(path.name + "*"):
            file.chmod(0o444)
        path.parent.chmod(0o555)
        return database_url
    return database_url + "%20-cdefault_transaction_read_only%3Don"


@pytest.mark.slow
def test_the_daemon_on_a_read_only_database_exits_4_saying_so(cli: Cli, database_url: str, tmp_path: Path) -> None:
    cli.ok("project", "list")
    cli.env["ESMS_DATABASE_URL"] = read_only_url(database_url, tmp_path)
    try:
        result = cli.subprocess("daemon", "--interval", "1", timeout=30)
    finally:
        if database_url.startswith("sqlite"):
            Path(database_url.removeprefix("sqlite:///")).parent.chmod(0o755)

    assert result.code == 4, result.err
    assert "read-only" in result.err
    assert "standby" not in result.err
    with pytest.raises(ReadOnlyDatabaseError):
        engine = make_engine(cli.env["ESMS_DATABASE_URL"], create=False)
        try:
            acquire(engine, "probe", paris(2021, 3, 1, 9), timedelta(seconds=3))
        finally:
            engine.dispose()
