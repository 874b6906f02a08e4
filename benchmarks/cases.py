"""The sweep cases: 1 (idle sweep against database size), 2 (deadline crossing against raw writes), 5 (memory).

Database layout of cases 1 and 2, for a size N, generated as the projects stand on 2021-06-30 12:00 Paris:
N/10 projects of the shipped `hdf-2021` campaign in `agreement` (due when its agreement deadline, 2021-06-30,
has passed: 2021-07-01 00:00 Paris) and 9N/10 projects of the synthetic `bench-2022` campaign spread over all
fourteen states (their reminders and deadlines fall in 2022). Case 1 sweeps at 2021-06-30 18:00, when nothing
is due; case 2 sweeps the largest database at 2021-07-01 00:00:01, when exactly the N/10 `agreement` projects
lapse (10 000 for N = 100 000).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from benchmarks.context import Context, chunks, run_sweep_child
from benchmarks.databases import Database, raw_sqlite
from benchmarks.generate import BENCH_CAMPAIGN_ID, PARIS, Cohort, populate, sqlite_stamp
from benchmarks.report import Goal, Row, count, median, megabytes, seconds, verdict
from states import lifecycle
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.sweep import sweep

GENERATED_AT = datetime(2021, 6, 30, 12, tzinfo=PARIS)
IDLE_AT = datetime(2021, 6, 30, 18, tzinfo=PARIS)
CROSSING_AT = datetime(2021, 7, 1, 0, 0, 1, tzinfo=PARIS)
#: The end of hdf-2021's agreement deadline: the next due instant of its `agreement` projects.
AGREEMENT_END = datetime(2021, 7, 1, tzinfo=PARIS)
RAW_BATCH = 500
#: The raw baseline takes about a second: it is run this many times (undone in between) and the median is kept.
RAW_RUNS = 3
#: Case 5: every project in `selection`, swept one second after the selection deadline (2021-05-31).
MEMORY_GENERATED_AT = datetime(2021, 5, 31, 12, tzinfo=PARIS)
MEMORY_AT = datetime(2021, 6, 1, 0, 0, 1, tzinfo=PARIS)
IDLE_GOAL_RATIO = 2.0
CROSSING_GOAL_RATIO = 0.25
CROSSING_GOAL_RATE = 2000.0
MEMORY_GOAL_MB = 200


def layout(size: int) -> list[Cohort]:
    """Cases 1 and 2: N/10 `hdf-2021` projects in `agreement`, the rest `bench-2022` over every state."""
    return [
        Cohort("hdf-2021", size // 10, (lifecycle.State.AGREEMENT,)),
        # Every state the generator writes histories for (recovery needs repayments: left out).
        Cohort(
            BENCH_CAMPAIGN_ID,
            size - size // 10,
            tuple(s for s in lifecycle.STATES if s not in lifecycle.RECOVERY_STATES),
        ),
    ]


def idle_sweeps(ctx: Context, databases: dict[int, Database], runs: int) -> dict[int, list[float]]:
    """Time `sweep()` at an instant with nothing due on each database, the sizes taking turns.

    Three untimed passes each first (connections, statement caches), then `runs` rounds of one timed pass per
    size: a busy moment of the machine falls on every size alike instead of on one.
    """
    workflows = {
        size: Workflow(make_engine(database.url), ctx.campaigns, SimulatedClock(IDLE_AT))
        for size, database in databases.items()
    }
    timings: dict[int, list[float]] = {size: [] for size in databases}
    try:
        for run in range(runs + 3):
            for size, workflow in workflows.items():
                started = time.perf_counter()
                report = sweep(workflow)
                elapsed = time.perf_counter() - started
                if report.due != 0:
                    raise RuntimeError(f"idle sweep found {report.due} projects due at N={size}")
                if run >= 3:
                    timings[size].append(elapsed)
    finally:
        for workflow in workflows.values():
            workflow.engine.dispose()
    return timings


def sweep_cases(ctx: Context) -> None:
    """Cases 1 and 2 on every backend of the run."""
    runs = 20 if ctx.quick else 50
    for backend in ctx.databases.backends:
        databases: dict[int, Database] = {}
        for size in sorted(ctx.sizes):
            databases[size] = ctx.databases.new(backend, f"sweep{size}")
            generated = populate(databases[size].url, ctx.campaigns, layout(size), GENERATED_AT)
            ctx.log(
                f"{backend} N={size}: generated {count(generated.projects)} projects, {count(generated.tranches)} "
                f"tranches, {count(generated.audit_rows)} audit rows in {generated.seconds:.1f} s"
            )
        timings = idle_sweeps(ctx, databases, runs)
        medians = {size: median(values) for size, values in timings.items()}
        ctx.log(f"{backend}: idle sweep medians " + ", ".join(f"N={n}: {seconds(m)}" for n, m in medians.items()))
        _idle_rows(ctx, backend, medians, runs)
        crossing(ctx, databases[ctx.largest], ctx.largest)
        for database in databases.values():
            ctx.databases.drop(database)


def _idle_rows(ctx: Context, backend: str, medians: dict[int, float], runs: int) -> None:
    base_size = min(medians)
    base = medians[base_size]
    for size, value in sorted(medians.items()):
        ratio = value / base
        is_goal = size == ctx.largest and size != base_size
        ctx.rows.append(
            Row(
                case=f"1 idle sweep, median of {runs}",
                backend=backend,
                size=count(size),
                result=seconds(value),
                baseline="itself" if size == base_size else f"{seconds(base)} at N={count(base_size)}",
                ratio=f"{ratio:.2f}",
                goal=f"≤ {IDLE_GOAL_RATIO:g} (N={count(ctx.largest)} / N={count(base_size)})" if is_goal else "",
                verdict=verdict(ratio <= IDLE_GOAL_RATIO) if is_goal else "—",
            )
        )
        if is_goal:
            ctx.goals.append(
                Goal(
                    f"1. idle sweep at N={count(size)} ≤ {IDLE_GOAL_RATIO:g} × N={count(base_size)} ({backend})",
                    ratio <= IDLE_GOAL_RATIO,
                    f"{seconds(value)} vs {seconds(base)}: × {ratio:.2f}",
                )
            )


# --- case 2 ------------------------------------------------------------------------------------------------


def crossing(ctx: Context, database: Database, size: int) -> None:
    """Case 2: one sweep across the agreement deadline (engine, in a child), then raw writes on a copy."""
    expected = size // 10
    copy = (
        ctx.databases.copy_sqlite(database, "raw")
        if database.backend == "sqlite"
        else ctx.databases.copy_postgres(database, "raw")
    )
    ctx.log(f"{database.backend}: crossing the agreement deadline with {count(expected)} projects due (engine)…")
    child = run_sweep_child(database.url, ctx.config_dir, CROSSING_AT.isoformat())
    _check_engine_crossing(database, child, expected)
    engine_rate = expected / child["seconds"]
    ctx.log(
        f"{database.backend}: engine {count(expected)} lapses in {child['seconds']:.1f} s "
        f"(CPU {child['cpu_seconds']:.1f} s): {engine_rate:.0f}/s"
    )
    templates = _written_rows(ctx, database)
    raw_runs = []
    for run in range(RAW_RUNS):
        if run:
            _undo_raw(ctx, copy)
        raw_runs.append(raw_crossing(ctx, copy, templates))
        _check_raw_crossing(copy, expected)
    raw_seconds = median(raw_runs)
    raw_rate = expected / raw_seconds
    ctx.log(
        f"{database.backend}: raw {count(expected)} lapses in "
        + ", ".join(f"{value:.2f} s" for value in raw_runs)
        + f": median {raw_rate:.0f}/s"
    )
    ctx.databases.drop(copy)
    ratio = engine_rate / raw_rate
    met = ratio >= CROSSING_GOAL_RATIO and engine_rate >= CROSSING_GOAL_RATE
    driver = "sqlite3" if database.backend == "sqlite" else "psycopg executemany"
    ctx.rows.append(
        Row(
            case="2 deadline crossing: lapses/s",
            backend=database.backend,
            size=f"{count(expected)} of {count(size)}",
            result=f"{engine_rate:,.0f}/s ({seconds(child['seconds'])}, CPU {seconds(child['cpu_seconds'])})",
            baseline=f"raw {driver}, batches of {RAW_BATCH}, median of {RAW_RUNS}: {raw_rate:,.0f}/s "
            f"({seconds(raw_seconds)})",
            ratio=f"{ratio:.3f}",
            goal=f"≥ {CROSSING_GOAL_RATIO:g} × raw and ≥ {CROSSING_GOAL_RATE:,.0f}/s",
            verdict=verdict(met),
        )
    )
    ctx.rows.append(
        Row(
            case="2 … peak RSS of that sweep's process",
            backend=database.backend,
            size=f"{count(expected)} of {count(size)}",
            result=megabytes(child["peak_rss_after_kib"]),
            baseline=f"same process before the sweep: {megabytes(child['peak_rss_before_kib'])}",
            ratio=f"{child['peak_rss_after_kib'] / child['peak_rss_before_kib']:.2f}",
        )
    )
    ctx.goals.append(
        Goal(
            f"2. deadline crossing ≥ {CROSSING_GOAL_RATIO:g} × raw and ≥ {CROSSING_GOAL_RATE:,.0f}/s "
            f"({database.backend})",
            met,
            f"{engine_rate:,.0f}/s vs raw {raw_rate:,.0f}/s: × {ratio:.3f}",
        )
    )


def _scalar(database: Database, sql: str) -> Any:
    engine = make_engine(database.url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def _counts(database: Database) -> tuple[int, int, int, int]:
    return (
        int(_scalar(database, "SELECT count(*) FROM project WHERE campaign_id = 'hdf-2021' AND state = 'lapsed'")),
        int(_scalar(database, "SELECT count(*) FROM project WHERE campaign_id = 'hdf-2021' AND state = 'agreement'")),
        int(_scalar(database, "SELECT count(*) FROM audit_entry WHERE event = 'lapse' AND actor = 'scheduler'")),
        int(_scalar(database, "SELECT count(*) FROM outbox_message WHERE template = 'lapsed'")),
    )


def _check_engine_crossing(database: Database, child: dict[str, Any], expected: int) -> None:
    if child["transitions"] != expected or child["skipped"]:
        raise RuntimeError(f"engine crossing: expected {expected} lapses, got {child}")
    lapsed, left, audit, outbox = _counts(database)
    if (lapsed, left, audit, outbox) != (expected, 0, expected, expected):
        raise RuntimeError(f"engine crossing wrote lapsed={lapsed} left={left} audit={audit} outbox={outbox}")


def _check_raw_crossing(database: Database, expected: int) -> None:
    lapsed, left, audit, outbox = _counts(database)
    if (lapsed, left, audit, outbox) != (expected, 0, expected, expected):
        raise RuntimeError(f"raw crossing wrote lapsed={lapsed} left={left} audit={audit} outbox={outbox}")


def _written_rows(ctx: Context, database: Database) -> dict[str, dict[str, Any]]:
    """One audit row and one outbox message the engine wrote, read back raw: the shape the baseline copies."""
    queries = {
        "audit_entry": "SELECT * FROM audit_entry WHERE event = 'lapse' AND actor = 'scheduler' ORDER BY id LIMIT 1",
        "outbox_message": "SELECT * FROM outbox_message WHERE template = 'lapsed' ORDER BY id LIMIT 1",
    }
    found = {}
    if database.backend == "sqlite":
        with closing(raw_sqlite(database)) as connection:
            for table, query in queries.items():
                cursor = connection.execute(query)
                found[table] = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    else:
        with ctx.databases.raw_postgres(database) as connection:
            for table, query in queries.items():
                cursor = connection.execute(query)
                assert cursor.description is not None
                found[table] = dict(zip([d.name for d in cursor.description], cursor.fetchone() or (), strict=True))
    return found


def _undo_raw(ctx: Context, database: Database) -> None:
    """Put the copy back as it was before the raw writes (outside the timing): same rows, same due projects."""
    sqlite = database.backend == "sqlite"
    mark = "?" if sqlite else "%s"
    statements: list[tuple[str, tuple[Any, ...]]] = [
        ("DELETE FROM outbox_message", ()),
        ("DELETE FROM audit_entry WHERE event = 'lapse' AND actor = 'scheduler'", ()),
        (
            f"UPDATE project SET state = 'agreement', version = version - 1, next_due_at = {mark} "  # noqa: S608
            "WHERE campaign_id = 'hdf-2021' AND state = 'lapsed'",
            (sqlite_stamp(AGREEMENT_END) if sqlite else AGREEMENT_END,),
        ),
    ]
    if sqlite:
        with closing(raw_sqlite(database)) as connection:
            connection.execute("BEGIN")
            for statement, params in statements:
                connection.execute(statement, params)
            connection.execute("COMMIT")
        return
    with ctx.databases.raw_postgres(database) as connection:
        connection.autocommit = True
        with connection.transaction():
            for statement, params in statements:
                connection.execute(statement, params)
        connection.execute("VACUUM (ANALYZE) project, audit_entry, outbox_message")


def raw_crossing(ctx: Context, database: Database, templates: dict[str, dict[str, Any]]) -> float:
    """The baseline: the same row writes with the bare driver, in transactions of `RAW_BATCH` projects.

    Per due project: UPDATE its state, version and next_due_at (guarded by version), INSERT an audit row and an
    outbox message shaped like the ones the engine wrote (same columns, same subject and body sizes). The due
    projects are found with the same index range query. Returns the seconds taken.
    """
    # `global_seq` is unique: the baseline's rows take none (the chain across projects is the engine's work).
    audit = {k: v for k, v in templates["audit_entry"].items() if k not in ("id", "global_seq")}
    outbox = {k: v for k, v in templates["outbox_message"].items() if k != "id"}
    if database.backend == "sqlite":
        connection = raw_sqlite(database)
        mark = "?"
        now: Any = sqlite_stamp(CROSSING_AT)
    else:
        connection = ctx.databases.raw_postgres(database)
        connection.autocommit = True
        mark = "%s"
        now = CROSSING_AT
    # Only constants and placeholders are formatted into these statements.
    select_due = (
        f"SELECT id, version, owner_email FROM project WHERE next_due_at IS NOT NULL AND next_due_at <= {mark} "  # noqa: S608
        "ORDER BY next_due_at, id"
    )
    update = (
        f"UPDATE project SET state = 'lapsed', updated_at = {mark}, version = {mark}, next_due_at = NULL "  # noqa: S608
        f"WHERE id = {mark} AND version = {mark}"
    )
    insert_audit = f"INSERT INTO audit_entry ({', '.join(audit)}) VALUES ({', '.join(mark for _ in audit)})"  # noqa: S608
    insert_outbox = f"INSERT INTO outbox_message ({', '.join(outbox)}) VALUES ({', '.join(mark for _ in outbox)})"  # noqa: S608
    try:
        started = time.perf_counter()
        due = connection.execute(select_due, (now,)).fetchall()
        for batch in chunks(due, RAW_BATCH):
            updates = [(now, version + 1, pid, version) for pid, version, _ in batch]
            audits = [tuple({**audit, "project_id": pid, "seq": version + 1}.values()) for pid, version, _ in batch]
            messages = [
                tuple(
                    {
                        **outbox,
                        "idempotency_key": f"p{pid}:lapse:agreement_deadline",
                        "project_id": pid,
                        "recipients": f'["{email}"]',
                    }.values()
                )
                for pid, _, email in batch
            ]
            if isinstance(connection, sqlite3.Connection):
                connection.execute("BEGIN")
                connection.executemany(update, updates)
                connection.executemany(insert_audit, audits)
                connection.executemany(insert_outbox, messages)
                connection.execute("COMMIT")
            else:
                with connection.transaction(), connection.cursor() as cursor:
                    cursor.executemany(update, updates)
                    cursor.executemany(insert_audit, audits)
                    cursor.executemany(insert_outbox, messages)
        return time.perf_counter() - started
    finally:
        connection.close()


# --- case 5 ------------------------------------------------------------------------------------------------


def memory_case(ctx: Context) -> None:
    """Case 5: peak RSS of a fresh process sweeping N projects that are all due (SQLite)."""
    size = ctx.largest
    database = ctx.databases.new("sqlite", f"memory{size}")
    generated = populate(
        database.url, ctx.campaigns, [Cohort("hdf-2021", size, (lifecycle.State.SELECTION,))], MEMORY_GENERATED_AT
    )
    ctx.log(f"sqlite N={size}: {count(generated.projects)} projects in `selection` in {generated.seconds:.1f} s")
    ctx.log(f"sqlite: sweeping {count(size)} due projects in a child process…")
    child = run_sweep_child(database.url, ctx.config_dir, MEMORY_AT.isoformat())
    if child["flagged"] != size or child["skipped"]:
        raise RuntimeError(f"memory sweep: expected {size} flagged, got {child}")
    left = int(_scalar(database, "SELECT count(*) FROM project WHERE next_due_at IS NOT NULL"))
    if left:
        raise RuntimeError(f"memory sweep left {left} projects with a next due instant")
    ctx.databases.drop(database)
    peak, before = child["peak_rss_after_kib"], child["peak_rss_before_kib"]
    met = peak * 1024 < MEMORY_GOAL_MB * 1_000_000
    ctx.log(f"sqlite: {count(size)} flagged in {child['seconds']:.1f} s, peak RSS {megabytes(peak)}")
    ctx.rows.append(
        Row(
            case="5 peak RSS, one sweep, all due (flagged)",
            backend="sqlite",
            size=count(size),
            result=f"{megabytes(peak)}; sweep took {seconds(child['seconds'])} ({size / child['seconds']:,.0f}/s)",
            baseline=f"same process before the sweep: {megabytes(before)}",
            ratio=f"{peak / before:.2f}",
            goal=f"< {MEMORY_GOAL_MB} MB",
            verdict=verdict(met),
        )
    )
    ctx.goals.append(
        Goal(
            f"5. peak RSS of a sweep over {count(size)} due projects < {MEMORY_GOAL_MB} MB",
            met,
            f"{megabytes(peak)} (before the sweep {megabytes(before)}); duration {seconds(child['seconds'])}",
        )
    )
