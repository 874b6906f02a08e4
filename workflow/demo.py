"""A guided run on embedded defaults: sample grappes walked through a campaign's life cycle on a simulated clock.

It uses the same engine as the CLI and the daemon (no shortcut writes), on a fresh SQLite file, and prints what
happens, refusals included, then the funding report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from workflow.campaigns import Campaign
from workflow.clock import SimulatedClock
from workflow.db import make_engine, migrate
from workflow.engine import Workflow
from workflow.errors import RuleRefusedError
from workflow.money import format_euros_fr
from workflow.project_file import load_project_file
from workflow.queries import funding_report

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Step:
    """One thing the programme team does on a day (Paris time)."""

    at: str
    project: str
    event: str
    params: dict[str, str]


SAMPLES = ("grappe-hainaut", "grappe-artois", "grappe-oise", "grappe-ain")

SCRIPT = (
    Step("2021-03-10T10:00", "grappe-hainaut", "submit", {}),
    Step("2021-03-25T16:30", "grappe-artois", "submit", {}),
    Step("2021-03-31T23:59:59", "grappe-oise", "submit", {}),
    Step("2021-04-02T09:00", "grappe-ain", "submit", {}),
    Step("2021-04-20T11:00", "grappe-hainaut", "select", {"group": "A"}),
    Step("2021-04-20T11:05", "grappe-artois", "select", {"group": "A"}),
    Step("2021-04-20T11:10", "grappe-oise", "select", {"group": "B"}),
    Step("2021-04-22T09:00", "grappe-hainaut", "file_needs", {"reference": "RESAH-SAD-2021-0042"}),
    Step("2021-05-03T09:00", "grappe-artois", "withdraw", {"reason": "fusion des organismes gestionnaires"}),
    Step("2021-05-04T10:00", "grappe-oise", "promote", {}),
    Step("2021-05-12T14:00", "grappe-ain", "select", {"group": "A"}),
    Step("2021-05-20T15:00", "grappe-hainaut", "sign_contract", {"vendor": "Éditeur DUI Nord"}),
    Step("2021-06-29T17:00", "grappe-hainaut", "sign_agreement", {}),
    Step("2021-06-30T12:00", "grappe-oise", "file_needs", {"reference": "RESAH-SAD-2021-0077"}),
    Step("2021-06-30T18:00", "grappe-oise", "sign_contract", {"vendor": "Éditeur DUI Picardie"}),
    Step("2021-07-01T09:00", "grappe-oise", "sign_agreement", {}),
    Step("2021-10-15T10:00", "grappe-hainaut", "finish_configuration", {"invoice": "FAC-2021-311"}),
    Step("2022-03-01T10:00", "grappe-hainaut", "finish_rollout", {"invoice": "FAC-2022-058"}),
    Step("2022-06-01T10:00", "grappe-hainaut", "verify_usage", {"dui_actifs": "72", "ins_qualifiees": "64"}),
    Step("2022-09-01T10:00", "grappe-hainaut", "verify_usage", {"dui_actifs": "86", "ins_qualifiees": "71"}),
)


def run_demo(database: Path, config_dir: Path, campaigns: dict[str, Campaign], say: Callable[[str], None]) -> None:
    """Load the sample projects into a fresh SQLite file at `database` and walk them through the script."""
    if database.exists():
        database.unlink()
    engine = make_engine(f"sqlite:///{database}")
    migrate(engine)
    clock = SimulatedClock(_paris("2021-02-20T09:00"))
    workflow = Workflow(engine, campaigns, clock)
    say(f"Demo database: {database}")
    ids: dict[str, int] = {}
    for sample in SAMPLES:
        spec = load_project_file(config_dir / "projects" / f"{sample}.toml")
        ids[sample] = workflow.register(spec, actor="demo")
        total = spec.grappe.funding_total_cents(campaigns[spec.campaign])
        say(
            f"2021-02-20  registered #{ids[sample]} {spec.name} ({spec.campaign}, {spec.grappe.kind}, "
            f"{spec.grappe.esms_count} ESMS): {format_euros_fr(total)}"
        )
    names = {sample: load_project_file(config_dir / "projects" / f"{sample}.toml").name for sample in SAMPLES}
    for step in SCRIPT:
        clock.set(_paris(step.at))
        day = step.at[:10]
        label = f"#{ids[step.project]} {names[step.project]}"
        try:
            change = workflow.fire(ids[step.project], step.event, step.params, actor="demo")
        except RuleRefusedError as refused:
            say(f"{day}  {label}: REFUSED — {refused}")
            continue
        line = f"{day}  {label}: {change.source} → {change.dest} ({step.event})"
        for tranche in change.released:
            line += f"; tranche {tranche.number} released: {format_euros_fr(tranche.amount_cents)}"
        say(line)
    say("")
    for campaign in funding_report(engine, campaigns, None):
        released = ", ".join(f"T{t['number']} {t['amount_eur']}" for t in campaign["released"])
        say(
            f"{campaign['campaign']}: envelope {campaign['envelope_eur']} €, committed {campaign['committed_eur']} €, "
            f"released {released}, remaining {campaign['remaining_eur']} €"
        )
    engine.dispose()


def _paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)
