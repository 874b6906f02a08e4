"""Case 4: wall time of `esms` commands as fresh processes, against the interpreter's own floors.

Each command runs as a subprocess, once to warm the file cache and the bytecode, then `runs` times, the commands
taking turns so that a noisy moment hits all of them alike; the median is reported. The database is a SQLite file
holding one project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from benchmarks.context import Context
from benchmarks.generate import PARIS, Cohort, populate
from benchmarks.report import Goal, Row, median, seconds, verdict
from states import lifecycle

HELP_GOAL_SECONDS = 0.3
SHOW_GOAL_RATIO = 1.3


def esms_command() -> list[str]:
    """The installed `esms` console script next to this interpreter, else `python -m workflow.cli.main`."""
    script = shutil.which("esms", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "workflow.cli.main"]


def startup_case(ctx: Context) -> None:
    """Case 4."""
    runs = 10 if ctx.quick else 20
    database = ctx.databases.new("sqlite", "cli")
    populate(
        database.url,
        ctx.campaigns,
        [Cohort("hdf-2021", 1, (lifecycle.State.APPLICATION,))],
        datetime(2021, 3, 1, 12, tzinfo=PARIS),
    )
    env = {
        **os.environ,
        "ESMS_DATABASE_URL": database.url,
        "ESMS_CONFIG_DIR": str(ctx.config_dir),
        "ESMS_DATA_DIR": str(ctx.workdir / "data"),
    }
    env.pop("ESMS_NOW", None)
    esms = esms_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import sqlmodel"': [sys.executable, "-c", "import sqlmodel"],
        "esms --help": [*esms, "--help"],
        "esms project show 1": [*esms, "project", "show", "1"],
    }
    ctx.log(f"CLI start-up: {len(commands)} commands × {runs} runs ({' '.join(esms)})…")
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs + 1):
        for name, argv in commands.items():
            started = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()}")
            if name == "esms project show 1" and "hdf-2021" not in done.stdout:
                raise RuntimeError(f"{name} printed no project: {done.stdout!r}")
            if run > 0:
                timings[name].append(elapsed)
    ctx.databases.drop(database)
    floor_pass = median(timings["python -c pass"])
    floor = median(timings['python -c "import sqlmodel"'])
    help_time = median(timings["esms --help"])
    show = median(timings["esms project show 1"])
    help_met = help_time < HELP_GOAL_SECONDS
    show_met = show <= SHOW_GOAL_RATIO * floor
    case = f"4 CLI start-up, median of {runs}"
    ctx.rows += [
        Row(case, "—", "—", f"python -c pass: {seconds(floor_pass)}", "—", "—"),
        Row(
            case,
            "—",
            "—",
            f'python -c "import sqlmodel": {seconds(floor)}',
            f"python -c pass: {seconds(floor_pass)}",
            f"{floor / floor_pass:.2f}",
        ),
        Row(
            case,
            "—",
            "—",
            f"esms --help: {seconds(help_time)}",
            f"import floor: {seconds(floor)}",
            f"{help_time / floor:.2f}",
            f"< {HELP_GOAL_SECONDS:g} s",
            verdict(help_met),
        ),
        Row(
            case,
            "sqlite",
            "1 project",
            f"esms project show 1: {seconds(show)}",
            f"import floor: {seconds(floor)}",
            f"{show / floor:.2f}",
            f"≤ {SHOW_GOAL_RATIO:g} × import floor",
            verdict(show_met),
        ),
    ]
    ctx.goals += [
        Goal(f"4. esms --help < {HELP_GOAL_SECONDS:g} s", help_met, f"{seconds(help_time)}"),
        Goal(
            f"4. esms project show ≤ {SHOW_GOAL_RATIO:g} × python -c 'import sqlmodel'",
            show_met,
            f"{seconds(show)} vs {seconds(floor)}: × {show / floor:.2f}",
        ),
    ]
