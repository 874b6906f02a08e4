"""What a command did to a project: the record the engine returns, the messages are built from, the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class ReleasedTranche:
    """A tranche released by a change."""

    number: int
    percent: Decimal
    amount_cents: int


@dataclass(frozen=True, kw_only=True)
class DeadlineSet:
    """A project's own date for a deadline, given by a change (the completion deadline, an extension)."""

    key: str
    day: date
    previous: date | None  # the date in force before, if any


@dataclass(frozen=True, kw_only=True)
class Change:
    """What a command did to a project."""

    project_id: int
    event: str
    source: str | None
    dest: str
    at: datetime
    actor: str
    forced: bool = False
    reason: str | None = None
    released: tuple[ReleasedTranche, ...] = field(default=())
    seq: int = 0  # the audit row's number within the project
    approved_by: str | None = None  # the second person of a release
    amounts: dict[str, int] = field(default_factory=dict)  # cents added to project fields (a repayment)
    #: After a forced move: the tranches whose milestone the new state reached, still pending (`esms release`).
    pending_milestones: tuple[int, ...] = ()
    deadline_set: DeadlineSet | None = None
