"""What to tell whom: the messages a change, a reminder or a day calls for, rendered and queued in the outbox.

Called inside the transaction that makes the change, so a message exists exactly when its cause does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from notifications.ics import deadline_event
from notifications.outbox import Attachment, enqueue
from notifications.render import render
from states import lifecycle
from workflow.audit import seal
from workflow.calendars import for_project, own_deadlines
from workflow.campaigns import Campaign
from workflow.change import Change
from workflow.db import transaction
from workflow.models import OutboxMessage, Project, Tranche
from workflow.programme import funds_of
from workflow.schedule import Reminder


def reply_to(campaign: Campaign) -> str | None:
    """Where an owner's reply goes: the campaign's ARS contact, if it names one."""
    return campaign.contact.email if campaign.contact else None


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
        "campaign": {
            "id": campaign.id,
            "name": campaign.name,
            "region": campaign.region,
            "contact": (
                {"name": campaign.contact.name, "email": campaign.contact.email, "phone": campaign.contact.phone}
                if campaign.contact
                else None
            ),
        },
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
    """Queue the messages the life cycle declares for `change`; return how many were queued.

    `project` is the row as read before the change: the change itself says the new state and group. What each
    event sends is declared in `states.lifecycle` (its `messages`, and `TRANCHE_RELEASED_MESSAGE` for each
    tranche it releases); this function only renders and queues them.
    """
    base = project_context(project, campaign, state=change.dest)
    pid = change.project_id
    queued = 0

    def queue(message: lifecycle.Message, extra: dict[str, Any], *, deadline: str = "", tranche: int = 0) -> None:
        nonlocal queued
        key = lifecycle.message_key(
            message.key,
            pid,
            event=change.event,
            seq=change.seq,
            deadline=deadline,
            tranche=tranche,
            template=message.template,
        )
        if enqueue(
            session,
            key=key,
            project_id=project.id,
            template=message.template,
            recipients=[project.owner_email],
            rendered=render(message.template, {**base, **extra}),
            now=now,
            reply_to=reply_to(campaign),
        ):
            queued += 1

    if change.event == lifecycle.EventName.FORCE:
        queue(
            lifecycle.FORCED_MESSAGE,
            {
                "previous_state_label": lifecycle.STATE_LABELS[change.source or lifecycle.State.APPLICATION],
                "new_state_label": lifecycle.STATE_LABELS[change.dest],
                "reason": change.reason if share_reason else None,
            },
        )
    else:
        missed = lifecycle.DEADLINE_BY_STATE.get(change.source or "", "")
        for message in lifecycle.declared_messages(change.event, change.source, change.dest):
            extra = {
                item.value: _context_value(session, item, campaign, change, project, selection_group, missed)
                for item in message.context
            }
            queue(message, extra, deadline=missed)
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
                lifecycle.TRANCHE_RELEASED_MESSAGE,
                {
                    "tranche": {
                        "number": tranche.number,
                        "percent": str(tranche.percent),
                        "amount_cents": tranche.amount_cents,
                    },
                    "released_total_cents": running,
                    "tranches_count": len(campaign.funding.tranches),
                    "completed": change.dest == lifecycle.State.COMPLETED,
                },
                tranche=tranche.number,
            )
    return queued


def _deadline_info(campaign: Campaign, key: str) -> dict[str, Any]:
    return {"name": key, "label": lifecycle.DEADLINES_BY_KEY[key].label, "date": campaign.calendar.get(key)}


def _context_value(
    session: Session,
    item: lifecycle.Context,
    campaign: Campaign,
    change: Change,
    project: Project,
    selection_group: str | None,
    missed: str,
) -> Any:
    """The value of one declared piece of message context."""
    if item in lifecycle.CALENDAR_CONTEXT:
        return campaign.calendar.get(item.value)
    if item is lifecycle.Context.GROUP:
        return selection_group
    if item is lifecycle.Context.REASON:
        return change.reason or ""
    if item is lifecycle.Context.EXTENSION:
        extension = change.deadline_set
        assert extension is not None
        return {
            "name": extension.key,
            "label": lifecycle.DEADLINES_BY_KEY[extension.key].label,
            "previous_date": extension.previous,
            "date": extension.day,
        }
    if item is lifecycle.Context.AMOUNT:
        return sum(change.amounts.values())
    if item is lifecycle.Context.RECOVERY:
        # `project` is the row before the change: add what this change repaid or waived.
        funds = funds_of(session, project)
        repaid = funds.repaid_cents + change.amounts.get("repaid_cents", 0)
        waived = funds.waived_cents + change.amounts.get("waived_cents", 0)
        return {
            "due_cents": funds.released_cents,
            "repaid_cents": repaid,
            "waived_cents": waived,
            "balance_cents": funds.released_cents - repaid - waived,
        }
    return _deadline_info(campaign, missed)  # Context.MISSED_DEADLINE


def queue_reminder(session: Session, project: Project, campaign: Campaign, reminder: Reminder, now: datetime) -> bool:
    """Queue the reminder of a deadline to the owner, with the deadline as an `.ics` file; True if queued."""
    deadline = _deadline_info(campaign, reminder.deadline.key)
    day: date = deadline["date"]
    days_left = (day - campaign.local_date(now)).days
    # A deadline the project was given a date of its own (an extension, the completion) is reminded again for
    # each new date: the date is part of the key. The campaign's dates keep the key they always had.
    if reminder.deadline.key in own_deadlines(project):
        key = f"p{project.id}:reminder:{reminder.deadline.key}@{day.isoformat()}:{reminder.days_before}"
    else:
        key = f"p{project.id}:reminder:{reminder.key}"
    todo = reminder.deadline.todo_from(project.state)
    # One calendar event per deadline of a project: every reminder of it (and of its extensions) updates it, with
    # a SEQUENCE one higher than the last, instead of adding a copy to the owner's calendar.
    earlier = session.execute(
        sa.select(sa.func.count()).where(
            col(OutboxMessage.project_id) == project.id,
            col(OutboxMessage.idempotency_key).startswith(f"p{project.id}:reminder:{reminder.deadline.key}"),
        )
    ).scalar_one()
    calendar = deadline_event(
        uid=f"p{project.id}-{reminder.deadline.key}@esms-numerique",
        day=day,
        summary=f"ESMS numérique — {deadline['label']} ({project.name})",
        description=f"{todo[:1].upper()}{todo[1:]} avant le {day.strftime('%d/%m/%Y')} inclus.",
        stamp=now,
        sequence=int(earlier),
    )
    return enqueue(
        session,
        key=key,
        project_id=project.id,
        template=lifecycle.Template.REMINDER,
        recipients=[project.owner_email],
        reply_to=reply_to(campaign),
        rendered=render(
            lifecycle.Template.REMINDER,
            {
                **project_context(project, campaign),
                "deadline": deadline,
                "days_left": max(days_left, 0),
                "todo": todo,
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
    scope: str | None = None,
) -> bool:
    """Queue the programme team's digest of `campaigns` for `day` (once per day and scope); True if queued.

    `scope` is the one campaign a campaign's own team gets the digest of (None: every campaign, for
    ESMS_ADMIN_EMAILS). `only_with_news` skips a digest with nothing in it (the demo; the daemon always sends it).
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
        campaign = for_project(campaign, row)
        key = lifecycle.DEADLINE_BY_STATE[row.state]
        end = campaign.deadline_end(key)
        if end is None:
            continue
        deadline_day = campaign.calendar[key]
        if row.state == lifecycle.State.SELECTION and now >= end:
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
            .where(
                col(Tranche.released_at) >= start,
                col(Tranche.released_at) < end_of_yesterday,
                col(Project.campaign_id).in_(sorted(campaigns)),
            )
            .order_by(col(Tranche.released_at))
        ).all()
    ]
    failing = [
        {"id": p.id, "name": p.name, "campaign": p.campaign_id, "error": p.sweep_error, "at": p.sweep_error_at}
        for p in session.exec(select(Project).where(col(Project.sweep_error).is_not(None)).order_by(col(Project.id)))
    ]
    if only_with_news and not (undecided or near or released or failing):
        return False
    return enqueue(
        session,
        key=f"digest:{day.isoformat()}" + (f":{scope}" if scope else ""),
        project_id=None,
        template=lifecycle.Template.DIGEST,
        recipients=recipients,
        rendered=render(
            lifecycle.Template.DIGEST,
            {
                "day": day,
                "campaigns": [{"id": c.id, "name": c.name, "region": c.region} for _, c in sorted(campaigns.items())],
                "undecided": undecided,
                "near_deadline": near,
                "released_yesterday": released,
                "released_yesterday_total_cents": sum(r["amount_cents"] for r in released),
                "sweep_errors": failing,
                # The head of the audit chain, mailed daily: a later truncation shows against the mail archive.
                "seal": seal(session.connection()).as_dict(),
            },
        ),
        now=now,
    )


def queue_todays_digest(
    engine: Engine,
    campaigns: dict[str, Campaign],
    recipients: list[str],
    now: datetime,
    zone: ZoneInfo,
    *,
    only_with_news: bool = False,
) -> tuple[date, bool]:
    """Queue the digests of the day `now` falls on in `zone`, in one transaction; return (day, any queued).

    `recipients` (ESMS_ADMIN_EMAILS) get one digest of every campaign; each campaign's `admin_emails` get one of
    that campaign alone. The one entry point of `esms digest`, the daemon's morning job and the demo.
    """
    day = now.astimezone(zone).date()
    queued = False
    with transaction(engine) as session:
        if recipients:
            queued |= queue_digest(session, campaigns, recipients, day, now, zone, only_with_news=only_with_news)
        for campaign_id, campaign in sorted(campaigns.items()):
            if campaign.admin_emails:
                queued |= queue_digest(
                    session,
                    {campaign_id: campaign},
                    list(campaign.admin_emails),
                    day,
                    now,
                    zone,
                    only_with_news=only_with_news,
                    scope=campaign_id,
                )
    return day, queued
