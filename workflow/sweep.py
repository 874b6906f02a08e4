"""The deadline sweep: one pass at "now" over the projects that have something due, and only those.

For each due project, in its own savepoint: a passed deadline lapses it (or, for the selection deadline, flags
it for the digest); otherwise the latest reminder that has fallen due is queued, once. Then the project's next due
instant is stored again. A second pass at the same instant finds nothing due.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc
from sqlmodel import Session, col, select

from states.errors import ConflictError, OperationalError
from states.lifecycle import DEADLINE_BY_STATE
from workflow.calendars import for_project
from workflow.campaigns import get_campaign
from workflow.db import transaction
from workflow.engine import Workflow
from workflow.messages import queue_reminder
from workflow.models import Project
from workflow.schedule import deadline_for, latest_due_reminder, next_due_at

log = logging.getLogger("esms.sweep")

SCHEDULER_ACTOR = "scheduler"


@dataclass(frozen=True)
class Lapse:
    """A project the sweep moved because its deadline passed."""

    project: int
    event: str
    source: str
    dest: str
    deadline: str


@dataclass(frozen=True)
class ReminderSent:
    """A reminder the sweep queued."""

    project: int
    deadline: str
    days_before: int


@dataclass(frozen=True)
class Flagged:
    """A project still waiting after its deadline, for a decision the ARS must take (the digest lists it)."""

    project: int
    state: str
    deadline: str


@dataclass(frozen=True)
class Skipped:
    """A project that failed this pass; it is retried at the next."""

    project: int
    error: str


@dataclass
class SweepReport:
    """What a pass did (the JSON of `esms tick`)."""

    at: datetime
    due: int = 0
    transitions: list[Lapse] = field(default_factory=list)
    reminders: list[ReminderSent] = field(default_factory=list)
    flagged: list[Flagged] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[Skipped] = field(default_factory=list)  # the skipped that failed for themselves

    def as_dict(self) -> dict[str, object]:
        """The report as a JSON-ready dict (keys of `esms tick --json`)."""
        return {
            "at": self.at.isoformat(),
            "due": self.due,
            "transitions": [asdict(t) for t in self.transitions],
            "reminders": [asdict(r) for r in self.reminders],
            "flagged": [asdict(f) for f in self.flagged],
            "skipped": [asdict(k) for k in self.skipped],
            "errors": [asdict(k) for k in self.errors],
        }


def claim_due(session: Session, now: datetime, limit: int, passed_over: set[int]) -> list[Project]:
    """Up to `limit` projects with something due at `now`, locked for this transaction.

    An index range scan on `next_due_at`: the cost follows the due work, not the history. On PostgreSQL the rows
    are locked with `FOR UPDATE SKIP LOCKED`, so that several sweeps (daemons, `esms tick`) share the work and
    never act twice on one project; SQLite has a single writer anyway.
    """
    query = (
        select(Project)
        .where(col(Project.next_due_at).is_not(None), col(Project.next_due_at) <= now)
        .order_by(col(Project.next_due_at), col(Project.id))
        .limit(limit)
    )
    if passed_over:
        query = query.where(col(Project.id).not_in(sorted(passed_over)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query).all())


def sweep(workflow: Workflow, *, batch_size: int = 100) -> SweepReport:
    """Run one pass at the workflow clock's "now".

    Each project is handled on its own: whatever fails on one (a message that cannot be rendered, a driver error,
    a bug) is caught, logged with its id and reported, and the others go on. A project that fails for itself (not
    because another process changed it first) keeps the error on its row, for the digest, and is tried again
    `RETRY_AFTER` later rather than at every pass.
    """
    now = workflow.clock.now()
    report = SweepReport(at=now)
    passed_over: set[int] = set()  # projects that failed this pass: retried later
    while True:
        # One transaction per batch: commits are what costs, and a small batch keeps the work a crash loses
        # small. The batch first runs without savepoints (the common case, and the fast one); if anything in it
        # fails, it is rolled back and run again with one savepoint per project, so that only the failing
        # project is passed over.
        batch = SweepReport(at=now)
        try:
            with transaction(workflow.engine) as session:
                projects = claim_due(session, now, batch_size, passed_over)
                for project in projects:
                    _sweep_project(workflow, session, project, now, batch)
        except Exception:
            batch = SweepReport(at=now)
            with transaction(workflow.engine) as session:
                projects = claim_due(session, now, batch_size, passed_over)
                for project in projects:
                    try:
                        with session.begin_nested():
                            _sweep_project(workflow, session, project, now, batch)
                    except Exception as error:
                        passed_over.add(project.id or 0)
                        failure = Skipped(project.id or 0, _one_line(error))
                        batch.skipped.append(failure)
                        if not isinstance(error, TRANSIENT_ERRORS):
                            batch.errors.append(failure)
            _record_errors(workflow, batch.errors, now)
        if not projects:
            return report
        report.due += len(projects)
        _merge_and_log(report, batch)


#: Failures that say nothing about the project: another process got there first, or the database hiccuped.
TRANSIENT_ERRORS = (ConflictError, OperationalError, exc.OperationalError)
#: How long a project whose sweep failed waits before it is tried again.
RETRY_AFTER = timedelta(minutes=15)


def _one_line(error: BaseException) -> str:
    # A driver error's own text, not the SQL statement around it; the type for an error without text.
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text[:300]


def _record_errors(workflow: Workflow, errors: list[Skipped], now: datetime) -> None:
    """Keep each failing project's error on its row (the digest lists them) and try it again later."""
    if not errors:
        return
    with transaction(workflow.engine) as session:
        for failure in errors:
            session.execute(
                sa.update(Project)
                .execution_options(synchronize_session=False)
                .where(col(Project.id) == failure.project)
                .values(sweep_error=failure.error, sweep_error_at=now, next_due_at=now + RETRY_AFTER)
            )


def _merge_and_log(report: SweepReport, batch: SweepReport) -> None:
    # Logged once committed: a line in the log is a change in the database.
    for t in batch.transitions:
        log.info("project %s %s -> %s (%s: %s passed)", t.project, t.source, t.dest, t.event, t.deadline)
    for r in batch.reminders:
        log.info("project %s reminded of %s (%s days before)", r.project, r.deadline, r.days_before)
    for f in batch.flagged:
        log.info("project %s still in %s after %s: flagged for the digest", f.project, f.state, f.deadline)
    for k in batch.skipped:
        log.warning("project %s skipped this pass, retried at the next: %s", k.project, k.error)
    report.transitions += batch.transitions
    report.reminders += batch.reminders
    report.flagged += batch.flagged
    report.skipped += batch.skipped
    report.errors += batch.errors


def _sweep_project(workflow: Workflow, session: Session, project: Project, now: datetime, report: SweepReport) -> None:
    # Read in this transaction by `claim_due` (and locked, on PostgreSQL): the version guards the write.
    project_id = project.id or 0
    # The project's calendar: its own dates (completion, promotion, extensions) over the campaign's.
    campaign = for_project(get_campaign(workflow.campaigns, project.campaign_id), project)
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
                Lapse(project_id, change.event, change.source or project.state, change.dest, deadline.key)
            )
            return
        report.flagged.append(Flagged(project_id, project.state, deadline.key))
    else:
        reminder = latest_due_reminder(campaign, project.state, now)
        if reminder is not None and queue_reminder(session, project, campaign, reminder, now):
            report.reminders.append(ReminderSent(project_id, reminder.deadline.key, reminder.days_before))
    session.execute(
        sa.update(Project)
        .execution_options(synchronize_session=False)
        .where(col(Project.id) == project_id, col(Project.version) == project.version)
        .values(next_due_at=next_due_at(campaign, project.state, now), sweep_error=None, sweep_error_at=None)
    )


def schedule_unscheduled(workflow: Workflow) -> int:
    """Give a next due instant to projects that have none while their state waits on a deadline.

    Projects stored before the scheduler existed (schema 0001) have none; `esms init` calls this after
    migrating, so that an upgraded database is swept like a new one. Returns how many were scheduled.
    """
    now = workflow.clock.now()
    scheduled = 0
    with transaction(workflow.engine) as session:
        rows = session.exec(
            select(Project).where(col(Project.next_due_at).is_(None), col(Project.state).in_(tuple(DEADLINE_BY_STATE)))
        ).all()
        for project in rows:
            campaign = workflow.campaigns.get(project.campaign_id)
            due = next_due_at(for_project(campaign, project), project.state, now) if campaign else None
            if due is not None:
                session.execute(
                    sa.update(Project)
                    .execution_options(synchronize_session=False)
                    .where(col(Project.id) == project.id)
                    .values(next_due_at=due)
                )
                scheduled += 1
    return scheduled
