"""`python -m benchmarks [--sizes 1000,10000,100000] [--quick] [--postgres-url URL] [--out FILE]`.

Runs every case, each against a baseline measured in the same run, prints the machine, the table and the goals
(progress goes to stderr), and writes them as Markdown to `--out`. Scratch files go to a temporary folder and
PostgreSQL schemas are private to the run; both are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cases import memory_case, sweep_cases
from benchmarks.context import Context
from benchmarks.databases import Databases
from benchmarks.generate import bench_config_dir
from benchmarks.mail import mail_case
from benchmarks.report import goals_summary, load_average, machine, machine_block, markdown_table
from benchmarks.startup import startup_case
from workflow.campaigns import load_campaigns

DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part.replace("_", "")) for part in text.split(",") if part.strip()],
        default=None,
        help="database sizes in projects, comma-separated (default 1000,10000,100000; --quick: 1000,10000)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions: a smoke run")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("ESMS_BENCH_POSTGRES_URL") or os.environ.get("ESMS_TEST_POSTGRES_URL") or None,
        help="also run the database cases on this PostgreSQL server, in a private schema "
        "(default: $ESMS_BENCH_POSTGRES_URL or $ESMS_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the results as Markdown to this file")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if len(args.sizes) < 2 or min(args.sizes) < 10:
        parser.error("--sizes needs at least two sizes of 10 projects or more")
    return args


def _masked(argument: str) -> str:
    """An argument as echoed in the results: a database URL without its password."""
    if "://" not in argument:
        return argument
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(argument).render_as_string(hide_password=True)
    except Exception:  # not a URL after all
        return argument


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="esms-bench-"))
    databases = Databases(workdir, args.postgres_url)
    started = time.perf_counter()
    try:
        config_dir = bench_config_dir(workdir)
        ctx = Context(
            databases=databases,
            campaigns=load_campaigns(config_dir),
            config_dir=config_dir,
            workdir=workdir,
            sizes=sorted(set(args.sizes)),
            quick=args.quick,
        )
        about = machine(workdir, databases.postgres_server_version())
        print("# ESMS numérique benchmarks\n")
        print(machine_block(about), flush=True)
        ctx.log(f"sizes {ctx.sizes}, backends {', '.join(databases.backends)}, quick={args.quick}")
        startup_case(ctx)
        sweep_cases(ctx)
        mail_case(ctx)
        memory_case(ctx)
    finally:
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    command = " ".join(
        ["python -m benchmarks", *(shlex.quote(_masked(a)) for a in (sys.argv[1:] if argv is None else argv))]
    )
    footer = f"Run took {elapsed / 60:.1f} min; load average at the end: {load_average()}."
    table = markdown_table(sorted(ctx.rows, key=lambda row: row.case.split()[0]))
    goals = goals_summary(ctx.goals)
    print(f"\n{table}\n\nGoals:\n{goals}\n\n{footer}", flush=True)
    if args.out:
        args.out.write_text(
            "# ESMS numérique benchmarks\n\n"
            f"Command: `{command.strip()}`\n\n{machine_block(about)}\n\n{table}\n\nGoals:\n\n{goals}\n\n{footer}\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
