"""The deadline sweep with an injected clock: each deadline on both sides (a daylight-saving change day
included), reminders at each offset, a downtime caught up in one pass, and a second pass that does nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.conftest import snapshot, write_project
from workflow.campaigns import load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.project_file import load_project_file
from workflow.sweep import Flagged, ReminderSent, sweep

PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)

# Deadlines falling on the two daylight-saving change days of 2021 (28 March: 02:00 → 03:00; 31 October:
# 03:00 → 02:00): the day is 23 or 25 hours long and the deadline must still end at local midnight.
DST_CAMPAIGN = """
id = "dst-2021"
name = "Campagne de test, changements d'heure"
region = "Hauts-de-France"
timezone = "Europe/Paris"
envelope = 1000000
[calendar]
opens = 2021-01-04
application_deadline = 2021-03-28
selection_deadline = 2021-04-30
needs_statement_opens = 2021-01-04
agreement_deadline = 2021-10-31
[funding]
acquisition_per_esms = 25000
compliance_per_esms = 10000
equipment_per_small_esms = 20000
max_funded_esms = 30
tranches = [40, 40, 20]
[eligibility]
min_organisations = 3
min_esms = 15
min_services_socles = 2
[reminders]
days_before = [14, 7, 1]
"""


class World:
    """A workflow on a fresh, migrated database with a simulated clock."""

    def __init__(self, url: str, config_dir: Path, tmp_path: Path) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.clock = SimulatedClock(datetime(2021, 1, 10, 9, tzinfo=PARIS))
        self.workflow = Workflow(self.engine, load_campaigns(config_dir), self.clock)
        self.tmp_path = tmp_path

    def at(self, moment: datetime) -> World:
        self.clock.set(moment)
        return self

    def add(self, campaign: str = "hdf-2021") -> int:
        return self.workflow.register(load_project_file(write_project(self.tmp_path, campaign=campaign)), "test")

    def force(self, project_id: int, state: str) -> None:
        self.workflow.force(project_id, state, "test set-up", "test")

    def state(self, project_id: int) -> str:
        with self.engine.connect() as connection:
            return str(
                connection.execute(sa.text("SELECT state FROM project WHERE id = :i"), {"i": project_id}).scalar()
            )

    def reminders(self, project_id: int) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT idempotency_key FROM outbox_message WHERE project_id = :i AND template = 'reminder' "
                    "ORDER BY id"
                ),
                {"i": project_id},
            ).all()
        return [str(r[0]).split(":reminder:")[1] for r in rows]

    def last_audit(self, project_id: int) -> dict[str, object]:
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.text(
                        "SELECT event, source, dest, actor, reason, forced FROM audit_entry WHERE project_id = :i "
                        "ORDER BY seq DESC LIMIT 1"
                    ),
                    {"i": project_id},
                )
                .mappings()
                .one()
            )
        return dict(row)


@pytest.fixture
def world(
    database_url: str, config_dir: Path, tmp_path: Path, install_schema: Callable[[str], None]
) -> Iterator[World]:
    install_schema(database_url)
    (config_dir / "campaigns" / "dst-2021.toml").write_text(DST_CAMPAIGN, encoding="utf-8")
    created = World(database_url, config_dir, tmp_path)
    yield created
    created.engine.dispose()


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("campaign", "last_second_local", "utc_offset_hours"),
    [
        ("hdf-2021", paris(2021, 3, 31, 23, 59, 59), 2),  # summer time
        ("dst-2021", paris(2021, 3, 28, 23, 59, 59), 2),  # the day summer time starts
    ],
)
def test_application_deadline_lapses_projects_one_second_after_its_day(
    world: World, campaign: str, last_second_local: datetime, utc_offset_hours: int
) -> None:
    assert last_second_local.utcoffset() == timedelta(hours=utc_offset_hours)
    project = world.at(paris(2021, 2, 20, 10)).add(campaign)
    sweep(world.at(last_second_local).workflow)
    assert world.state(project) == "application"
    report = sweep(world.at(last_second_local + SECOND).workflow)
    assert world.state(project) == "lapsed"
    assert [t.project for t in report.transitions] == [project]
    audit = world.last_audit(project)
    assert audit["event"] == "lapse" and audit["actor"] == "scheduler" and not audit["forced"]
    assert "application_deadline" in str(audit["reason"]) and "passed" in str(audit["reason"])


@pytest.mark.parametrize("state", ["needs_statement", "vendor_contract", "agreement", "waitlisted"])
def test_agreement_deadline_on_the_day_winter_time_returns_lapses_waiting_projects(world: World, state: str) -> None:
    project = world.at(paris(2021, 2, 20, 10)).add("dst-2021")
    world.force(project, state)
    last_second = paris(2021, 10, 31, 23, 59, 59)
    assert last_second.utcoffset() == timedelta(hours=1)  # winter time again since 03:00 that morning
    sweep(world.at(last_second).workflow)
    assert world.state(project) == state
    sweep(world.at(last_second + SECOND).workflow)
    assert world.state(project) == "lapsed"


def test_agreement_deadline_leaves_projects_past_the_agreement_alone(world: World) -> None:
    project = world.at(paris(2021, 2, 20, 10)).add()
    world.force(project, "configuration")
    report = sweep(world.at(paris(2021, 7, 15)).workflow)
    assert world.state(project) == "configuration"
    assert report.transitions == []


def test_undecided_project_stays_in_selection_and_is_flagged(world: World) -> None:
    project = world.at(paris(2021, 2, 20, 10)).add()
    world.force(project, "selection")
    assert sweep(world.at(paris(2021, 5, 31, 23, 59, 59)).workflow).flagged == []
    report = sweep(world.at(paris(2021, 6, 1, 0, 0, 0)).workflow)
    assert world.state(project) == "selection"
    assert report.flagged == [Flagged(project=project, state="selection", deadline="selection_deadline")]
    assert sweep(world.workflow).flagged == []  # flagged once, at the crossing


@pytest.mark.parametrize("days", [14, 7, 1])
def test_reminder_at_each_offset_is_sent_at_eight_paris_time_and_never_twice(world: World, days: int) -> None:
    project = world.at(paris(2021, 2, 20, 10)).add()
    reminder_at = paris(2021, 3, 31, 8) - timedelta(days=days)
    # Every earlier offset has been dealt with on time.
    for earlier in (d for d in (14, 7, 1) if d > days):
        sweep(world.at(paris(2021, 3, 31, 8) - timedelta(days=earlier)).workflow)
    before = len(world.reminders(project))
    sweep(world.at(reminder_at - SECOND).workflow)
    assert len(world.reminders(project)) == before
    report = sweep(world.at(reminder_at).workflow)
    assert report.reminders == [ReminderSent(project=project, deadline="application_deadline", days_before=days)]
    assert world.reminders(project)[-1] == f"application_deadline:{days}"
    sweep(world.at(reminder_at + timedelta(hours=1)).workflow)
    assert world.reminders(project).count(f"application_deadline:{days}") == 1


def test_reminder_carries_the_deadline_as_a_calendar_file(world: World) -> None:
    project = world.at(paris(2021, 2, 20, 10)).add()
    sweep(world.at(paris(2021, 3, 24, 9)).workflow)
    with world.engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT recipients, subject, attachments FROM outbox_message WHERE template = 'reminder'")
        ).one()
    attachments = json.loads(row.attachments)
    assert json.loads(row.recipients) == ["dui@tilleuls.example"]
    assert attachments[0]["filename"] == "application_deadline.ics"
    assert "DTSTART;VALUE=DATE:20210331" in attachments[0]["content"]
    assert project


def test_ten_days_of_downtime_are_caught_up_in_one_pass_with_only_the_latest_reminder(world: World) -> None:
    project = world.at(paris(2021, 4, 20, 10)).add()
    world.force(project, "needs_statement")  # agreement deadline 30/06: reminders on 16/06, 23/06, 29/06
    sweep(world.at(paris(2021, 6, 14, 12)).workflow)  # the daemon's last pass before going down
    report = sweep(world.at(paris(2021, 6, 24, 12)).workflow)  # back up ten days later
    assert world.reminders(project) == ["agreement_deadline:7"]
    assert report.reminders == [ReminderSent(project=project, deadline="agreement_deadline", days_before=7)]
    # And a downtime across the deadline itself: lapsed, no reminder once it has passed.
    other = world.at(paris(2021, 4, 20, 10)).add()
    world.force(other, "agreement")
    sweep(world.at(paris(2021, 6, 14, 12)).workflow)
    sweep(world.at(paris(2021, 7, 3, 12)).workflow)
    assert world.state(other) == "lapsed"
    assert world.reminders(other) == []


def test_second_pass_at_the_same_instant_changes_nothing(world: World, database_url: str) -> None:
    for _ in range(3):
        world.at(paris(2021, 2, 20, 10)).add()
    waiting = world.add()
    world.force(waiting, "agreement")
    first = sweep(world.at(paris(2021, 7, 1, 12)).workflow)
    assert len(first.transitions) == 4
    before = snapshot(database_url)
    second = sweep(world.workflow)
    assert second.due == 0 and second.transitions == [] and second.reminders == []
    assert snapshot(database_url) == before


def test_idle_pass_reads_only_due_projects(world: World) -> None:
    for _ in range(5):
        world.at(paris(2021, 2, 20, 10)).add()
    report = sweep(world.at(paris(2021, 2, 21, 10)).workflow)  # nothing falls due on that day
    assert report.due == 0
    with world.engine.connect() as connection:
        due = connection.execute(sa.text("SELECT MIN(next_due_at) FROM project")).scalar()
    # The next work is the 14-day reminder of the application deadline, at 08:00 Paris time on 17/03.
    expected = datetime(2021, 3, 17, 7, tzinfo=UTC)
    assert due is not None and str(due).startswith(expected.strftime("%Y-%m-%d %H:%M"))
