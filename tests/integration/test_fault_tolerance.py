"""Fault tolerance with real processes: several daemons on one database, SIGKILLs at random points of sweeps
and relay passes, and a forced transition racing a sweep. `esms check` is the judge."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from notifications.relay import BATCH_LIMIT, LONGEST_WAIT
from states.errors import ConflictError
from tests.conftest import Cli, write_project
from workflow.campaigns import load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.project_file import ProjectSpec, load_project_file

pytestmark = pytest.mark.slow  # real daemons, SIGKILLs and races

PARIS = ZoneInfo("Europe/Paris")
AFTER_APPLICATION_DEADLINE = "2021-04-01T00:00:01+02:00"


def renumbered(spec: ProjectSpec, number: int) -> ProjectSpec:
    """`spec` with FINESS numbers of its own (one ESMS, one funding): 62/59, then `number`, then the position."""
    positions = iter(range(100))
    organisations = tuple(
        replace(
            organisation,
            finess=f"62{number:05d}{o:02d}",
            esms=tuple(replace(esms, finess=f"59{number:05d}{next(positions):02d}") for esms in organisation.esms),
        )
        for o, organisation in enumerate(spec.grappe.organisations)
    )
    return replace(spec, grappe=replace(spec.grappe, organisations=organisations))


def populate(cli: Cli, config_dir: Path, tmp_path: Path, count: int) -> Workflow:
    """`count` projects in `application`, registered on 1 March 2021, each with ESMS of its own."""
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    workflow = Workflow(engine, load_campaigns(config_dir), SimulatedClock(datetime(2021, 3, 1, 10, tzinfo=PARIS)))
    spec = load_project_file(write_project(tmp_path, esms=15, small=2))
    for start in range(0, count, 500):
        workflow.register_many([renumbered(spec, n) for n in range(start, min(start + 500, count))], "test")
    return workflow


def scalar(cli: Cli, query: str) -> int:
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(query)).scalar() or 0)
    finally:
        engine.dispose()


def start_daemon(cli: Cli, log: Path, now: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **cli.env, "ESMS_NOW": now}
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "workflow.cli.main", "daemon", "--interval", "0.5", "--lease-ttl", "2", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_while_progressing(measure: Callable[[], int], target: int, stall: float, what: str) -> None:
    """Wait until `measure()` reaches `target`, for as long as it keeps moving: a loaded machine is slow, not stuck.

    Only a count that stops changing for `stall` seconds fails the test, so the verdict does not depend on how
    fast the machine is, while a daemon that stopped working is still caught.
    """
    last, since = measure(), time.monotonic()
    while last != target:
        time.sleep(0.2)
        value = measure()
        if value != last:
            last, since = value, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"no progress for {stall:g} s waiting for {what} (stuck at {value}, not {target})")


def unsent_breakdown(cli: Cli) -> str:
    """The messages not sent, grouped by what decides when they go: status, attempts and next attempt."""
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT status, template, attempts, next_attempt_at, COUNT(*) FROM outbox_message "
                    "WHERE status <> 'sent' GROUP BY status, template, attempts, next_attempt_at "
                    "ORDER BY next_attempt_at"
                )
            ).all()
    finally:
        engine.dispose()
    return "unsent (status, template, attempts, next attempt, count): " + "; ".join(map(str, rows))


def finish_the_work(cli: Cli, last_pass: datetime) -> None:
    """Passes after `last_pass` until every message is sent, judged by the rules on the simulated clock only.

    How much the killed daemons did depends on the machine's speed; what is left must not decide the outcome. A
    pass queues what the daemons had not (due at its own instant) and sends at most BATCH_LIMIT messages, oldest
    first. So the catch-up runs later than the last pass by the longest wait a rule can impose (a killed relay's
    claim, the longest backoff), never back in time: every message not sent is due then, each pass sends
    BATCH_LIMIT more, and the number of passes needed follows from the count alone.
    """
    catch_up = (last_pass + LONGEST_WAIT).isoformat()
    for _ in range(scalar(cli, "SELECT COUNT(*) FROM outbox_message") // BATCH_LIMIT + 2):
        cli.ok("tick", now=catch_up)
        if scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE status <> 'sent'") == 0:
            break


def assert_each_project_moved_once(cli: Cli, count: int) -> None:
    assert scalar(cli, "SELECT COUNT(*) FROM project WHERE state = 'lapsed'") == count
    assert scalar(cli, "SELECT COUNT(*) FROM audit_entry WHERE event = 'lapse'") == count
    assert scalar(cli, "SELECT COUNT(DISTINCT project_id) FROM audit_entry WHERE event = 'lapse'") == count
    assert scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE template = 'lapsed'") == count
    assert scalar(cli, "SELECT COUNT(DISTINCT project_id) FROM outbox_message WHERE template = 'lapsed'") == count


def test_three_daemons_cross_one_deadline_and_one_is_killed_mid_pass(
    cli: Cli, config_dir: Path, tmp_path: Path, database_url: str
) -> None:
    count = 2000
    populate(cli, config_dir, tmp_path, count)
    shared = ("--shared",) if database_url.startswith("postgresql") else ()
    logs = [tmp_path / f"daemon-{i}.log" for i in range(3)]
    daemons = [start_daemon(cli, log, AFTER_APPLICATION_DEADLINE, *shared) for log in logs]
    try:
        # A bound against hanging, not a speed limit: on a loaded machine the first batch commits late.
        wait_for(lambda: scalar(cli, "SELECT COUNT(*) FROM project WHERE state = 'lapsed'") >= 100, 300, "a pass")
        # Kill the one doing the work (the lease holder; any of them in shared mode) in the middle of its pass.
        holder = scalar(cli, "SELECT 0") if shared else None
        victim = daemons[0]
        if holder is None:
            holder_text = (
                make_engine(cli.env["ESMS_DATABASE_URL"])
                .connect()
                .execute(sa.text("SELECT holder FROM lease"))
                .scalar()
            )
            victim = next(d for d in daemons if f":{d.pid}:" in str(holder_text))
        lapsed_at_kill = scalar(cli, "SELECT COUNT(*) FROM project WHERE state = 'lapsed'")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        assert lapsed_at_kill < count, "the pass was over before the kill: make it longer"
        wait_while_progressing(
            lambda: scalar(cli, "SELECT COUNT(*) FROM project WHERE state = 'lapsed'"),
            count,
            60,
            "the other daemons to finish the sweep",
        )
        wait_while_progressing(
            lambda: scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE status = 'pending'"),
            0,
            60,
            "the relay to deliver everything",
        )
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(30)
    assert [d.returncode for d in daemons if d is not victim] == [0, 0]
    assert_each_project_moved_once(cli, count)
    assert cli("check").code == 0
    delivered = list((Path(cli.env["ESMS_DATA_DIR"]) / "mail").glob("*.eml"))
    assert len(delivered) == scalar(cli, "SELECT COUNT(*) FROM outbox_message")


# Instants that each give the daemon work: reminders (14, 7 and 1 days before), then the lapse.
PHASES = [
    "2021-03-17T09:00:00+01:00",
    "2021-03-24T09:00:00+01:00",
    "2021-03-30T09:00:00+02:00",
    AFTER_APPLICATION_DEADLINE,
]


def test_daemon_killed_at_random_points_twenty_times_leaves_a_consistent_database(
    cli: Cli, config_dir: Path, tmp_path: Path
) -> None:
    count = 600
    populate(cli, config_dir, tmp_path, count)
    rng = random.Random(20210331)
    kills = 0
    log = tmp_path / "daemon.log"
    phase_end = datetime.fromisoformat(PHASES[0])
    for round_number in range(24):
        now = PHASES[min(round_number // 6, len(PHASES) - 1)]
        daemon = start_daemon(cli, log, now, "--lease-ttl", "0.5")
        time.sleep(rng.uniform(0.8, 2.5))  # start-up takes ~0.6 s: the kill lands in a sweep or a relay pass
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        kills += 1
        assert cli("check").code == 0, f"inconsistent after kill {kills}: {cli('check').out[-2000:]}"
        if round_number % 6 == 5:  # end of a phase: a surviving pass finishes it, as the next daemon would
            phase_end = datetime.fromisoformat(now) + timedelta(minutes=10)
            cli.ok("tick", now=phase_end.isoformat())
    finish_the_work(cli, phase_end)
    assert kills >= 20
    assert_each_project_moved_once(cli, count)
    assert scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE template = 'reminder'") == 3 * count
    assert scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE status <> 'sent'") == 0, unsent_breakdown(cli)
    result = cli("check", "--json")
    assert result.code == 0 and result.json()["ok"] is True


def test_when_the_killed_daemons_did_nothing_the_catch_up_still_delivers_everything(
    cli: Cli, config_dir: Path, tmp_path: Path
) -> None:
    # The slowest machine (issue 16): every daemon was killed before it lapsed anything, so the phase-end pass
    # queues all the lapse messages at its own instant and sends only BATCH_LIMIT of them.
    count = BATCH_LIMIT + 100
    populate(cli, config_dir, tmp_path, count)
    phase_end = datetime.fromisoformat(AFTER_APPLICATION_DEADLINE) + timedelta(minutes=10)

    mail = cli.ok("tick", "--json", now=phase_end.isoformat()).json()["mail"]

    assert mail["sent"] == BATCH_LIMIT
    assert scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE status = 'pending'") == count - BATCH_LIMIT
    finish_the_work(cli, phase_end)
    assert_each_project_moved_once(cli, count)
    assert scalar(cli, "SELECT COUNT(*) FROM outbox_message WHERE status <> 'sent'") == 0, unsent_breakdown(cli)


def test_forced_transition_during_a_sweep_gets_a_clear_conflict_and_changes_nothing(
    cli: Cli, config_dir: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workflow.sweep as sweep_module

    workflow = populate(cli, config_dir, tmp_path, 1)
    workflow.clock = SimulatedClock(datetime.fromisoformat(AFTER_APPLICATION_DEADLINE))
    outcome: dict[str, object] = {}
    real_fire_in = Workflow.fire_in

    def operator_forces_meanwhile(self: Workflow, *args: object, **kwargs: object) -> object:
        def force() -> None:
            try:
                other = Workflow(make_engine(cli.env["ESMS_DATABASE_URL"]), self.campaigns, self.clock)
                other.force(1, "selection", "dossier reçu par courrier", "ars")
                outcome["force"] = "won"
            except ConflictError as error:
                outcome["force"] = error

        thread = threading.Thread(target=force)
        outcome["thread"] = thread
        thread.start()
        time.sleep(0.5)  # the operator's command runs while the sweep is on the project
        return real_fire_in(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Workflow, "fire_in", operator_forces_meanwhile)
    report = sweep_module.sweep(workflow)
    thread = outcome["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join(60)
    events = [h["event"] for h in cli.ok("project", "history", "1", "--json").json()]
    if database_url.startswith("postgresql"):
        # The sweep holds the row lock: the operator waits, then finds the project changed.
        assert report.transitions and report.transitions[0].dest == "lapsed"
        assert isinstance(outcome["force"], ConflictError), outcome
        assert "another process" in str(outcome["force"])
        assert events == ["register", "lapse"]
    else:
        # SQLite's writer lock goes to the first writer, the operator here: the sweep's stale write is refused,
        # its batch rolled back and run again, and the project, no longer due, is left alone.
        assert outcome["force"] == "won"
        assert report.transitions == []
        assert events == ["register", "force"]
    assert cli("check").code == 0
