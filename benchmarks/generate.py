"""Synthetic data: N projects over every life-cycle state, their tranches and their history, bulk inserted.

Each project looks like one the engine itself would have written: the audit rows of the events that led to its
state (`register`, `submit`, `select`, …: 1 to 9 rows, 4.2 on average over all states), three tranches
released per the milestones its state has reached (`states.lifecycle.tranches_reached`), the fields those events
record (group, RESAH reference, vendor, invoices, withdrawal reason), `version` equal to its number of audit rows,
the audit hash chain when the schema has one (`workflow.audit.hash_of`), and `next_due_at` computed by
`workflow.schedule.next_due_at(campaign, state, now)` for the generation instant.

Left out, because no benchmarked path reads them: organisations and ESMS rows (only the `submit` guard loads the
grappe; `esms_count`/`small_esms_count` are set), past outbox messages and the daemon lease.

Rows go in with SQLAlchemy Core `insert()` and lists of dicts (executemany), one transaction per chunk of
projects, into a database migrated with `workflow.db.migrate(make_engine(url))`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from states import lifecycle
from states.money import split_tranches
from workflow.campaigns import Campaign
from workflow.db import make_engine, migrate
from workflow.models import AuditEntry, Project, Tranche
from workflow.schedule import next_due_at

PARIS = ZoneInfo("Europe/Paris")
REPO = Path(__file__).resolve().parent.parent
GENERATOR_ACTOR = "bench-generator"
#: The tables whose statistics PostgreSQL gets after the bulk load (autovacuum would gather them in real life).
ANALYZED_TABLES = ("project", "tranche", "audit_entry", "outbox_message")

#: A second campaign, a year later than the shipped ones, so that its projects are never due in 2021.
BENCH_CAMPAIGN_ID = "bench-2022"
BENCH_CAMPAIGN_TOML = """\
# Synthetic campaign of the benchmark: a year after hdf-2021, so nothing of it falls due in 2021.
id = "bench-2022"
name = "ESMS numérique — campagne synthétique (benchmark)"
region = "Hauts-de-France"
timezone = "Europe/Paris"
envelope = 90000000

[calendar]
opens = 2022-02-14
application_deadline = 2022-03-31
selection_deadline = 2022-05-31
needs_statement_opens = 2022-03-14
agreement_deadline = 2022-06-30

[funding]
acquisition_per_esms = 25000
compliance_per_esms = 10000
equipment_per_small_esms = 20000
max_funded_esms = 30
tranches = [40, 40, 20]

[eligibility]
min_organisations = 3
min_esms = 15
min_services_socles = 2

[reminders]
days_before = [14, 7, 1]

[[usage_criteria]]
id = "dui_actifs"
label = "Part des usagers disposant d'un DUI actif (%)"
min = 80
"""

Step = tuple[str, str, str, dict[str, str]]  # event, source, dest, params

_MAIN_EVENTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("submit", {}),
    ("select", {"group": "A"}),
    ("file_needs", {"reference": "RESAH-BENCH-0001"}),
    ("sign_contract", {"vendor": "Éditeur DUI de référence"}),
    ("sign_agreement", {}),
    ("finish_configuration", {"invoice": "FAC-CONF-0001"}),
    ("finish_rollout", {"invoice": "FAC-DEPL-0001"}),
    ("verify_usage", {"dui_actifs": "86", "ins_qualifiees": "71"}),
)


def history(state: str) -> list[Step]:
    """The events (after `register`) that bring a new project to `state`, the way the rules allow."""
    L = lifecycle  # noqa: N806
    if state in L.MAIN_LINE:
        rank = L.MAIN_LINE.index(state)
        return [(event, L.MAIN_LINE[i], L.MAIN_LINE[i + 1], params) for i, (event, params) in enumerate(_MAIN_EVENTS)][
            :rank
        ]
    groups = {L.State.WAITLISTED: "B", L.State.REWORK: "C", L.State.REJECTED: "D"}
    if state in groups:
        return [
            ("submit", L.State.APPLICATION, L.State.SELECTION, {}),
            ("select", L.State.SELECTION, state, {"group": groups[state]}),
        ]
    if state == L.State.LAPSED:
        return [("lapse", L.State.APPLICATION, L.State.LAPSED, {})]
    if state == L.State.WITHDRAWN:
        return [
            ("submit", L.State.APPLICATION, L.State.SELECTION, {}),
            ("withdraw", L.State.SELECTION, L.State.WITHDRAWN, {"reason": "Regroupement avec une autre grappe"}),
        ]
    raise ValueError(f"unknown state {state}")


@dataclass(frozen=True)
class Cohort:
    """`count` projects of one campaign, their states taken in turn from `states`."""

    campaign: str
    count: int
    states: tuple[str, ...] = lifecycle.STATES


@dataclass
class Generated:
    """What was inserted, and how long it took."""

    projects: int = 0
    tranches: int = 0
    audit_rows: int = 0
    seconds: float = 0.0
    states: Counter[str] = field(default_factory=Counter)
    due: Counter[str] = field(default_factory=Counter)  # next_due_at (ISO) → projects


def bench_config_dir(workdir: Path) -> Path:
    """A config folder with the shipped campaigns and the synthetic `bench-2022`."""
    target = workdir / "config"
    if not target.exists():
        shutil.copytree(REPO / "config" / "campaigns", target / "campaigns")
        (target / "campaigns" / f"{BENCH_CAMPAIGN_ID}.toml").write_text(BENCH_CAMPAIGN_TOML, encoding="utf-8")
    return target


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


Stamp = Callable[[datetime], Any]


def sqlite_stamp(moment: datetime) -> str:
    """A UTC instant as `UTCDateTime` stores it in SQLite (naive UTC, SQLAlchemy's `YYYY-MM-DD HH:MM:SS.ffffff`)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def postgres_stamp(moment: datetime) -> datetime:
    """A UTC instant as psycopg sends it to a `timestamptz` column."""
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class _StateShape:
    """What every project in one state of one campaign has in common."""

    fields: dict[str, Any]  # state, recorded event parameters, version, next_due_at
    steps: tuple[tuple[str, str | None, str, str | None, str], ...]  # event, source, dest, reason, params JSON
    released: frozenset[int]
    due: datetime | None


def _shape(campaign: Campaign, state: str, now: datetime, stamp: Stamp) -> _StateShape:
    steps = history(state)
    fields: dict[str, Any] = {
        "state": state,
        "selection_group": None,
        "needs_reference": None,
        "vendor": None,
        "configuration_invoice": None,
        "rollout_invoice": None,
        "withdrawal_reason": None,
        "version": 1 + len(steps),
    }
    for event, _, _, params in steps:
        for param in lifecycle.EVENTS_BY_NAME[event].params:
            if param.records and param.name in params:
                fields[param.records] = params[param.name]
    due = next_due_at(campaign, state, now)
    fields["next_due_at"] = stamp(due) if due else None
    return _StateShape(
        fields=fields,
        steps=(
            ("register", None, lifecycle.State.APPLICATION, None, "{}"),
            *(
                (event, source, dest, params.get("reason"), json.dumps(params, ensure_ascii=False, sort_keys=True))
                for event, source, dest, params in steps
            ),
        ),
        released=frozenset(lifecycle.tranches_reached(state)),
        due=due,
    )


def _audit_chain() -> Callable[[list[dict[str, Any]], list[datetime]], None] | None:
    """How to fill the audit rows' hash chain, when the schema has one (`workflow.audit.hash_of`); else None."""
    columns = AuditEntry.__table__.c  # type: ignore[attr-defined]
    if "hash" not in columns or "prev_hash" not in columns:
        return None
    from workflow.audit import GENESIS, hash_of

    def fill(rows: list[dict[str, Any]], moments: list[datetime]) -> None:
        previous = GENESIS
        for row in rows:
            moment = moments[row["seq"] - 1]
            digest = hash_of({**row, "at": moment, "recorded_at": moment}, previous)
            row["prev_hash"], row["hash"] = previous, digest
            previous = digest

    return fill


def _project_rows(
    first_id: int, cohort: Cohort, campaign: Campaign, now: datetime, stamp: Stamp, generated: Generated
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Yield (project row, its tranche rows, its audit rows) for each project of `cohort`.

    Timestamps are given in the driver's own form (`stamp`): the rows go through lightweight `sa.table()`
    clauses, without the per-value `UTCDateTime` processing that would make the generation several times slower.
    """
    shapes = {state: _shape(campaign, state, now, stamp) for state in set(cohort.states)}
    chain = _audit_chain()
    percents = list(campaign.funding.tranches)
    split_cache: dict[int, list[int]] = {}
    for offset in range(cohort.count):
        project_id = first_id + offset
        shape = shapes[cohort.states[offset % len(cohort.states)]]
        kind = "acquisition" if project_id % 3 else "compliance"
        esms, small = 15 + project_id % 16, project_id % 6
        total = campaign.funding.total_cents(kind, esms, small)
        if total not in split_cache:
            split_cache[total] = split_tranches(total, percents)
        created = now - timedelta(days=40, seconds=project_id % 86_400)
        moments = [created + timedelta(days=day) for day in range(len(shape.steps) + 4)]
        days = [stamp(moment) for moment in moments]
        row: dict[str, Any] = {
            "id": project_id,
            "campaign_id": campaign.id,
            "name": f"Grappe synthétique n° {project_id}",
            "kind": kind,
            "services_socles": "mssante,dmp" if project_id % 2 else "mssante,dmp,e-prescription",
            "owner_name": f"Association gestionnaire {project_id}",
            "owner_email": f"dui+{project_id}@grappe.example",
            "esms_count": esms,
            "small_esms_count": small,
            "total_cents": total,
            "created_at": days[0],
            "updated_at": days[len(shape.steps) - 1],
            **shape.fields,
        }
        audit = [
            {
                "project_id": project_id,
                "seq": seq,
                "at": days[seq - 1],
                "recorded_at": days[seq - 1],
                "event": event,
                "source": source,
                "dest": dest,
                "actor": GENERATOR_ACTOR,
                "reason": reason,
                "forced": False,
                "params": params,
            }
            for seq, (event, source, dest, reason, params) in enumerate(shape.steps, 1)
        ]
        if chain is not None:
            chain(audit, moments)
        tranches = [
            {
                "project_id": project_id,
                "number": number,
                "percent": str(percent),
                "amount_cents": amount,
                "released_at": days[number] if number in shape.released else None,
            }
            for number, (percent, amount) in enumerate(zip(percents, split_cache[total], strict=True), 1)
        ]
        generated.states[shape.fields["state"]] += 1
        generated.due[shape.due.isoformat() if shape.due else "never"] += 1
        yield row, tranches, audit


def populate(
    url: str,
    campaigns: dict[str, Campaign],
    cohorts: Sequence[Cohort],
    now: datetime,
    *,
    chunk: int = 10_000,
) -> Generated:
    """Migrate the database at `url` and insert the cohorts' projects as they stand at `now`."""
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        migrate(engine)
        stamp: Stamp = sqlite_stamp if engine.dialect.name == "sqlite" else postgres_stamp
        generated = Generated()
        first_id = 1
        for cohort in cohorts:
            rows = _project_rows(first_id, cohort, campaigns[cohort.campaign], now, stamp, generated)
            remaining = cohort.count
            while remaining > 0:
                take = min(chunk, remaining)
                projects: list[dict[str, Any]] = []
                tranches: list[dict[str, Any]] = []
                audit: list[dict[str, Any]] = []
                for _ in range(take):
                    project, its_tranches, its_audit = next(rows)
                    projects.append(project)
                    tranches.extend(its_tranches)
                    audit.extend(its_audit)
                _insert(engine, projects, tranches, audit)
                generated.projects += len(projects)
                generated.tranches += len(tranches)
                generated.audit_rows += len(audit)
                remaining -= take
            first_id += cohort.count
        _finish(engine)
    finally:
        engine.dispose()
    generated.seconds = time.perf_counter() - started
    return generated


def _light_table(name: str, rows: list[dict[str, Any]]) -> sa.TableClause:
    """A typeless `sa.table()` with the rows' columns: Core INSERT without per-value type processing."""
    return sa.table(name, *(sa.column(key) for key in rows[0]))


def _insert(
    engine: Engine, projects: list[dict[str, Any]], tranches: list[dict[str, Any]], audit: list[dict[str, Any]]
) -> None:
    with engine.begin() as connection:
        for name, rows in (
            (Project.__tablename__, projects),
            (Tranche.__tablename__, tranches),
            (AuditEntry.__tablename__, audit),
        ):
            connection.execute(sa.insert(_light_table(str(name), rows)), rows)


def _finish(engine: Engine) -> None:
    """On PostgreSQL: move the project id sequence past the explicit ids, and ANALYZE (as autovacuum would)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        connection.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('project', 'id'), (SELECT max(id) FROM project))")
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text(f"ANALYZE {', '.join(ANALYZED_TABLES)}"))
