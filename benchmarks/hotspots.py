"""Where the time goes: `python -m benchmarks.hotspots crossing|relay|startup [--count N] [--postgres-url URL]`.

- `crossing`: cProfile of one sweep lapsing N `agreement` projects (case 2's work, default N = 1 000).
- `relay`: cProfile of `deliver_due` sending N queued reminders over one connection (case 3, default 500).
- `startup`: `python -X importtime` of `esms project show 1`, summed per top-level package (case 4).

cProfile slows Python code down a few times over; read the shares, not the absolute figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.databases import Databases
from benchmarks.generate import Cohort, bench_config_dir, populate
from states import lifecycle
from workflow.campaigns import load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.sweep import sweep

#: Functions of the repository's own packages, for the inclusive-time listing.
OWN_CODE = r"(workflow|notifications|states)/[a-z_]+\.py"


def _print_stats(profile: cProfile.Profile, total_label: str, lines: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(OWN_CODE, lines)
    stats.sort_stats("tottime").print_stats(lines)
    print(f"== {total_label}\n{out.getvalue()}")


def profile_crossing(databases: Databases, backend: str, count: int, config_dir: Path) -> None:
    """Profile one sweep lapsing `count` projects at the agreement deadline."""
    from benchmarks.cases import CROSSING_AT, GENERATED_AT

    campaigns = load_campaigns(config_dir)
    database = databases.new(backend, "profile")
    populate(database.url, campaigns, [Cohort("hdf-2021", count, (lifecycle.State.AGREEMENT,))], GENERATED_AT)
    engine = make_engine(database.url)
    workflow = Workflow(engine, campaigns, SimulatedClock(CROSSING_AT))
    profile = cProfile.Profile()
    profile.enable()
    report = sweep(workflow)
    profile.disable()
    engine.dispose()
    databases.drop(database)
    _print_stats(profile, f"sweep lapsing {len(report.transitions)} projects ({backend})", 45)


def profile_relay(databases: Databases, count: int, config_dir: Path, workdir: Path) -> None:
    """Profile `deliver_due` sending `count` reminders over one connection to a local aiosmtpd."""
    from benchmarks.mail import GENERATED_AT, RELAY_AT, REMINDED_AT, SmtpSink
    from notifications.relay import deliver_due
    from workflow.settings import load_settings

    campaigns = load_campaigns(config_dir)
    database = databases.new("sqlite", "profile")
    populate(database.url, campaigns, [Cohort("hdf-2021", count, (lifecycle.State.AGREEMENT,))], GENERATED_AT)
    engine = make_engine(database.url)
    sweep(Workflow(engine, campaigns, SimulatedClock(REMINDED_AT)))
    sink = SmtpSink()
    settings = load_settings(
        {"ESMS_SMTP_HOST": "127.0.0.1", "ESMS_SMTP_PORT": str(sink.port), "HOME": str(workdir)}
    ).mail
    profile = cProfile.Profile()
    try:
        profile.enable()
        report = deliver_due(engine, SimulatedClock(RELAY_AT), settings, limit=count)
        profile.disable()
    finally:
        sink.close()
        engine.dispose()
        databases.drop(database)
    _print_stats(profile, f"deliver_due sending {report.sent} messages over one connection", 40)


def profile_startup(databases: Databases, config_dir: Path, workdir: Path) -> None:
    """`-X importtime` of `esms project show 1`, summed per top-level package (self time)."""
    from datetime import datetime

    from benchmarks.generate import PARIS

    campaigns = load_campaigns(config_dir)
    database = databases.new("sqlite", "profile")
    populate(
        database.url,
        campaigns,
        [Cohort("hdf-2021", 1, (lifecycle.State.APPLICATION,))],
        datetime(2021, 3, 1, tzinfo=PARIS),
    )
    env = {
        **os.environ,
        "ESMS_DATABASE_URL": database.url,
        "ESMS_CONFIG_DIR": str(config_dir),
        "ESMS_DATA_DIR": str(workdir / "data"),
    }
    for argv in (["-c", "import sqlmodel"], ["-m", "workflow.cli.main", "project", "show", "1"]):
        done = subprocess.run(  # noqa: S603 (our own interpreter)
            [sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True, check=True
        )
        per_package: dict[str, int] = defaultdict(int)
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if match:
                per_package[match.group(4).split(".")[0]] += int(match.group(1))
        total = sum(per_package.values())
        print(f"== python -X importtime {' '.join(argv)}: {total / 1000:.0f} ms of imports (self times)")
        for package, micros in sorted(per_package.items(), key=lambda item: -item[1])[:15]:
            print(f"  {package:24} {micros / 1000:7.1f} ms")
    databases.drop(database)


def main(argv: list[str] | None = None) -> int:
    """Run one profile."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotspots", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("crossing", "relay", "startup"))
    parser.add_argument("--count", type=int, default=None, help="projects to lapse, or messages to send")
    parser.add_argument("--postgres-url", default=None, help="profile the crossing on PostgreSQL instead")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="esms-profile-"))
    databases = Databases(workdir, args.postgres_url)
    try:
        config_dir = bench_config_dir(workdir)
        if args.what == "crossing":
            backend = "postgresql" if args.postgres_url else "sqlite"
            profile_crossing(databases, backend, args.count or 1000, config_dir)
        elif args.what == "relay":
            profile_relay(databases, args.count or 500, config_dir, workdir)
        else:
            profile_startup(databases, config_dir, workdir)
    finally:
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
