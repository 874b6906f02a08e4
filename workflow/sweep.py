"""The deadline sweep: one pass at "now" over the projects that have something due, and only those.

For each due project, in its own savepoint: a passed deadline lapses it (or, for the selection deadline, flags
it for the digest); otherwise the latest reminder that has fallen due is queued, once. Then the project's next due
instant is stored again. A second pass at the same instant finds nothing due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlmodel import Session, col, select

from notifications.queue import queue_reminder
from workflow.campaigns import get_campaign
from workflow.db import transaction
from workflow.engine import Workflow
from workflow.errors import EsmsError
from workflow.models import Project
from workflow.schedule import deadline_for, latest_due_reminder, next_due_at

log = logging.getLogger("esms.sweep")

SCHEDULER_ACTOR = "scheduler"


@dataclass
class SweepReport:
    """What a pass did (the JSON of `esms tick`)."""

    at: datetime
    due: int = 0
    transitions: list[dict[str, Any]] = field(default_factory=list)
    reminders: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {
            "at": self.at.isoformat(),
            "due": self.due,
            "transitions": self.transitions,
            "reminders": self.reminders,
            "flagged": self.flagged,
            "skipped": self.skipped,
        }


def due_project_ids(session: Session, now: datetime) -> list[int]:
    """The projects with something due at `now` (an index range scan: cost follows due work, not history)."""
    rows = session.execute(
        sa.select(col(Project.id))
        .where(col(Project.next_due_at).is_not(None), col(Project.next_due_at) <= now)
        .order_by(col(Project.next_due_at), col(Project.id))
    ).all()
    return [int(row[0]) for row in rows]


def sweep(workflow: Workflow, *, batch_size: int = 500) -> SweepReport:
    """Run one pass at the workflow clock's "now"."""
    now = workflow.clock.now()
    report = SweepReport(at=now)
    with transaction(workflow.engine) as session:
        ids = due_project_ids(session, now)
    report.due = len(ids)
    for start in range(0, len(ids), batch_size):
        # One transaction per batch (commits are what costs), one savepoint per project (a conflict on one
        # project rolls back that project only).
        with transaction(workflow.engine) as session:
            for project_id in ids[start : start + batch_size]:
                try:
                    with session.begin_nested():
                        _sweep_project(workflow, session, project_id, now, report)
                except (EsmsError, exc.IntegrityError, exc.OperationalError) as error:
                    report.skipped.append({"project": project_id, "error": " ".join(str(error).split())[:300]})
                    log.warning("project %s skipped this pass: %s", project_id, error)
    return report


def _sweep_project(workflow: Workflow, session: Session, project_id: int, now: datetime, report: SweepReport) -> None:
    project = session.exec(
        select(Project).where(Project.id == project_id).execution_options(populate_existing=True)
    ).one()
    if project.next_due_at is None or project.next_due_at > now:
        return  # another process got there first
    campaign = get_campaign(workflow.campaigns, project.campaign_id)
    deadline = deadline_for(project.state)
    end = campaign.deadline_end(deadline.key) if deadline else None
    if deadline is not None and end is not None and now >= end:
        day = campaign.calendar[deadline.key].isoformat()
        if deadline.on_pass is not None:
            change = workflow.fire_in(
                session,
                project,
                deadline.on_pass,
                {},
                SCHEDULER_ACTOR,
                reason=f"{deadline.key} {day} passed (rule: {deadline.on_pass} after {deadline.key})",
            )
            report.transitions.append(
                {
                    "project": project_id,
                    "event": change.event,
                    "source": change.source,
                    "dest": change.dest,
                    "deadline": deadline.key,
                }
            )
            log.info(
                "project %s %s -> %s (%s: %s %s passed)",
                project_id,
                change.source,
                change.dest,
                change.event,
                deadline.key,
                day,
            )
            return
        report.flagged.append({"project": project_id, "state": project.state, "deadline": deadline.key})
        log.info(
            "project %s still in %s after %s %s: flagged for the digest", project_id, project.state, deadline.key, day
        )
    else:
        reminder = latest_due_reminder(campaign, project.state, now)
        if reminder is not None and queue_reminder(session, project, campaign, reminder, now):
            report.reminders.append(
                {"project": project_id, "deadline": reminder.deadline.key, "days_before": reminder.days_before}
            )
            log.info(
                "project %s reminded of %s (%s days before)", project_id, reminder.deadline.key, reminder.days_before
            )
    session.execute(
        sa.update(Project)
        .where(col(Project.id) == project_id, col(Project.version) == project.version)
        .values(next_due_at=next_due_at(campaign, project.state, now))
    )
