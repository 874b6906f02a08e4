"""How the CLI shows things to people: parsing `key=value` arguments, and text renderings of the views."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from notifications.formatting import format_euros_fr
from states.errors import InvalidArgumentError
from states.money import format_cents
from workflow.campaigns import Campaign

if TYPE_CHECKING:
    from workflow.change import Change

MAX_PARAM_VALUE = 1000


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
        if len(value) > MAX_PARAM_VALUE or any(ord(c) < 32 for c in value):
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
        "released": [
            {"number": t.number, "percent": str(t.percent), "amount_eur": format_cents(t.amount_cents)}
            for t in change.released
        ],
    }


def change_line(change: Change) -> str:
    """A change in one line, for people."""
    line = f"project {change.project_id}: {change.source} -> {change.dest} ({change.event}"
    line += ", forced)" if change.forced else ")"
    for tranche in change.released:
        line += f"; tranche {tranche.number} ({tranche.percent} %) released: {format_euros_fr(tranche.amount_cents)}"
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


def print_project(view: dict[str, Any]) -> None:
    """Print a project for people."""
    print(f"project {view['id']}: {view['name']}")
    print(
        f"  campaign:   {view['campaign']}   kind: {view['kind']}   ESMS: {view['esms']} ({view['small_esms']} small)"
    )
    group = f" (group {view['selection_group']})" if view["selection_group"] else ""
    print(f"  state:      {view['state']} — {view['state_label']}{group}")
    print(f"  owner:      {view['owner']['name']} <{view['owner']['email']}>")
    print(f"  total:      {_fr(view['total_eur'])}   released: {_fr(view['released_eur'])}")
    for tranche in view["tranches"]:
        when = f" on {tranche['released_at']}" if tranche["released_at"] else ""
        print(
            f"  tranche {tranche['number']}: {tranche['percent']:>3} %  {_fr(tranche['amount_eur']):>16}  "
            f"{tranche['status']}{when}"
        )
    deadline = view["next_deadline"]
    if deadline:
        passed = " (passed)" if deadline["passed"] else ""
        print(f"  next deadline: {deadline['name']} {deadline['date']} (until {deadline['at']}){passed}")
    else:
        print("  next deadline: none")


def print_funding(report: list[dict[str, Any]]) -> None:
    """Print the funding report for people."""
    for campaign in report:
        print(f"{campaign['campaign']} — {campaign['name']}")
        print(f"  envelope:  {_fr(campaign['envelope_eur']):>20}")
        print(f"  committed: {_fr(campaign['committed_eur']):>20}  ({campaign['committed_projects']} projects)")
        for tranche in campaign["released"]:
            print(
                f"  released, tranche {tranche['number']} ({tranche['percent']} %): "
                f"{_fr(tranche['amount_eur']):>16}  ({tranche['projects']} projects)"
            )
        print(f"  released:  {_fr(campaign['released_eur']):>20}")
        print(f"  remaining: {_fr(campaign['remaining_eur']):>20}")


def _fr(euros: str) -> str:
    return format_euros_fr(int(Decimal(euros) * 100))
