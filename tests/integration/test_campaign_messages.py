"""A full campaign run (the demo: daemon passes over the simulated calendar) sends each owner exactly the
messages its project's history calls for — counted from the audit log and the calendar, not from the outbox.
Slow: the demo is a whole simulated campaign (about 6 s)."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from states import lifecycle
from tests.conftest import Cli
from workflow.campaigns import load_campaigns
from workflow.db import make_engine
from workflow.queries import HistoryRow, history, list_projects, project_view
from workflow.schedule import reminders

pytestmark = pytest.mark.slow


def expected_messages(rows: list[HistoryRow]) -> Counter[str]:
    """What the history calls for: the messages each change declares, one per released tranche (counted apart)."""
    expected: Counter[str] = Counter()
    for row in rows[1:]:  # the first row is the registration
        for message in lifecycle.declared_messages(row.event, row.source, row.dest):
            expected[message.template] += 1
        if row.event == "amend":
            expected["project_amended"] += 1  # to the owner; the previous owner only when the address changed
    return expected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_owner_receives_exactly_what_the_history_calls_for(cli: Cli, tmp_path: Path, config_dir: Path) -> None:
    database = tmp_path / "campaign.sqlite3"
    cli.ok("demo", "--database", str(database))
    received: dict[str, Counter[str]] = {}
    for path in sorted((tmp_path / "demo-mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for recipient in str(message["To"]).split(", "):
            received.setdefault(recipient, Counter())[str(message["X-ESMS-Template"])] += 1

    engine = make_engine(f"sqlite:///{database}")
    campaigns = load_campaigns(config_dir)
    checked = 0
    for project in list_projects(engine, None, None):
        assert project.id is not None
        view = project_view(engine, campaigns, project.id, datetime(2023, 1, 1, tzinfo=UTC))
        audit = history(engine, project.id)
        expected = expected_messages(audit)
        expected["tranche_released"] = sum(1 for t in view.tranches if t.released_at is not None)
        # Reminders: every offset whose instant fell while the project waited in a reminded state.
        campaign = campaigns[project.campaign_id]
        for entered, left in zip(audit, [*audit[1:], None], strict=True):
            start = entered.at
            end = left.at if left else datetime.max.replace(tzinfo=start.tzinfo)
            expected["reminder"] += sum(1 for r in reminders(campaign, entered.dest) if start < r.at <= end)
        expected = +expected
        assert received.get(project.owner_email, Counter()) == expected, project.name
        checked += 1
    engine.dispose()
    assert checked == 5
    assert received["dui@tilleuls.example"]["tranche_released"] == 3
    assert received["dui@clermontoise.example"]["lapsed"] == 1
    assert (
        sum(received["equipe-esms@ars-hdf.example"].values()) == received["equipe-esms@ars-hdf.example"]["digest"] > 0
    )
