"""When the sweep next has work on a project: its reminders and its deadline, computed from the declaration.

Pure functions: they read the campaign calendar and the life cycle's `DEADLINES`, never the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from states.lifecycle import DEADLINE_BY_STATE, DEADLINES_BY_KEY, Deadline
from workflow.campaigns import Campaign


@dataclass(frozen=True, kw_only=True)
class Reminder:
    """A reminder due to the owner: which deadline, how many days before, and when it falls due."""

    deadline: Deadline
    days_before: int
    at: datetime

    @property
    def key(self) -> str:
        """The reminder's part of the outbox idempotency key."""
        return f"{self.deadline.key}:{self.days_before}"


def deadline_for(state: str) -> Deadline | None:
    """Return the deadline a project in `state` waits on, if any."""
    key = DEADLINE_BY_STATE.get(state)
    return DEADLINES_BY_KEY[key] if key else None


def reminders(campaign: Campaign, state: str) -> list[Reminder]:
    """Every reminder an owner in `state` is owed before its deadline, earliest first."""
    deadline = deadline_for(state)
    if deadline is None or state not in deadline.reminded:
        return []
    end = campaign.deadline_end(deadline.key)
    found = []
    for days in campaign.reminder_days:
        at = campaign.reminder_at(deadline.key, days)
        if at is not None and end is not None and at < end:
            found.append(Reminder(deadline=deadline, days_before=days, at=at))
    return sorted(found, key=lambda r: r.at)


def latest_due_reminder(campaign: Campaign, state: str, now: datetime) -> Reminder | None:
    """The one reminder to send at `now`: the latest that has fallen due, while the deadline has not passed.

    After downtime only this one is sent: the earlier missed ones would only repeat it with stale figures.
    """
    deadline = deadline_for(state)
    if deadline is None:
        return None
    end = campaign.deadline_end(deadline.key)
    if end is None or now >= end:
        return None
    due = [r for r in reminders(campaign, state) if r.at <= now]
    return due[-1] if due else None


def next_due_at(campaign: Campaign, state: str, after: datetime) -> datetime | None:
    """The first instant strictly after `after` when the sweep has work on a project in `state`, or None."""
    deadline = deadline_for(state)
    if deadline is None:
        return None
    candidates = [r.at for r in reminders(campaign, state) if r.at > after]
    end = campaign.deadline_end(deadline.key)
    if end is not None and end > after:
        candidates.append(end)  # lapse (or flag) when it passes
    return min(candidates, default=None)
