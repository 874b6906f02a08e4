"""What a command did to a project: the record the engine returns, the messages are built from, the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class ReleasedTranche:
    """A tranche released by a change."""

    number: int
    percent: Decimal
    amount_cents: int


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
