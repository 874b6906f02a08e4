"""Read-only views of projects, their history and the money, as plain dicts ready for JSON or tables."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from states import lifecycle
from states.errors import UnknownProjectError, UnknownStateError
from states.money import format_cents
from workflow.campaigns import Campaign, get_campaign
from workflow.db import translate_errors
from workflow.models import AuditEntry, Project, Tranche

#: States whose project holds a funding commitment: selected (group A or promoted) and not ended early.
COMMITTED_STATES = lifecycle.MAIN_LINE[lifecycle.MAIN_LINE.index(lifecycle.State.NEEDS_STATEMENT) :]


def iso(moment: datetime | None) -> str | None:
    """Format an instant as ISO-8601 UTC, or None."""
    return moment.isoformat() if moment is not None else None


#: Ids are 32-bit integers in the database (PostgreSQL's `integer`).
MAX_ID = 2**31 - 1


def parse_project_id(text: str) -> int:
    """Parse a project id as typed on the command line."""
    # ASCII digits only ("²" and "١" are digits to Python), within the database's integer range.
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise UnknownProjectError(text)
    return int(text)


def next_deadline(project: Project, campaign: Campaign, now: datetime) -> dict[str, Any] | None:
    """Return the deadline the project's state waits on (`name`, `date`, `at` = the instant it passes), or None."""
    key = lifecycle.DEADLINE_BY_STATE.get(project.state)
    end = campaign.deadline_end(key) if key else None
    if key is None or end is None:
        return None
    return {"name": key, "date": campaign.calendar[key].isoformat(), "at": iso(end), "passed": now >= end}


def project_view(engine: Engine, campaigns: dict[str, Campaign], project_id: int, now: datetime) -> dict[str, Any]:
    """Return what `esms project show` prints."""
    with translate_errors(), Session(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise UnknownProjectError(str(project_id))
        tranches = session.exec(
            select(Tranche).where(Tranche.project_id == project_id).order_by(col(Tranche.number))
        ).all()
    campaign = get_campaign(campaigns, project.campaign_id)
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
            for t in tranches
        ],
        "released_eur": format_cents(sum(t.amount_cents for t in tranches if t.released_at)),
        "needs_reference": project.needs_reference,
        "vendor": project.vendor,
        "configuration_invoice": project.configuration_invoice,
        "rollout_invoice": project.rollout_invoice,
        "withdrawal_reason": project.withdrawal_reason,
        "next_deadline": next_deadline(project, campaign, now),
        "version": project.version,
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
    }


def list_projects(engine: Engine, campaign: str | None, state: str | None) -> list[dict[str, Any]]:
    """Return the projects, filtered by campaign and state, oldest first."""
    if state is not None and state not in lifecycle.STATES:
        raise UnknownStateError(state, list(lifecycle.STATES))
    query = select(Project).order_by(col(Project.id))
    if campaign is not None:
        query = query.where(Project.campaign_id == campaign)
    if state is not None:
        query = query.where(Project.state == state)
    with translate_errors(), Session(engine) as session:
        projects = session.exec(query).all()
    return [
        {
            "id": p.id,
            "name": p.name,
            "campaign": p.campaign_id,
            "kind": p.kind,
            "state": p.state,
            "selection_group": p.selection_group,
            "total_eur": format_cents(p.total_cents),
        }
        for p in projects
    ]


def history(engine: Engine, project_id: int) -> list[dict[str, Any]]:
    """Return every change of a project, oldest first."""
    with translate_errors(), Session(engine) as session:
        if session.get(Project, project_id) is None:
            raise UnknownProjectError(str(project_id))
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.project_id == project_id).order_by(col(AuditEntry.seq))
        ).all()
    return [
        {
            "seq": e.seq,
            "at": iso(e.at),
            "recorded_at": iso(e.recorded_at),
            "event": e.event,
            "source": e.source,
            "dest": e.dest,
            "actor": e.actor,
            "reason": e.reason,
            "forced": e.forced,
            "params": json.loads(e.params),
        }
        for e in entries
    ]


def funding_report(engine: Engine, campaigns: dict[str, Campaign], campaign_id: str | None) -> list[dict[str, Any]]:
    """Per campaign: envelope, committed, released per tranche, remaining (all in euros, two decimals).

    Committed is the total of every project still on its way to funding or completed, plus what was released
    to projects that later ended early (released money is spent).
    """
    chosen = [get_campaign(campaigns, campaign_id)] if campaign_id else [campaigns[k] for k in sorted(campaigns)]
    report = []
    with translate_errors(), Session(engine) as session:
        for campaign in chosen:
            live = session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(Project.total_cents), 0), sa.func.count()).where(
                    col(Project.campaign_id) == campaign.id, col(Project.state).in_(COMMITTED_STATES)
                )
            ).one()
            released_rows = session.execute(
                sa.select(col(Tranche.number), sa.func.sum(Tranche.amount_cents), sa.func.count())
                .join(Project, col(Project.id) == col(Tranche.project_id))
                .where(col(Project.campaign_id) == campaign.id, col(Tranche.released_at).is_not(None))
                .group_by(col(Tranche.number))
                .order_by(col(Tranche.number))
            ).all()
            spent_elsewhere = session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(Tranche.amount_cents), 0))
                .join(Project, col(Project.id) == col(Tranche.project_id))
                .where(
                    col(Project.campaign_id) == campaign.id,
                    col(Project.state).not_in(COMMITTED_STATES),
                    col(Tranche.released_at).is_not(None),
                )
            ).scalar_one()
            committed = int(live[0]) + int(spent_elsewhere)
            released = {int(n): (int(total), int(count)) for n, total, count in released_rows}
            report.append(
                {
                    "campaign": campaign.id,
                    "name": campaign.name,
                    "envelope_eur": format_cents(campaign.envelope_cents),
                    "committed_eur": format_cents(committed),
                    "committed_projects": int(live[1]),
                    "released": [
                        {
                            "number": n,
                            "percent": str(p),
                            "amount_eur": format_cents(released.get(n, (0, 0))[0]),
                            "projects": released.get(n, (0, 0))[1],
                        }
                        for n, p in enumerate(campaign.funding.tranches, 1)
                    ],
                    "released_eur": format_cents(sum(t for t, _ in released.values())),
                    "remaining_eur": format_cents(campaign.envelope_cents - committed),
                }
            )
    return report
