"""What every command needs, built lazily from the settings and the global options."""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from workflow.campaigns import Campaign
    from workflow.clock import Clock
    from workflow.engine import Workflow
    from workflow.settings import Settings


@dataclass
class Runtime:
    """Settings, clock, database and campaigns for one command, created on first use."""

    now_text: str | None = None
    _checked: bool = field(default=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        """The resolved settings."""
        from workflow.settings import load_settings

        settings = load_settings()
        for warning in settings.warnings:
            print(f"esms: warning: {warning}", file=sys.stderr)
        return settings

    @cached_property
    def clock(self) -> Clock:
        """The system clock, or a simulated one when `--now`/`ESMS_NOW` is given."""
        from workflow.clock import SimulatedClock, SystemClock, parse_instant

        if self.now_text is not None:  # an empty --now is an error, not "no --now"
            return SimulatedClock(parse_instant(self.now_text, self.settings.timezone))
        return SystemClock()

    @cached_property
    def campaigns(self) -> dict[str, Campaign]:
        """Every campaign of the config folder."""
        from workflow.campaigns import load_campaigns

        return load_campaigns(self.settings.config_dir)

    @cached_property
    def raw_engine(self) -> Engine:
        """The database engine, whatever the state of its schema; a missing SQLite file is "run esms init"."""
        from workflow.db import make_engine

        return make_engine(self.settings.database_url, create=False)

    @cached_property
    def initial_engine(self) -> Engine:
        """The database engine of `esms init`, the one command that creates the SQLite file and its folder."""
        from workflow.db import make_engine

        return make_engine(self.settings.database_url, create=True)

    @property
    def engine(self) -> Engine:
        """The database engine, once the schema is known to be current."""
        from workflow.db import ensure_current

        if not self._checked:
            ensure_current(self.raw_engine)
            self._checked = True
        return self.raw_engine

    @cached_property
    def workflow(self) -> Workflow:
        """The engine that changes projects."""
        from workflow.engine import Workflow

        return Workflow(self.engine, self.campaigns, self.clock, audit_key=self.settings.audit_key)


def default_actor() -> str:
    """The OS user, the default actor of audited changes."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers: still audit something meaningful
        return "unknown"


def print_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned text table."""
    if not rows:
        print("(aucun)")
        return
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)
