"""The real `esms daemon` in subprocesses: it sweeps on its interval, one daemon per database holds the lease,
a standby takes over from a SIGKILLed holder, and SIGTERM stops it cleanly with exit 0 (slow: real processes).
The sweep's rules themselves are tested in-process in tests/workflow/test_sweep.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, write_project

pytestmark = pytest.mark.slow

AFTER_AGREEMENT_DEADLINE = "2021-07-01T12:00:00+02:00"


class DaemonProcess:
    def __init__(self, cli: Cli, log: Path, *args: str, now: str = AFTER_AGREEMENT_DEADLINE) -> None:
        self.log = log
        env = {**os.environ, **cli.env, "ESMS_NOW": now}
        self.handle = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workflow.cli.main", "daemon", "--interval", "0.5", *args],
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.handle.close()


@pytest.fixture
def daemons(cli: Cli, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(*args: str, name: str = "daemon") -> DaemonProcess:
        process = DaemonProcess(cli, tmp_path / f"{name}-{len(started)}.log", *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def project_waiting_for_agreement(cli: Cli, tmp_path: Path) -> str:
    project_id = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-05-01").out.strip()
    cli.ok("force", project_id, "agreement", "--reason", "mise en place du test", now="2021-05-02")
    return project_id


def state_of(cli: Cli, project_id: str) -> str:
    return str(cli.ok("project", "show", project_id, "--json").json()["state"])


def test_daemon_lapses_a_project_when_its_deadline_has_passed(
    cli: Cli, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    project_id = project_waiting_for_agreement(cli, tmp_path)
    daemon = daemons()
    wait_for(lambda: state_of(cli, project_id) == "lapsed", what="the sweep to lapse the project")
    history = cli.ok("project", "history", project_id, "--json").json()
    assert history[-1]["actor"] == "scheduler" and history[-1]["event"] == "lapse"
    wait_for(lambda: f"project {project_id} agreement -> lapsed" in daemon.text(), what="the transition's log line")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(20) == 0


def test_sigterm_finishes_the_pass_and_exits_zero(cli: Cli, daemons: Callable[..., DaemonProcess]) -> None:
    daemon = daemons()
    wait_for(lambda: "active" in daemon.text(), what="the daemon to take the lease")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(20) == 0
    assert "SIGTERM received" in daemon.text() and "stopped" in daemon.text()
    assert "Traceback" not in daemon.text()


def test_standby_takes_over_when_the_active_daemon_is_killed(
    cli: Cli, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    first = daemons("--lease-ttl", "2", name="first")
    wait_for(lambda: "active" in first.text(), what="the first daemon to take the lease")
    second = daemons("--lease-ttl", "2", name="second")
    wait_for(lambda: "standby" in second.text(), what="the second daemon to stand by")

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    # Work that only the standby can now do.
    projects = [project_waiting_for_agreement(cli, tmp_path) for _ in range(3)]
    wait_for(lambda: all(state_of(cli, p) == "lapsed" for p in projects), what="the standby to finish the sweep")
    assert "active" in second.text()
    for project_id in projects:
        assert f"project {project_id} agreement -> lapsed" in second.text()
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(20) == 0
