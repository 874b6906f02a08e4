"""A project's calendar: its campaign's dates, with the project's own dates for the deadlines it was given.

A project gets its own date for a deadline from its events (`states.lifecycle.SetsDeadline`): the completion
deadline when its agreement is signed, a later agreement deadline when promoted, any date by an extension. Every
rule, the sweep and every view read the project's calendar through `for_project`, so that one date is in force.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime

from states import lifecycle
from states.calendar import add_months, parse_day_param, promoted_deadline
from workflow.campaigns import Campaign
from workflow.models import Project


def own_deadlines(project: Project) -> dict[str, date]:
    """The project's own dates, by deadline key."""
    return {key: date.fromisoformat(day) for key, day in json.loads(project.own_deadlines or "{}").items()}


def for_project(campaign: Campaign, project: Project) -> Campaign:
    """The campaign as this project lives it: its own dates replace the campaign's."""
    own = own_deadlines(project)
    if not own:
        return campaign
    return replace(campaign, calendar={**campaign.calendar, **own})


def deadline_set_by(
    spec: lifecycle.Event, params: dict[str, str], calendar: Campaign, state: str, now: datetime
) -> tuple[str, date] | None:
    """The deadline an event gives the project (key and day), if it gives one; `calendar` is the project's."""
    rule = spec.sets_deadline
    if rule is None:
        return None
    today = calendar.local_date(now)
    if rule.rule is lifecycle.DeadlineRule.EXTENSION:
        return lifecycle.DEADLINE_BY_STATE[state], parse_day_param(spec.name, "until", params["until"])
    assert rule.key is not None
    if rule.rule is lifecycle.DeadlineRule.COMPLETION:
        if calendar.completion_months is None:
            return None  # the campaign sets no completion deadline: never enforced
        return rule.key, add_months(today, calendar.completion_months)
    day = promoted_deadline(calendar.calendar.get(rule.key), today, calendar.promotion_grace_days)
    return (rule.key, day) if day is not None else None


def with_deadline(project: Project, key: str, day: date) -> str:
    """The project's `own_deadlines` JSON with `key` set to `day`."""
    own = {name: value.isoformat() for name, value in own_deadlines(project).items()}
    own[key] = day.isoformat()
    return json.dumps(own, sort_keys=True)
