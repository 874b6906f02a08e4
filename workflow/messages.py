"""What to tell whom: the messages a change, a reminder or a day calls for, rendered and queued in the outbox.

Called inside the transaction that makes the change, so a message exists exactly when its cause does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from notifications.ics import deadline_event
from notifications.outbox import Attachment, enqueue
from notifications.render import render
from states import lifecycle
from workflow.campaigns import Campaign
from workflow.models import Project, Tranche
from workflow.schedule import Reminder

if TYPE_CHECKING:
    from workflow.engine import Change


def project_context(project: Project, campaign: Campaign, state: str | None = None) -> dict[str, Any]:
    """The `project` and `campaign` parts every owner message receives (`state`: the new one, if changing)."""
    state = state or project.state
    return {
        "project": {
            "id": project.id,
            "name": project.name,
            "campaign_name": campaign.name,
            "kind": project.kind,
            "esms_count": project.esms_count,
            "small_esms_count": project.small_esms_count,
            "total_cents": project.total_cents,
            "state": state,
            "state_label": lifecycle.STATE_LABELS[state],
            "owner_name": project.owner_name,
        },
        "campaign": {"id": campaign.id, "name": campaign.name, "region": campaign.region},
    }


def queue_change_messages(
    session: Session,
    change: Change,
    project: Project,
    campaign: Campaign,
    now: datetime,
    *,
    share_reason: bool,
    selection_group: str | None,
) -> int:
    """Queue what the owner must be told about `change`; return how many messages were queued.

    `project` is the row as read before the change: the change itself says the new state and group.
    """
    base = project_context(project, campaign, state=change.dest)
    queued = 0

    def queue(template: str, key: str, extra: dict[str, Any]) -> None:
        nonlocal queued
        if enqueue(
            session,
            key=key,
            project_id=project.id,
            template=template,
            recipients=[project.owner_email],
            rendered=render(template, {**base, **extra}),
            now=now,
        ):
            queued += 1

    pid = change.project_id
    if change.forced:
        queue(
            "forced",
            f"p{pid}:force:{change.seq}",
            {
                "previous_state_label": lifecycle.STATE_LABELS[change.source or lifecycle.APPLICATION],
                "new_state_label": lifecycle.STATE_LABELS[change.dest],
                "reason": change.reason if share_reason else None,
            },
        )
    else:
        for template in lifecycle.EVENTS_BY_NAME[change.event].notify:
            extra = _event_context(template, selection_group, campaign, change)
            key = (
                f"p{pid}:lapse:{extra['deadline']['name']}"
                if template == "lapsed"
                else f"p{pid}:{change.event}:{change.seq}"
            )
            queue(template, key, extra)
    if change.released:
        released_total = session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(Tranche.amount_cents), 0)).where(
                col(Tranche.project_id) == pid, col(Tranche.released_at).is_not(None)
            )
        ).scalar_one()
        running = int(released_total) - sum(t.amount_cents for t in change.released)
        for tranche in change.released:
            running += tranche.amount_cents
            queue(
                "tranche_released",
                f"p{pid}:tranche:{tranche.number}",  # a tranche is released once, so told once
                {
                    "tranche": {
                        "number": tranche.number,
                        "percent": str(tranche.percent),
                        "amount_cents": tranche.amount_cents,
                    },
                    "released_total_cents": running,
                    "tranches_count": len(campaign.funding.tranches),
                    "completed": change.dest == lifecycle.COMPLETED,
                },
            )
    return queued


def _deadline_info(campaign: Campaign, key: str) -> dict[str, Any]:
    return {"name": key, "label": lifecycle.DEADLINES_BY_KEY[key].label, "date": campaign.calendar.get(key)}


def _event_context(template: str, selection_group: str | None, campaign: Campaign, change: Change) -> dict[str, Any]:
    calendar = campaign.calendar
    if template == "submission_received":
        return {"selection_deadline": calendar.get("selection_deadline")}
    if template == "selection_result":
        return {
            "group": selection_group,
            "agreement_deadline": calendar.get("agreement_deadline"),
            "needs_statement_opens": calendar.get("needs_statement_opens"),
        }
    if template == "promoted":
        return {"agreement_deadline": calendar.get("agreement_deadline")}
    if template == "withdrawn":
        return {"reason": change.reason or ""}
    if template == "lapsed":
        key = lifecycle.DEADLINE_BY_STATE[change.source or lifecycle.APPLICATION]
        return {"deadline": _deadline_info(campaign, key)}
    raise ValueError(f"no context for message {template!r}")


def queue_reminder(session: Session, project: Project, campaign: Campaign, reminder: Reminder, now: datetime) -> bool:
    """Queue the reminder of a deadline to the owner, with the deadline as an `.ics` file; True if queued."""
    deadline = _deadline_info(campaign, reminder.deadline.key)
    day: date = deadline["date"]
    days_left = (day - campaign.local_date(now)).days
    key = f"p{project.id}:reminder:{reminder.key}"
    calendar = deadline_event(
        uid=f"{key}@esms-numerique",
        day=day,
        summary=f"ESMS numérique — {deadline['label']} ({project.name})",
        description=f"{reminder.deadline.todo.capitalize()} avant le {day.isoformat()} inclus.",
        stamp=now,
    )
    return enqueue(
        session,
        key=key,
        project_id=project.id,
        template="reminder",
        recipients=[project.owner_email],
        rendered=render(
            "reminder",
            {
                **project_context(project, campaign),
                "deadline": deadline,
                "days_left": max(days_left, 0),
                "todo": reminder.deadline.todo,
            },
        ),
        now=now,
        attachments=(
            Attachment(filename=f"{reminder.deadline.key}.ics", content_type="text/calendar", content=calendar),
        ),
    )


def queue_digest(
    session: Session,
    campaigns: dict[str, Campaign],
    recipients: list[str],
    day: date,
    now: datetime,
    zone: ZoneInfo,
    *,
    only_with_news: bool = False,
) -> bool:
    """Queue the programme team's digest for `day` (once per day); True if queued.

    `only_with_news` skips a digest with nothing in it (the demo; the daemon always sends it).
    """
    undecided = []
    near = []
    horizon = max((max(c.reminder_days, default=0) for c in campaigns.values()), default=0) or 14
    for row in session.exec(
        select(Project).where(col(Project.state).in_(tuple(lifecycle.DEADLINE_BY_STATE))).order_by(col(Project.id))
    ):
        campaign = campaigns.get(row.campaign_id)
        if campaign is None:
            continue
        key = lifecycle.DEADLINE_BY_STATE[row.state]
        end = campaign.deadline_end(key)
        if end is None:
            continue
        deadline_day = campaign.calendar[key]
        if row.state == lifecycle.SELECTION and now >= end:
            undecided.append(
                {"id": row.id, "name": row.name, "campaign": row.campaign_id, "deadline_date": deadline_day}
            )
        elif now < end and (deadline_day - day).days <= horizon:
            near.append(
                {
                    "id": row.id,
                    "name": row.name,
                    "state_label": lifecycle.STATE_LABELS[row.state],
                    "deadline_label": lifecycle.DEADLINES_BY_KEY[key].label,
                    "date": deadline_day,
                    "days_left": (deadline_day - day).days,
                }
            )
    # Yesterday as a day of the programme's time zone, as a UTC range the index on released_at can use.
    start = datetime.combine(day - timedelta(days=1), time(0), zone).astimezone(UTC)
    end_of_yesterday = datetime.combine(day, time(0), zone).astimezone(UTC)
    released = [
        {"id": project.id, "name": project.name, "number": tranche.number, "amount_cents": tranche.amount_cents}
        for tranche, project in session.execute(
            sa.select(Tranche, Project)
            .join(Project, col(Project.id) == col(Tranche.project_id))
            .where(col(Tranche.released_at) >= start, col(Tranche.released_at) < end_of_yesterday)
            .order_by(col(Tranche.released_at))
        ).all()
    ]
    if only_with_news and not (undecided or near or released):
        return False
    return enqueue(
        session,
        key=f"digest:{day.isoformat()}",
        project_id=None,
        template="digest",
        recipients=recipients,
        rendered=render(
            "digest",
            {
                "day": day,
                "undecided": undecided,
                "near_deadline": near,
                "released_yesterday": released,
                "released_yesterday_total_cents": sum(r["amount_cents"] for r in released),
            },
        ),
        now=now,
    )
