"""The one place that reads the wall clock.

Everything that needs "now" receives a `Clock`. `SystemClock` is real time; `SimulatedClock` answers a fixed
(or advanced by hand) effective instant, for `--now`, the demo and tests, while still telling the real wall-clock
time for the audit's `recorded_at`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from states.errors import InvalidArgumentError


class Clock(Protocol):
    """Source of the effective instant (`now`) and of the real wall-clock instant (`wall`)."""

    def now(self) -> datetime:
        """Return the effective instant, timezone-aware UTC."""
        ...

    def wall(self) -> datetime:
        """Return the real wall-clock instant, timezone-aware UTC."""
        ...


class SystemClock:
    """Real time: `now` and `wall` are the same instant."""

    def now(self) -> datetime:
        """Return the current instant in UTC."""
        return datetime.now(UTC)

    def wall(self) -> datetime:
        """Return the current instant in UTC."""
        return datetime.now(UTC)


class SimulatedClock:
    """An effective instant set by hand (simulation, `--now`, tests); `wall` stays real unless fixed too."""

    def __init__(self, at: datetime, *, wall: datetime | None = None) -> None:
        self._at = as_utc(at)
        self._wall = as_utc(wall) if wall is not None else None

    def now(self) -> datetime:
        """Return the simulated instant."""
        return self._at

    def wall(self) -> datetime:
        """Return the fixed wall instant if one was given, else the real one."""
        return self._wall if self._wall is not None else datetime.now(UTC)

    def set(self, at: datetime) -> None:
        """Move the simulated instant to `at` (forwards or backwards)."""
        self._at = as_utc(at)

    def advance(self, delta: timedelta) -> None:
        """Move the simulated instant forwards by `delta`."""
        self._at += delta


def as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC; refuse a naive datetime, whose meaning would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)


#: The programme runs 2021–2025; simulations may look further, not to year 1 or 9999 (which overflow).
MIN_YEAR, MAX_YEAR = 2000, 2200


def parse_instant(text: str, default_zone: ZoneInfo) -> datetime:
    """Parse `--now`/`ESMS_NOW`: ISO-8601 with an offset, or without one in `default_zone`, or a bare date.

    A bare date means the start of that day in `default_zone`.
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            parsed = datetime.combine(date.fromisoformat(raw), time(0), default_zone)
        else:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=default_zone)
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise InvalidArgumentError(f"--now: {text!r} is out of range (years {MIN_YEAR} to {MAX_YEAR})")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidArgumentError(
            f"--now: {text!r} is not an ISO-8601 instant (e.g. 2021-03-31T23:59:59+02:00 or 2021-03-31)"
        ) from None
