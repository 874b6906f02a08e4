"""Read-only views of projects, their history and the money, as typed records (money in cents, instants in UTC).

The front ends format them: JSON documents and French text in `workflow.cli.views`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from states import lifecycle
from states.errors import UnknownProjectError, UnknownStateError
from states.grappe import Grappe
from states.guards import Funds
from workflow import programme
from workflow.calendars import for_project
from workflow.campaigns import Campaign, get_campaign
from workflow.db import translate_errors
from workflow.engine import load_grappe
from workflow.models import AuditEntry, OutboxMessage, Project, Tranche
from workflow.programme import COMMITTED_STATES, funds_of


@dataclass(frozen=True, kw_only=True)
class NextDeadline:
    """The deadline a project's state waits on: its calendar day, and the first instant after it."""

    name: str
    day: str  # ISO date, the campaign's calendar day
    at: datetime  # the instant it passes (UTC)
    passed: bool


@dataclass(frozen=True, kw_only=True)
class TrancheView:
    """One tranche of a project."""

    number: int
    percent: str
    amount_cents: int
    released_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Document:
    """A piece of evidence an event recorded (a RESAH reference, a vendor, an invoice, an extension's date).

    Every one is kept, in the order the history recorded them.
    """

    event: str
    key: str
    value: str
    at: datetime


@dataclass(frozen=True, kw_only=True)
class ProjectView:
    """A project as `esms project show` shows it."""

    project: Project
    tranches: tuple[TrancheView, ...]
    next_deadline: NextDeadline | None
    funds: Funds
    documents: tuple[Document, ...]
    grappe: Grappe

    @property
    def in_recovery(self) -> bool:
        """Whether the project owes (or owed) released money back."""
        return self.project.state in lifecycle.RECOVERY_STATES

    @property
    def released_cents(self) -> int:
        """What has been paid so far."""
        return sum(t.amount_cents for t in self.tranches if t.released_at is not None)


def next_deadline(project: Project, campaign: Campaign, now: datetime) -> NextDeadline | None:
    """Return the deadline the project's state waits on, or None."""
    key = lifecycle.DEADLINE_BY_STATE.get(project.state)
    end = campaign.deadline_end(key) if key else None
    if key is None or end is None:
        return None
    return NextDeadline(name=key, day=campaign.calendar[key].isoformat(), at=end, passed=now >= end)


def project_view(engine: Engine, campaigns: dict[str, Campaign], project_id: int, now: datetime) -> ProjectView:
    """Return what `esms project show` prints."""
    with translate_errors(), Session(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise UnknownProjectError(str(project_id))
        tranches = session.exec(
            select(Tranche).where(Tranche.project_id == project_id).order_by(col(Tranche.number))
        ).all()
        funds = funds_of(session, project)
        documents = _documents(session, project_id)
        grappe = load_grappe(session, project)
    campaign = for_project(get_campaign(campaigns, project.campaign_id), project)
    return ProjectView(
        project=project,
        tranches=tuple(
            TrancheView(number=t.number, percent=t.percent, amount_cents=t.amount_cents, released_at=t.released_at)
            for t in tranches
        ),
        next_deadline=next_deadline(project, campaign, now),
        funds=funds,
        documents=documents,
        grappe=grappe,
    )


def _documents(session: Session, project_id: int) -> tuple[Document, ...]:
    """The evidence the project's events recorded, read from its audit log (the log is the record)."""
    documents: list[Document] = []
    for event, params, at in session.execute(
        sa.select(col(AuditEntry.event), col(AuditEntry.params), col(AuditEntry.at))
        .where(col(AuditEntry.project_id) == project_id, col(AuditEntry.forced).is_(False))
        .order_by(col(AuditEntry.seq))
    ).all():
        spec = lifecycle.EVENTS_BY_NAME.get(event)
        if spec is not None:
            documents.extend(
                Document(event=event, key=key, value=value, at=at) for key, value in spec.documents(json.loads(params))
            )
    return tuple(documents)


@dataclass(frozen=True, kw_only=True)
class ProjectRow:
    """A project in a list, with its next deadline."""

    project: Project
    next_deadline: NextDeadline | None


def project_rows(
    engine: Engine, campaigns: dict[str, Campaign], campaign: str | None, state: str | None, now: datetime
) -> list[ProjectRow]:
    """The projects of `list_projects`, each with the deadline its state waits on."""
    rows = []
    for project in list_projects(engine, campaign, state):
        known = campaigns.get(project.campaign_id)
        deadline = next_deadline(project, for_project(known, project), now) if known else None
        rows.append(ProjectRow(project=project, next_deadline=deadline))
    return rows


def list_projects(engine: Engine, campaign: str | None, state: str | None) -> list[Project]:
    """Return the projects, filtered by campaign and state, oldest first."""
    if state is not None and state not in lifecycle.STATES:
        raise UnknownStateError(state, list(lifecycle.STATES))
    query = select(Project).order_by(col(Project.id))
    if campaign is not None:
        query = query.where(Project.campaign_id == campaign)
    if state is not None:
        query = query.where(Project.state == state)
    with translate_errors(), Session(engine) as session:
        return list(session.exec(query).all())


@dataclass(frozen=True, kw_only=True)
class HistoryRow:
    """One change of a project, as the audit log keeps it."""

    seq: int
    at: datetime
    recorded_at: datetime
    event: str
    source: str | None
    dest: str
    actor: str
    reason: str | None
    forced: bool
    approved_by: str | None
    params: dict[str, Any]


def history(engine: Engine, project_id: int) -> list[HistoryRow]:
    """Return every change of a project, oldest first."""
    with translate_errors(), Session(engine) as session:
        if session.get(Project, project_id) is None:
            raise UnknownProjectError(str(project_id))
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.project_id == project_id).order_by(col(AuditEntry.seq))
        ).all()
    return [
        HistoryRow(
            seq=e.seq,
            at=e.at,
            recorded_at=e.recorded_at,
            event=e.event,
            source=e.source,
            dest=e.dest,
            actor=e.actor,
            reason=e.reason,
            forced=e.forced,
            approved_by=e.approved_by,
            params=json.loads(e.params),
        )
        for e in entries
    ]


@dataclass(frozen=True, kw_only=True)
class TrancheFunding:
    """What a campaign released of one tranche number, over how many projects."""

    number: int
    percent: Decimal
    amount_cents: int
    projects: int


@dataclass(frozen=True, kw_only=True)
class CampaignFunding:
    """A campaign's envelope against what its selections committed and what was released."""

    campaign: Campaign
    committed_cents: int
    committed_projects: int
    released: tuple[TrancheFunding, ...]
    pipeline_cents: int  # totals of the projects in application and selection
    waitlisted_cents: int
    to_recover_cents: int  # what projects in recovery still owe
    recovered_cents: int  # what was repaid

    @property
    def released_cents(self) -> int:
        """Everything released, all tranches together."""
        return sum(t.amount_cents for t in self.released)

    @property
    def remaining_cents(self) -> int:
        """The envelope less what is committed (never below zero in a database the engine alone wrote)."""
        return self.campaign.envelope_cents - self.committed_cents


def funding_report(engine: Engine, campaigns: dict[str, Campaign], campaign_id: str | None) -> list[CampaignFunding]:
    """Per campaign: envelope, committed, released per tranche, remaining, and the money on its way or owed back.

    Committed follows `workflow.programme`: the total of every project selected and not ended early, plus what
    projects that ended after a release kept of it.
    """
    chosen = [get_campaign(campaigns, campaign_id)] if campaign_id else [campaigns[k] for k in sorted(campaigns)]
    report = []
    with translate_errors(), Session(engine) as session:
        for campaign in chosen:
            committed_projects = session.execute(
                sa.select(sa.func.count()).where(
                    col(Project.campaign_id) == campaign.id, col(Project.state).in_(COMMITTED_STATES)
                )
            ).scalar_one()
            released_rows = session.execute(
                sa.select(col(Tranche.number), sa.func.sum(Tranche.amount_cents), sa.func.count())
                .join(Project, col(Project.id) == col(Tranche.project_id))
                .where(col(Project.campaign_id) == campaign.id, col(Tranche.released_at).is_not(None))
                .group_by(col(Tranche.number))
                .order_by(col(Tranche.number))
            ).all()
            by_state = {
                str(state): int(total)
                for state, total in session.execute(
                    sa.select(col(Project.state), sa.func.sum(Project.total_cents))
                    .where(col(Project.campaign_id) == campaign.id)
                    .group_by(col(Project.state))
                ).all()
            }
            repaid = session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(Project.repaid_cents), 0)).where(
                    col(Project.campaign_id) == campaign.id
                )
            ).scalar_one()
            released = {int(n): (int(total), int(count)) for n, total, count in released_rows}
            report.append(
                CampaignFunding(
                    campaign=campaign,
                    committed_cents=programme.committed_cents(session, campaign.id),
                    committed_projects=int(committed_projects),
                    released=tuple(
                        TrancheFunding(
                            number=n,
                            percent=p,
                            amount_cents=released.get(n, (0, 0))[0],
                            projects=released.get(n, (0, 0))[1],
                        )
                        for n, p in enumerate(campaign.funding.tranches, 1)
                    ),
                    pipeline_cents=by_state.get(lifecycle.State.APPLICATION, 0)
                    + by_state.get(lifecycle.State.SELECTION, 0),
                    waitlisted_cents=by_state.get(lifecycle.State.WAITLISTED, 0),
                    to_recover_cents=programme.balance_in_recovery(session, campaign.id),
                    recovered_cents=int(repaid),
                )
            )
    return report


@dataclass(frozen=True, kw_only=True)
class UpcomingDeadline:
    """A project whose next deadline falls soon: who to chase, by when, and how often they were reminded."""

    project: Project
    deadline: NextDeadline
    days_left: int
    reminders_sent: int


def upcoming_deadlines(
    engine: Engine, campaigns: dict[str, Campaign], now: datetime, days: int, campaign_id: str | None
) -> list[UpcomingDeadline]:
    """The projects whose next deadline has not passed and falls within `days` days, soonest first."""
    query = select(Project).where(col(Project.state).in_(tuple(lifecycle.DEADLINE_BY_STATE)))
    if campaign_id is not None:
        query = query.where(col(Project.campaign_id) == campaign_id)
    found = []
    with translate_errors(), Session(engine) as session:
        for project in session.exec(query.order_by(col(Project.id))):
            campaign = campaigns.get(project.campaign_id)
            if campaign is None:
                continue
            calendar = for_project(campaign, project)
            deadline = next_deadline(project, calendar, now)
            if deadline is None or deadline.passed:
                continue
            days_left = (date.fromisoformat(deadline.day) - calendar.local_date(now)).days
            if days_left <= days:
                found.append((project, deadline, days_left))
        sent = _reminders_sent(session, [(p.id or 0, d.name) for p, d, _ in found])
    found.sort(key=lambda item: (item[1].at, item[0].id or 0))
    return [
        UpcomingDeadline(project=p, deadline=d, days_left=left, reminders_sent=sent.get((p.id or 0, d.name), 0))
        for p, d, left in found
    ]


def _reminders_sent(session: Session, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """How many reminders of each (project, deadline) were queued (their keys name the deadline)."""
    counts: dict[tuple[int, str], int] = {}
    ids = sorted({project for project, _ in wanted})
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for project_id, key in session.execute(
            sa.select(col(OutboxMessage.project_id), col(OutboxMessage.idempotency_key)).where(
                col(OutboxMessage.project_id).in_(chunk), col(OutboxMessage.template) == lifecycle.Template.REMINDER
            )
        ).all():
            # `p<id>:reminder:<deadline>[@<day>]:<days before>`
            deadline = str(key).split(":")[2].split("@")[0]
            counts[(int(project_id), deadline)] = counts.get((int(project_id), deadline), 0) + 1
    return counts
