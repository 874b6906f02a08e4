"""The main job on embedded defaults: the daemon's passes over a simulated campaign, opening to end.

The programme team's actions (the script below) happen in between.

It uses the same engine, sweep and relay as the CLI and the daemon (no shortcut writes), on a fresh SQLite file
with mail written as `.eml` files, and prints the timeline: transitions, tranches, reminders, messages, refusals.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from notifications.formatting import format_euros_fr
from notifications.relay import deliver_due
from notifications.render import KIND_LABELS
from notifications.settings import MailSettings
from states.errors import InvalidArgumentError, RuleRefusedError
from states.lifecycle import DEADLINES_BY_KEY, STATE_LABELS
from states.text import plural
from workflow.amendments import amend
from workflow.campaigns import Campaign
from workflow.clock import SimulatedClock
from workflow.db import make_engine, migrate
from workflow.engine import Workflow
from workflow.messages import queue_todays_digest
from workflow.models import OutboxMessage
from workflow.project_file import ProjectSpec, load_project_file
from workflow.queries import funding_report
from workflow.sweep import sweep

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Step:
    """One thing the programme team does on a day (Paris time)."""

    at: str
    project: str
    event: str
    params: dict[str, str]


SAMPLES = ("grappe-hainaut", "grappe-artois", "grappe-oise", "grappe-ain", "grappe-flandre")
#: The demo's programme officer and the second person who approves a release outside its event (four eyes).
OFFICER = "chargée de mission ESMS"
APPROVER = "directrice de l'autonomie"

SCRIPT = (
    Step("2021-03-10T10:00", "grappe-hainaut", "submit", {}),
    Step("2021-03-22T14:00", "grappe-flandre", "submit", {}),
    Step("2021-03-25T16:30", "grappe-artois", "submit", {}),
    Step("2021-03-31T23:59:59", "grappe-oise", "submit", {}),
    Step("2021-04-02T09:00", "grappe-ain", "submit", {}),
    Step("2021-04-20T11:00", "grappe-hainaut", "select", {"group": "A"}),
    Step("2021-04-20T11:05", "grappe-artois", "select", {"group": "A"}),
    Step("2021-04-20T11:08", "grappe-flandre", "select", {"group": "A"}),
    Step("2021-04-20T11:10", "grappe-oise", "select", {"group": "A"}),  # refused: over the envelope
    Step("2021-04-20T11:12", "grappe-oise", "select", {"group": "B"}),
    Step("2021-04-22T09:00", "grappe-hainaut", "file_needs", {"reference": "RESAH-SAD-2021-0042"}),
    Step("2021-04-23T09:00", "grappe-artois", "file_needs", {"reference": "RESAH-SAD-2021-0051"}),
    Step("2021-04-26T15:00", "grappe-artois", "sign_contract", {"vendor": "Éditeur DUI Artois"}),
    Step("2021-04-28T10:00", "grappe-artois", "sign_agreement", {}),
    Step("2021-05-03T09:00", "grappe-artois", "withdraw", {"reason": "fusion des organismes gestionnaires"}),
    Step("2021-05-04T10:00", "grappe-oise", "promote", {}),
    Step("2021-04-20T14:00", "grappe-ain", "select", {"group": "A"}),
    Step("2021-05-20T15:00", "grappe-hainaut", "sign_contract", {"vendor": "Éditeur DUI Nord"}),
    Step("2021-04-26T10:00", "grappe-ain", "file_needs", {"reference": "RESAH-SAD-2021-0103"}),
    Step("2021-05-03T10:00", "grappe-ain", "sign_contract", {"vendor": "Éditeur DUI Rhône"}),
    # The agreement was signed on paper and the state corrected by hand: the money then takes two people.
    Step("2021-05-10T09:00", "grappe-ain", "force", {"state": "configuration", "reason": "convention papier"}),
    Step("2021-05-10T11:00", "grappe-ain", "release", {"tranche": "1", "reason": "convention signée le 07/05/2021"}),
    Step("2021-06-15T10:00", "grappe-artois", "record_repayment", {"amount": "40000", "reference": "TR-2021-118"}),
    Step("2021-06-29T17:00", "grappe-hainaut", "sign_agreement", {}),
    Step("2021-06-30T12:00", "grappe-oise", "file_needs", {"reference": "RESAH-SAD-2021-0077"}),
    Step("2021-06-30T18:00", "grappe-oise", "sign_contract", {"vendor": "Éditeur DUI Picardie"}),
    Step("2021-07-01T09:00", "grappe-oise", "sign_agreement", {}),  # too late: lapsed at midnight
    Step("2021-09-15T10:00", "grappe-artois", "record_repayment", {"amount": "24000", "reference": "TR-2021-164"}),
    # An ESMS leaves the grappe (its organisation closes it): an amendment, after tranche 1, lowers the total.
    Step("2021-09-01T10:00", "grappe-hainaut", "amend", {"drop_esms": "1", "reason": "fermeture de l'EHPAD site 1"}),
    Step("2021-10-15T10:00", "grappe-hainaut", "finish_configuration", {"invoice": "FAC-2021-311"}),
    # The vendor is late: an amendment (avenant) extends the completion deadline of 29/06/2023.
    Step("2022-02-15T10:00", "grappe-hainaut", "extend", {"until": "2023-12-31", "reason": "avenant n° 1"}),
    Step("2022-03-01T10:00", "grappe-hainaut", "finish_rollout", {"invoice": "FAC-2022-058"}),
    Step("2022-06-01T10:00", "grappe-hainaut", "verify_usage", {"dui_actifs": "72", "ins_qualifiees": "64"}),
    Step("2022-09-01T10:00", "grappe-hainaut", "verify_usage", {"dui_actifs": "86", "ins_qualifiees": "71"}),
)


def run_demo(
    database: Path,
    mail_dir: Path,
    config_dir: Path,
    campaigns: dict[str, Campaign],
    say: Callable[[str], None],
    *,
    audit_key: str | None = None,
) -> None:
    """Load the sample projects into a fresh SQLite file and run the daemon's passes over the simulated calendar.

    Passes run at 00:05 and 08:00 (Paris) every day and after every scripted step, exactly as the daemon would;
    mail goes to `.eml` files in `mail_dir`.
    """
    if database.exists():
        if not _created_by_demo(database):
            raise InvalidArgumentError(
                f"demo: {database} was not created by esms demo: it is left alone (give another --database)"
            )
        database.unlink()
    if mail_dir.exists():
        for old in mail_dir.glob("*.eml"):
            old.unlink()
    engine = make_engine(f"sqlite:///{database}")
    migrate(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA application_id = {DEMO_MARK}")
    clock = SimulatedClock(_paris("2021-02-15T09:00"))
    workflow = Workflow(engine, campaigns, clock, audit_key=audit_key)
    mail = MailSettings(
        smtp_host=None,
        smtp_port=25,
        smtp_tls="none",
        smtp_username=None,
        smtp_password=None,
        smtp_timeout=5,
        mail_from="ESMS numérique <esms-numerique@esms-numerique.invalid>",
        mail_dir=mail_dir,
        admin_emails=("equipe-esms@ars-hdf.example",),
        max_attempts=48,
    )
    say(f"Base de démonstration : {database}")
    say(f"Courriels (fichiers .eml) : {mail_dir}")
    ids: dict[str, int] = {}
    names: dict[int, str] = {}
    specs: dict[str, ProjectSpec] = {}
    for sample in SAMPLES:
        spec = specs[sample] = load_project_file(config_dir / "projects" / f"{sample}.toml")
        ids[sample] = workflow.register(spec, actor="demo")
        names[ids[sample]] = spec.name
        total = spec.grappe.funding_total_cents(campaigns[spec.campaign].funding)
        say(
            f"15/02/2021 09:00  enregistré n° {ids[sample]} {spec.name} ({spec.campaign}, "
            f"{KIND_LABELS[spec.grappe.kind]}, {spec.grappe.esms_count} ESMS) : {format_euros_fr(total)}"
        )
    counts = {"transitions": 0, "tranches": 0, "messages": 0, "refusals": 0, "digests": 0}

    def stamp() -> str:
        return clock.now().astimezone(PARIS).strftime("%d/%m/%Y %H:%M")

    def run_pass() -> None:
        report = sweep(workflow)
        for t in report.transitions:
            counts["transitions"] += 1
            say(
                f"{stamp()}  n° {t.project} {names[t.project]} : {STATE_LABELS[t.source]} → {STATE_LABELS[t.dest]} "
                f"(balayage : {DEADLINES_BY_KEY[t.deadline].label} dépassée)"
            )
        for r in report.reminders:
            say(
                f"{stamp()}  n° {r.project} {names[r.project]} : rappel envoyé, {DEADLINES_BY_KEY[r.deadline].label} "
                f"dans {plural(r.days_before, 'jour', 'jours')}"
            )
        for f in report.flagged:
            say(f"{stamp()}  n° {f.project} {names[f.project]} : sans décision après la date limite, signalé")
        _deliver(engine, clock, mail, say, stamp, counts)

    steps = sorted(SCRIPT, key=lambda step: step.at)
    day = date(2021, 2, 15)
    last_day = date(2022, 9, 30)
    while day <= last_day:
        for moment in (datetime.combine(day, time(0, 5), PARIS), datetime.combine(day, time(8, 0), PARIS)):
            while steps and _paris(steps[0].at) <= moment:
                _play(workflow, clock, steps.pop(0), ids, names, specs, say, stamp, counts)
                run_pass()
            clock.set(moment)
            if moment.hour == 8:
                _digest(engine, workflow, mail, clock)
            run_pass()
        day += timedelta(days=1)
    say("")
    say(
        f"{counts['transitions']} changements d'état, "
        f"{plural(counts['tranches'], 'tranche versée', 'tranches versées')}, "
        f"{plural(counts['refusals'], 'refus', 'refus')}, {counts['messages']} courriels écrits dans {mail_dir} "
        f"(dont {counts['digests']} points quotidiens à {', '.join(mail.admin_emails)})"
    )
    for funding in funding_report(engine, campaigns, None):
        released = ", ".join(f"T{t.number} {format_euros_fr(t.amount_cents)}" for t in funding.released)
        say(
            f"{funding.campaign.id} : enveloppe {format_euros_fr(funding.campaign.envelope_cents)}, engagé "
            f"{format_euros_fr(funding.committed_cents)}, versé {released}, "
            f"disponible {format_euros_fr(funding.remaining_cents)}"
        )
    engine.dispose()


def _play(
    workflow: Workflow,
    clock: SimulatedClock,
    step: Step,
    ids: dict[str, int],
    names: dict[int, str],
    specs: dict[str, ProjectSpec],
    say: Callable[[str], None],
    stamp: Callable[[], str],
    counts: dict[str, int],
) -> None:
    clock.set(_paris(step.at))
    project_id = ids[step.project]
    label = f"n° {project_id} {names[project_id]}"
    try:
        if step.event == "force":
            change = workflow.force(project_id, step.params["state"], step.params["reason"], OFFICER)
        elif step.event == "amend":
            spec = _without_first_esms(specs[step.project], int(step.params["drop_esms"]))
            change = amend(workflow, project_id, spec, step.params["reason"], OFFICER)
        elif step.event == "release":
            number = int(step.params["tranche"])
            change = workflow.release(project_id, number, step.params["reason"], OFFICER, APPROVER)
        else:
            change = workflow.fire(project_id, step.event, step.params, actor="demo")
    except RuleRefusedError as refused:
        counts["refusals"] += 1
        say(f"{stamp()}  {label} : REFUSÉ — {refused}")
        return
    counts["transitions"] += 1
    source = STATE_LABELS.get(change.source or "", change.source or "")
    line = f"{stamp()}  {label} : {source} → {STATE_LABELS[change.dest]} ({step.event})"
    for tranche in change.released:
        counts["tranches"] += 1
        line += f" ; tranche {tranche.number} versée : {format_euros_fr(tranche.amount_cents)}"
    if change.approved_by:
        line += f" sur la parole de {change.actor} et de {change.approved_by}"
    for number in change.pending_milestones:
        line += f" ; tranche {number} atteinte, non versée (un changement forcé ne verse rien)"
    if change.deadline_set and change.event == "extend":
        extension = change.deadline_set
        previous = extension.previous.strftime("%d/%m/%Y") if extension.previous else "aucune"
        line += f" ; {DEADLINES_BY_KEY[extension.key].label} : {previous} → {extension.day.strftime('%d/%m/%Y')}"
    if change.event == "amend":
        line += f" ; {change.reason}"
    if change.amounts:
        line += f" ; {format_euros_fr(sum(change.amounts.values()))} enregistrés"
    say(line)


def _digest(engine: Engine, workflow: Workflow, mail: MailSettings, clock: SimulatedClock) -> None:
    queue_todays_digest(engine, workflow.campaigns, list(mail.admin_emails), clock.now(), PARIS, only_with_news=True)


def _deliver(
    engine: Engine,
    clock: SimulatedClock,
    mail: MailSettings,
    say: Callable[[str], None],
    stamp: Callable[[], str],
    counts: dict[str, int],
) -> None:
    relay = deliver_due(engine, clock, mail)
    if not relay.sent:
        return
    counts["messages"] += relay.sent
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.status == "sent", OutboxMessage.sent_at == clock.now())
        ).all()
        for row in rows:
            if row.template == "digest":
                counts["digests"] += 1  # one a day with news: counted, not listed
                continue
            say(f"{stamp()}      courriel à {', '.join(json.loads(row.recipients))} : {row.subject}")


def _without_first_esms(spec: ProjectSpec, count: int) -> ProjectSpec:
    """The project file's grappe without its first `count` ESMS (an ESMS leaving the grappe)."""
    first, *others = spec.grappe.organisations
    smaller = replace(first, esms=first.esms[count:])
    return replace(spec, grappe=replace(spec.grappe, organisations=(smaller, *others)))


#: Written in the SQLite header of the files the demo creates (`PRAGMA application_id`): the demo deletes and
#: re-creates only files that carry it, never a database it did not make.
DEMO_MARK = 0x45534D44  # "ESMD"


def _created_by_demo(database: Path) -> bool:
    """Tell whether `database` is a SQLite file the demo created."""
    if not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            return bool(connection.execute("PRAGMA application_id").fetchone()[0] == DEMO_MARK)
    except sqlite3.DatabaseError:
        return False


def _paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)
