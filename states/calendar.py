"""Calendar arithmetic of the programme's rules: whole days and months, in pure functions."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from states.errors import InvalidArgumentError

ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def add_months(day: date, months: int) -> date:
    """`day` plus `months` months: the same day number, or the last day of the month when it has fewer.

    31/01 + 1 month is 28/02 (29/02 in a leap year); 30/06 + 24 months is 30/06 two years later.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def promoted_deadline(campaign_day: date | None, promoted_on: date, grace_days: int) -> date | None:
    """A promoted project's own agreement deadline: the later of the campaign's and the promotion day + grace."""
    if campaign_day is None:
        return None  # the campaign enforces none: neither does the project
    return max(campaign_day, promoted_on + timedelta(days=grace_days))


def parse_day_param(event: str, name: str, text: str) -> date:
    """Read a `YYYY-MM-DD` event parameter (an extension's `until=`); anything else is bad input."""
    text = text.strip()
    try:
        if not ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{event}: {name}={text!r} is not a date such as 2023-06-30") from None
    if not 2000 <= day.year <= 2100:
        raise InvalidArgumentError(f"{event}: {name}={text!r} is out of range (years 2000 to 2100)")
    return day
