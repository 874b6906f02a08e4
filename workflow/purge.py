"""Personal data kept no longer than needed (RGPD): `esms purge` and the daemon's daily purge.

Owners' names and e-mail addresses are personal data; the programme needs them while a project lives and, after it
ends, for as long as the campaign's `[retention] months_after_end` says (the time an audit or a claim may come).
Then they are pseudonymised, and the bodies of the messages sent to the owner are deleted. What the programme must
keep to answer for public money stays: the grappe (organisations and ESMS are establishments, not people), the
money, the history. A project in `recovery` is never purged: its owner still owes money. The purge is recorded in
the audit log by a `purge` row that holds no personal data, so the chain still verifies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from notifications.models import OutboxMessage
from states import lifecycle
from states.calendar import add_months
from workflow.audit import AuditRecord
from workflow.campaigns import Campaign
from workflow.db import transaction
from workflow.engine import Workflow, append_audit
from workflow.models import Project

#: The ends a project's personal data may be purged after (never `recovery`: money is still owed).
PURGEABLE_STATES = (
    lifecycle.State.COMPLETED,
    lifecycle.State.RECOVERED,
    lifecycle.State.REJECTED,
    lifecycle.State.REWORK,
    lifecycle.State.LAPSED,
    lifecycle.State.WITHDRAWN,
)
PSEUDONYM_NAME = "porteur pseudonymisé"
PURGE_ACTOR = "purge"


def pseudonym_email(project_id: int) -> str:
    """The address a purged project's owner is replaced with: unique, and never deliverable (`.invalid`)."""
    return f"porteur-{project_id}@pseudonymise.invalid"


@dataclass(frozen=True)
class PurgedProject:
    """A project whose personal data the purge removes (or would remove, in a dry run)."""

    project: int
    campaign: str
    state: str
    ended_at: datetime
    messages: int


def due_for_purge(session: Session, campaigns: dict[str, Campaign], now: datetime) -> list[Project]:
    """The projects whose end is older than their campaign's retention, not yet purged, oldest first."""
    found = []
    for project in session.exec(
        select(Project)
        .where(col(Project.state).in_(PURGEABLE_STATES), col(Project.purged_at).is_(None))
        .order_by(col(Project.updated_at), col(Project.id))
    ):
        campaign = campaigns.get(project.campaign_id)
        months = campaign.retention_months if campaign is not None else None
        if months is None:
            continue  # the campaign keeps its data: nothing is purged without a retention period
        ended = campaign.local_date(project.updated_at) if campaign else project.updated_at.date()
        if campaign is not None and add_months(ended, months) < campaign.local_date(now):
            found.append(project)
    return found


def purge(workflow: Workflow, *, dry_run: bool = False, actor: str = PURGE_ACTOR) -> list[PurgedProject]:
    """Pseudonymise the owners and delete the message bodies of the projects past their retention period.

    Each project in its own transaction, guarded by its version; a dry run writes nothing.
    """
    now = workflow.clock.now()
    with Session(workflow.engine) as session:
        candidates = [p.id for p in due_for_purge(session, workflow.campaigns, now) if p.id is not None]
    done = []
    for project_id in candidates:
        with transaction(workflow.engine) as session:
            project = session.get(Project, project_id)
            if project is None or project.purged_at is not None:
                continue
            messages = int(
                session.execute(
                    sa.select(sa.func.count()).where(col(OutboxMessage.project_id) == project_id)
                ).scalar_one()
            )
            done.append(PurgedProject(project_id, project.campaign_id, project.state, project.updated_at, messages))
            if not dry_run:
                _purge_one(session, workflow, project, now, actor)
            else:
                session.rollback()
    return done


def _purge_one(session: Session, workflow: Workflow, project: Project, now: datetime, actor: str) -> None:
    assert project.id is not None
    updated = session.execute(
        sa.update(Project)
        .execution_options(synchronize_session=False)
        .where(col(Project.id) == project.id, col(Project.version) == project.version)
        .values(
            owner_name=PSEUDONYM_NAME,
            owner_email=pseudonym_email(project.id),
            purged_at=now,
            version=project.version + 1,
        )
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        return  # changed meanwhile: the next purge looks again
    # What was sent stays known (template, status, dates); to whom and what it said does not.
    session.execute(
        sa.update(OutboxMessage)
        .execution_options(synchronize_session=False)
        .where(col(OutboxMessage.project_id) == project.id)
        .values(
            recipients=json.dumps([pseudonym_email(project.id)]),
            body_text="",
            body_html="",
            attachments="[]",
        )
    )
    # The audit row says that and when, never whom: no name, no address.
    append_audit(
        session,
        AuditRecord(
            project_id=project.id,
            seq=0,
            at=now,
            recorded_at=workflow.clock.wall(),
            event=lifecycle.EventName.PURGE,
            source=project.state,
            dest=project.state,
            actor=actor,
            reason="personal data past the campaign's retention period",
            forced=False,
            params="{}",
        ),
        key=workflow.audit_key,
    )
