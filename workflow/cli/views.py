"""How the CLI shows things to people: parsing `key=value` arguments, and text renderings of the views."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from notifications.formatting import format_euros_fr
from states import lifecycle
from states.errors import InvalidArgumentError, UnknownProjectError
from states.money import format_cents
from states.text import FIELD_LIMITS, PARAM_LIMIT, has_control_characters, plural
from workflow.campaigns import Campaign
from workflow.cli.runtime import print_table
from workflow.queries import CampaignFunding, HistoryRow, NextDeadline, ProjectRow, ProjectView, UpcomingDeadline

if TYPE_CHECKING:
    from notifications.relay import RelayReport
    from workflow.change import Change

#: Where instants are shown when no campaign says otherwise.
PARIS = ZoneInfo("Europe/Paris")
MAX_PARAM_VALUE = max(PARAM_LIMIT, *FIELD_LIMITS.values())  # the engine checks each parameter's own limit
#: Ids are 32-bit integers in the database (PostgreSQL's `integer`).
MAX_ID = 2**31 - 1


def parse_id(text: str) -> int | None:
    """Parse an id as typed on the command line: ASCII digits within the database's range, else None."""
    # "²" and "١" are digits to Python: only ASCII ones are ids.
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        return None
    return int(text)


def parse_project_id(text: str) -> int:
    """Parse a project id as typed on the command line; anything else is an unknown project."""
    project_id = parse_id(text)
    if project_id is None:
        raise UnknownProjectError(text)
    return project_id


def iso(moment: datetime | None) -> str | None:
    """An instant as ISO-8601 UTC for JSON, or None."""
    return moment.isoformat() if moment is not None else None


def parse_params(args: list[str]) -> dict[str, str]:
    """Parse `key=value` event arguments; a missing `=`, an empty key or a repeated key is bad input."""
    params: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidArgumentError(f"argument {arg!r} is not of the form key=value")
        if key in params:
            raise InvalidArgumentError(f"argument {key!r} is given twice")
        if len(value) > MAX_PARAM_VALUE or has_control_characters(value):
            raise InvalidArgumentError(f"argument {key!r}: value too long or with control characters")
        params[key] = value.strip()
    return params


def change_document(change: Change) -> dict[str, Any]:
    """A change as a JSON document."""
    return {
        "id": change.project_id,
        "event": change.event,
        "source": change.source,
        "dest": change.dest,
        "state": change.dest,
        "at": change.at.isoformat(),
        "actor": change.actor,
        "forced": change.forced,
        "reason": change.reason,
        "approved_by": change.approved_by,
        "pending_milestones": list(change.pending_milestones),
        "released": [
            {"number": t.number, "percent": str(t.percent), "amount_eur": format_cents(t.amount_cents)}
            for t in change.released
        ],
    }


def change_line(change: Change) -> str:
    """A change in one line, for people (in French)."""
    source = lifecycle.STATE_LABELS.get(change.source or "", change.source or "")
    dest = lifecycle.STATE_LABELS[change.dest]
    line = f"projet {change.project_id} : {source} → {dest} ({change.event}"
    line += ", forcé)" if change.forced else ")"
    for tranche in change.released:
        line += f" ; tranche {tranche.number} ({tranche.percent} %) versée : {format_euros_fr(tranche.amount_cents)}"
    if change.approved_by:
        line += f" ; approuvé par {change.approved_by}"
    for number in change.pending_milestones:
        line += f" ; tranche {number} atteinte mais non versée (esms release {change.project_id} {number})"
    return line


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    """A campaign in one row."""
    return {
        "id": campaign.id,
        "name": campaign.name,
        "region": campaign.region,
        **{key: day.isoformat() for key, day in campaign.calendar.items()},
        "envelope_eur": format_cents(campaign.envelope_cents),
    }


def campaign_detail(campaign: Campaign) -> dict[str, Any]:
    """A campaign in full."""
    funding = campaign.funding
    return {
        **campaign_summary(campaign),
        "timezone": str(campaign.timezone),
        "file": campaign.path,
        "calendar": {key: day.isoformat() for key, day in campaign.calendar.items()},
        "funding": {
            "acquisition_per_esms_eur": format_cents(funding.acquisition_per_esms_cents),
            "compliance_per_esms_eur": format_cents(funding.compliance_per_esms_cents),
            "equipment_per_small_esms_eur": format_cents(funding.equipment_per_small_esms_cents),
            "max_funded_esms": funding.max_funded_esms,
            "tranches": [str(p) for p in funding.tranches],
        },
        "eligibility": {
            "min_organisations": campaign.eligibility.min_organisations,
            "min_esms": campaign.eligibility.min_esms,
            "min_services_socles": campaign.eligibility.min_services_socles,
        },
        "reminders_days_before": list(campaign.reminder_days),
        "usage_criteria": [{"id": c.id, "label": c.label, "min": str(c.min)} for c in campaign.usage_criteria],
    }


def print_mapping(document: dict[str, Any], indent: str = "") -> None:
    """Print a nested mapping as indented `key: value` lines."""
    for key, value in document.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            print_mapping(value, indent + "  ")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{indent}{key}:")
            for item in value:
                print(f"{indent}  - " + ", ".join(f"{k}={v}" for k, v in item.items()))
        elif isinstance(value, list):
            print(f"{indent}{key}: {', '.join(str(v) for v in value) or '-'}")
        else:
            print(f"{indent}{key}: {'-' if value is None else value}")


def project_document(view: ProjectView) -> dict[str, Any]:
    """A project as the JSON of `esms project show --json`."""
    project = view.project
    deadline = view.next_deadline
    return {
        "id": project.id,
        "name": project.name,
        "campaign": project.campaign_id,
        "kind": project.kind,
        "state": project.state,
        "state_label": lifecycle.STATE_LABELS[project.state],
        "selection_group": project.selection_group,
        "owner": {"name": project.owner_name, "email": project.owner_email},
        "esms": project.esms_count,
        "small_esms": project.small_esms_count,
        "services_socles": [s for s in project.services_socles.split(",") if s],
        "total_eur": format_cents(project.total_cents),
        "tranches": [
            {
                "number": t.number,
                "percent": t.percent,
                "amount_eur": format_cents(t.amount_cents),
                "status": "released" if t.released_at else "pending",
                "released_at": iso(t.released_at),
            }
            for t in view.tranches
        ],
        "released_eur": format_cents(view.released_cents),
        "needs_reference": project.needs_reference,
        "vendor": project.vendor,
        "configuration_invoice": project.configuration_invoice,
        "rollout_invoice": project.rollout_invoice,
        "withdrawal_reason": project.withdrawal_reason,
        "recovery": (
            {
                "due_eur": format_cents(view.funds.released_cents),
                "repaid_eur": format_cents(view.funds.repaid_cents),
                "waived_eur": format_cents(view.funds.waived_cents),
                "balance_eur": format_cents(view.funds.balance_cents),
            }
            if view.in_recovery
            else None
        ),
        "next_deadline": (
            {"name": deadline.name, "date": deadline.day, "at": iso(deadline.at), "passed": deadline.passed}
            if deadline
            else None
        ),
        "documents": [{"event": d.event, "key": d.key, "value": d.value, "at": iso(d.at)} for d in view.documents],
        "version": project.version,
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
    }


def project_row(row: ProjectRow) -> dict[str, Any]:
    """A project as one item of `esms project list --json`."""
    project = row.project
    return {
        "id": project.id,
        "name": project.name,
        "campaign": project.campaign_id,
        "kind": project.kind,
        "state": project.state,
        "selection_group": project.selection_group,
        "owner": {"name": project.owner_name, "email": project.owner_email},
        "esms": project.esms_count,
        "total_eur": format_cents(project.total_cents),
        "next_deadline": deadline_json(row.next_deadline),
    }


def deadline_json(deadline: NextDeadline | None) -> dict[str, Any] | None:
    """A next deadline as JSON: its name, its calendar day, the UTC instant it passes, whether it has."""
    if deadline is None:
        return None
    return {"name": deadline.name, "date": deadline.day, "at": iso(deadline.at), "passed": deadline.passed}


def deadline_document(row: UpcomingDeadline) -> dict[str, Any]:
    """One item of `esms deadlines --json`."""
    project = row.project
    return {
        "id": project.id,
        "name": project.name,
        "campaign": project.campaign_id,
        "state": project.state,
        "deadline": {"name": row.deadline.name, "date": row.deadline.day, "at": iso(row.deadline.at)},
        "days_left": row.days_left,
        "owner": {"name": project.owner_name, "email": project.owner_email},
        "reminders_sent": row.reminders_sent,
    }


def print_project_rows(rows: list[ProjectRow], campaigns: dict[str, Campaign]) -> None:
    """Print the project list for people, in French."""
    table = [
        {
            "N°": row.project.id,
            "Projet": row.project.name,
            "Campagne": row.project.campaign_id,
            "État": lifecycle.STATE_LABELS[row.project.state],
            "Groupe": row.project.selection_group,
            "ESMS": row.project.esms_count,
            "Montant": format_euros_fr(row.project.total_cents),
            "Prochaine échéance": _deadline_text(row.next_deadline),
        }
        for row in rows
    ]
    print_table(table, ["N°", "Projet", "Campagne", "État", "Groupe", "ESMS", "Montant", "Prochaine échéance"])
    print(plural(len(rows), "projet", "projets"))


def print_deadlines(rows: list[UpcomingDeadline], campaigns: dict[str, Campaign], days: int) -> None:
    """Print the owners to chase, soonest deadline first, in French."""
    table = [
        {
            "N°": row.project.id,
            "Projet": row.project.name,
            "État": lifecycle.STATE_LABELS[row.project.state],
            "Échéance": _deadline_text(row.deadline),
            "Jours restants": row.days_left,
            "Porteur": f"{row.project.owner_name} <{row.project.owner_email}>",
            "Relances": row.reminders_sent,
        }
        for row in rows
    ]
    print_table(table, ["N°", "Projet", "État", "Échéance", "Jours restants", "Porteur", "Relances"])
    print(f"{plural(len(rows), 'projet', 'projets')} avec une échéance dans les {plural(days, 'jour', 'jours')}")


def _deadline_text(deadline: NextDeadline | None) -> str | None:
    if deadline is None:
        return None
    label = lifecycle.DEADLINES_BY_KEY[deadline.name].label
    day = date.fromisoformat(deadline.day).strftime("%d/%m/%Y")
    return f"{label} : {day}" + (" (dépassée)" if deadline.passed else "")


def history_document(row: HistoryRow) -> dict[str, Any]:
    """One change as an item of `esms project history --json`."""
    return {
        "seq": row.seq,
        "at": iso(row.at),
        "recorded_at": iso(row.recorded_at),
        "event": row.event,
        "source": row.source,
        "dest": row.dest,
        "actor": row.actor,
        "reason": row.reason,
        "forced": row.forced,
        "approved_by": row.approved_by,
        "params": row.params,
    }


def funding_document(funding: CampaignFunding) -> dict[str, Any]:
    """One campaign's money as an item of `esms funding --json`."""
    return {
        "campaign": funding.campaign.id,
        "name": funding.campaign.name,
        "envelope_eur": format_cents(funding.campaign.envelope_cents),
        "committed_eur": format_cents(funding.committed_cents),
        "committed_projects": funding.committed_projects,
        "released": [
            {
                "number": t.number,
                "percent": str(t.percent),
                "amount_eur": format_cents(t.amount_cents),
                "projects": t.projects,
            }
            for t in funding.released
        ],
        "released_eur": format_cents(funding.released_cents),
        "remaining_eur": format_cents(funding.remaining_cents),
        "pipeline_eur": format_cents(funding.pipeline_cents),
        "waitlisted_eur": format_cents(funding.waitlisted_cents),
        "to_recover_eur": format_cents(funding.to_recover_cents),
        "recovered_eur": format_cents(funding.recovered_cents),
    }


def local(moment: datetime, zone: ZoneInfo = PARIS) -> str:
    """An instant as people read it: JJ/MM/AAAA HH:MM in the campaign's time zone."""
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def day_fr(day: date) -> str:
    """A calendar day as people read it: JJ/MM/AAAA."""
    return day.strftime("%d/%m/%Y")


KIND_LABELS = {"acquisition": "acquisition d'un DUI", "compliance": "mise en conformité d'un DUI"}


def print_project(view: ProjectView, zone: ZoneInfo = PARIS) -> None:
    """Print a project for people, in French."""
    project = view.project
    print(f"projet {project.id} : {project.name}")
    print(
        f"  campagne :  {project.campaign_id}   type : {KIND_LABELS.get(project.kind, project.kind)}   "
        f"ESMS : {project.esms_count} (dont {plural(project.small_esms_count, 'petit', 'petits')})"
    )
    group = f" (groupe {project.selection_group})" if project.selection_group else ""
    print(f"  état :      {lifecycle.STATE_LABELS[project.state]}{group}")
    print(f"  porteur :   {project.owner_name} <{project.owner_email}>")
    print(f"  montant :   {format_euros_fr(project.total_cents)}   versé : {format_euros_fr(view.released_cents)}")
    for tranche in view.tranches:
        status = f"versée le {local(tranche.released_at, zone)}" if tranche.released_at else "à verser"
        amount = format_euros_fr(tranche.amount_cents)
        print(f"  tranche {tranche.number} : {tranche.percent:>3} %  {amount:>16}  {status}")
    if view.in_recovery:
        funds = view.funds
        print(
            f"  reversement : dû {format_euros_fr(funds.released_cents)}, "
            f"reversé {format_euros_fr(funds.repaid_cents)}, abandonné {format_euros_fr(funds.waived_cents)}, "
            f"reste {format_euros_fr(funds.balance_cents)}"
        )
    print("  organismes et ESMS :")
    for organisation in view.grappe.organisations:
        count = plural(len(organisation.esms), "ESMS", "ESMS")
        print(f"    {organisation.name} (FINESS {organisation.finess}) : {count}")
        for esms in organisation.esms:
            small = ", petit ESMS" if esms.small else ""
            print(f"      {esms.finess}  {esms.name} ({esms.category}{small})")
    if view.documents:
        print("  documents :")
        for document in view.documents:
            print(f"    {local(document.at, zone)}  {document.event} : {document.key} = {document.value}")
    deadline = view.next_deadline
    if deadline:
        passed = " (dépassée)" if deadline.passed else ""
        label = lifecycle.DEADLINES_BY_KEY[deadline.name].label
        print(f"  prochaine échéance : {label}, le {day_fr(date.fromisoformat(deadline.day))} inclus{passed}")
    else:
        print("  prochaine échéance : aucune")


def print_funding(report: list[CampaignFunding]) -> None:
    """Print the funding report for people, in French."""
    for funding in report:
        print(f"{funding.campaign.id} — {funding.campaign.name}")
        print(f"  enveloppe :  {format_euros_fr(funding.campaign.envelope_cents):>20}")
        print(
            f"  engagé :     {format_euros_fr(funding.committed_cents):>20}  "
            f"({plural(funding.committed_projects, 'projet', 'projets')})"
        )
        for tranche in funding.released:
            print(
                f"  versé, tranche {tranche.number} ({tranche.percent} %) : "
                f"{format_euros_fr(tranche.amount_cents):>16}  ({plural(tranche.projects, 'projet', 'projets')})"
            )
        print(f"  versé :      {format_euros_fr(funding.released_cents):>20}")
        print(f"  disponible : {format_euros_fr(funding.remaining_cents):>20}")
        print(f"  en candidature ou instruction : {format_euros_fr(funding.pipeline_cents)}")
        print(f"  en liste d'attente : {format_euros_fr(funding.waitlisted_cents)}")
        print(
            f"  à reverser : {format_euros_fr(funding.to_recover_cents)}   "
            f"reversé : {format_euros_fr(funding.recovered_cents)}"
        )


def mail_summary(relay: RelayReport) -> str:
    """What a relay pass did, in one French line."""
    return (
        f"{plural(relay.sent, 'envoyé', 'envoyés')}, {plural(relay.partial, 'partiel', 'partiels')}, "
        f"{relay.retried} à réessayer, {plural(relay.dead, 'abandonné', 'abandonnés')}"
    )


def print_history(rows: list[HistoryRow], zone: ZoneInfo = PARIS) -> None:
    """Print a project's history for people, in French: when, what, who, why."""
    table = [
        {
            "N°": row.seq,
            "Date": local(row.at, zone),
            "Événement": row.event,
            "De": lifecycle.STATE_LABELS.get(row.source or "", row.source),
            "Vers": lifecycle.STATE_LABELS.get(row.dest, row.dest),
            "Acteur": row.actor + (f" (approuvé par {row.approved_by})" if row.approved_by else ""),
            "Forcé": "oui" if row.forced else "",
            "Motif": row.reason,
        }
        for row in rows
    ]
    print_table(table, ["N°", "Date", "Événement", "De", "Vers", "Acteur", "Forcé", "Motif"])


def print_campaigns(campaigns: list[Campaign]) -> None:
    """Print the campaigns for people, in French."""

    def day(campaign: Campaign, key: str) -> str | None:
        found = campaign.calendar.get(key)
        return day_fr(found) if found else None

    table = [
        {
            "Campagne": c.id,
            "Région": c.region,
            "Ouverture": day(c, "opens"),
            "Candidatures": day(c, "application_deadline"),
            "Sélection": day(c, "selection_deadline"),
            "Convention": day(c, "agreement_deadline"),
            "Enveloppe": format_euros_fr(c.envelope_cents),
        }
        for c in campaigns
    ]
    print_table(table, ["Campagne", "Région", "Ouverture", "Candidatures", "Sélection", "Convention", "Enveloppe"])
