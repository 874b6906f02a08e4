"""The whole life of a project (issue "The whole life of a project"): the completion deadline and its
extensions, promotion from the waiting list, documents kept, and the later calls' eligibility rules — each on both
sides of its boundary, in-process against the engine on SQLite and PostgreSQL, and through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from states.calendar import add_months
from states.errors import DeadlinePassedError, IneligibleError, InvalidArgumentError
from states.grappe import eligibility_problems
from tests.conftest import Cli, snapshot, write_project
from workflow.campaigns import Campaign, Eligibility, load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine, migrate
from workflow.engine import Workflow
from workflow.project_file import load_project_file
from workflow.queries import project_view
from workflow.sweep import sweep

PARIS = ZoneInfo("Europe/Paris")
SECOND = timedelta(seconds=1)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


class Life:
    """A workflow on a fresh database, a simulated clock, and campaigns that may be changed per test."""

    def __init__(self, url: str, config_dir: Path, tmp_path: Path, **changes: object) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.clock = SimulatedClock(paris(2021, 2, 20, 10))
        campaigns = load_campaigns(config_dir)
        self.campaigns = {key: replace(c, **changes) for key, c in campaigns.items()}  # type: ignore[arg-type]
        self.workflow = Workflow(self.engine, self.campaigns, self.clock)
        self.tmp_path = tmp_path

    def at(self, moment: datetime) -> Life:
        self.clock.set(moment)
        return self

    def add(self, **file: object) -> int:
        spec = load_project_file(write_project(self.tmp_path, **file))  # type: ignore[arg-type]
        return self.workflow.register(spec, "test")

    def fire(self, project: int, event: str, **params: str) -> str:
        return self.workflow.fire(project, event, dict(params), "ars").dest

    def state(self, project: int) -> str:
        with self.engine.connect() as connection:
            return str(connection.execute(sa.text("SELECT state FROM project WHERE id = :i"), {"i": project}).scalar())

    def signed_on(self, day: datetime) -> int:
        """A project whose agreement is signed at `day` (the calendar's other steps in time)."""
        project = self.at(paris(2021, 3, 1, 10)).add()
        self.fire(project, "submit")
        self.at(paris(2021, 4, 20, 10)).fire(project, "select", group="A")
        self.fire(project, "file_needs", reference="RESAH-1")
        self.fire(project, "sign_contract", vendor="Éditeur")
        self.at(day).fire(project, "sign_agreement")
        return project

    def next_deadline(self, project: int) -> tuple[str, str] | None:
        view = project_view(self.engine, self.campaigns, project, self.clock.now())
        deadline = view.next_deadline
        return (deadline.name, deadline.day) if deadline else None


@pytest.fixture
def life(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Life]:
    world = Life(database_url, config_dir, tmp_path, completion_months=1)
    yield world
    world.engine.dispose()


# --- completion deadline ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed", "months", "due"),
    [
        (date(2021, 1, 31), 1, date(2021, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2021, 6, 29), 24, date(2023, 6, 29)),
        (date(2021, 8, 31), 1, date(2021, 9, 30)),
        (date(2021, 12, 15), 1, date(2022, 1, 15)),
        (date(2021, 11, 30), 3, date(2022, 2, 28)),
    ],
)
def test_completion_day_is_the_same_day_number_or_the_month_end(signed: date, months: int, due: date) -> None:
    assert add_months(signed, months) == due


def test_agreement_signed_on_the_31st_gives_a_completion_deadline_at_the_end_of_next_month(life: Life) -> None:
    # Signed 31/05 + 1 month = 30/06 (June has 30 days): the whole day, Paris time.
    project = life.signed_on(paris(2021, 5, 31, 16))
    assert life.next_deadline(project) == ("completion_deadline", "2021-06-30")
    assert sweep(life.at(paris(2021, 6, 30, 23, 59, 59)).workflow).transitions == []
    assert life.state(project) == "configuration"
    report = sweep(life.at(paris(2021, 7, 1)).workflow)
    # Tranche 1 was released at the agreement: the project now owes it back.
    assert [(t.project, t.dest, t.deadline) for t in report.transitions] == [
        (project, "recovery", "completion_deadline")
    ]


def test_completion_deadline_on_a_clock_change_day_ends_at_local_midnight(
    database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    # Signed 31/03 + 7 months = 31/10/2021, the day clocks go back (25 hours long).
    life = Life(database_url, config_dir, tmp_path, completion_months=7)
    project = life.at(paris(2021, 3, 1, 10)).add()
    life.fire(project, "submit")
    life.workflow.force(project, "agreement", "mise en place", "test")
    life.at(paris(2021, 3, 31, 12)).fire(project, "sign_agreement")
    assert life.next_deadline(project) == ("completion_deadline", "2021-10-31")
    assert sweep(life.at(paris(2021, 10, 31, 23, 59, 59)).workflow).transitions == []
    assert [t.dest for t in sweep(life.at(paris(2021, 11, 1)).workflow).transitions] == ["recovery"]
    life.engine.dispose()


def test_without_completion_months_the_completion_deadline_is_never_enforced(
    database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    life = Life(database_url, config_dir, tmp_path, completion_months=None)
    project = life.signed_on(paris(2021, 6, 1, 10))
    assert life.next_deadline(project) is None
    assert sweep(life.at(paris(2030, 1, 1)).workflow).transitions == []
    assert life.state(project) == "configuration"
    life.engine.dispose()


def test_a_reminder_goes_out_before_the_completion_deadline(life: Life) -> None:
    project = life.signed_on(paris(2021, 5, 31, 16))
    report = sweep(life.at(paris(2021, 6, 23, 8)).workflow)  # 7 days before 30/06, at 08:00
    assert [(r.project, r.deadline, r.days_before) for r in report.reminders] == [(project, "completion_deadline", 7)]


# --- extensions ----------------------------------------------------------------------------------------------


def test_an_extension_must_be_later_than_the_date_in_force(life: Life) -> None:
    project = life.signed_on(paris(2021, 5, 31, 16))
    with pytest.raises(DeadlinePassedError, match="not later than the completion_deadline in force"):
        life.fire(project, "extend", until="2021-06-30", reason="avenant")
    with pytest.raises(InvalidArgumentError, match="not a date"):
        life.fire(project, "extend", until="30/09/2021", reason="avenant")
    assert life.fire(project, "extend", until="2021-07-01", reason="avenant n° 1") == "configuration"
    assert life.next_deadline(project) == ("completion_deadline", "2021-07-01")
    assert sweep(life.at(paris(2021, 7, 1, 23, 59, 59)).workflow).transitions == []
    assert [t.dest for t in sweep(life.at(paris(2021, 7, 2)).workflow).transitions] == ["recovery"]


def test_an_extension_of_the_agreement_deadline_saves_a_late_signature(life: Life) -> None:
    project = life.at(paris(2021, 3, 1, 10)).add()
    life.fire(project, "submit")
    life.at(paris(2021, 4, 20, 10)).fire(project, "select", group="A")
    life.at(paris(2021, 6, 30, 12)).fire(project, "extend", until="2021-07-15", reason="retard de l'éditeur")
    assert sweep(life.at(paris(2021, 7, 1, 0, 5)).workflow).transitions == []
    life.at(paris(2021, 7, 10, 10)).fire(project, "file_needs", reference="R")
    life.fire(project, "sign_contract", vendor="V")
    assert life.fire(project, "sign_agreement") == "configuration"


def test_an_extension_is_refused_in_a_state_that_waits_on_no_deadline(life: Life) -> None:
    project = life.signed_on(paris(2021, 5, 31, 16))
    life.workflow.force(project, "completed", "fin", "test")
    with pytest.raises(Exception, match="events allowed there"):
        life.fire(project, "extend", until="2030-01-01", reason="x")


# --- promotion -----------------------------------------------------------------------------------------------


def test_promotion_puts_the_project_in_group_a_and_the_history_keeps_group_b(life: Life) -> None:
    project = life.at(paris(2021, 3, 1, 10)).add()
    life.fire(project, "submit")
    life.at(paris(2021, 4, 20, 10)).fire(project, "select", group="B")
    life.at(paris(2021, 5, 4, 10)).fire(project, "promote")
    view = project_view(life.engine, life.campaigns, project, life.clock.now())
    assert view.project.selection_group == "A"
    with life.engine.connect() as connection:
        params = connection.execute(
            sa.text("SELECT params FROM audit_entry WHERE project_id = :i AND event = 'select'"), {"i": project}
        ).scalar()
    assert params == '{"group": "B"}'


@pytest.mark.parametrize(("grace", "lapses_at"), [(0, paris(2021, 7, 1)), (10, paris(2021, 7, 11))])
def test_a_project_promoted_at_the_last_second_gets_its_grace_days(
    database_url: str, config_dir: Path, tmp_path: Path, grace: int, lapses_at: datetime
) -> None:
    life = Life(database_url, config_dir, tmp_path, promotion_grace_days=grace)
    project = life.at(paris(2021, 3, 1, 10)).add()
    life.fire(project, "submit")
    life.at(paris(2021, 4, 20, 10)).fire(project, "select", group="B")
    life.at(paris(2021, 6, 30, 23, 59, 59)).fire(project, "promote")
    assert sweep(life.at(lapses_at - SECOND).workflow).transitions == []
    assert [t.dest for t in sweep(life.at(lapses_at).workflow).transitions] == ["lapsed"]
    life.engine.dispose()


def test_grace_never_shortens_the_campaign_deadline(database_url: str, config_dir: Path, tmp_path: Path) -> None:
    life = Life(database_url, config_dir, tmp_path, promotion_grace_days=3)
    project = life.at(paris(2021, 3, 1, 10)).add()
    life.fire(project, "submit")
    life.at(paris(2021, 4, 20, 10)).fire(project, "select", group="B")
    life.at(paris(2021, 5, 4, 10)).fire(project, "promote")  # 04/05 + 3 days < 30/06: the campaign's date holds
    assert life.next_deadline(project) == ("agreement_deadline", "2021-06-30")
    life.engine.dispose()


# --- documents -----------------------------------------------------------------------------------------------


def test_every_recorded_value_is_kept_in_the_documents_and_the_single_key_shows_the_latest(
    cli: Cli, tmp_path: Path
) -> None:
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("force", project, "configuration", "--reason", "reprise", now="2021-07-01")
    cli.ok("fire", project, "finish_configuration", "invoice=FAC-1", now="2021-07-02")
    cli.ok("force", project, "configuration", "--reason", "facture annulée", now="2021-07-03")
    cli.ok("fire", project, "finish_configuration", "invoice=FAC-2", now="2021-07-04")
    shown = cli.ok("project", "show", project, "--json").json()
    assert shown["configuration_invoice"] == "FAC-2"
    assert [(d["event"], d["key"], d["value"]) for d in shown["documents"]] == [
        ("finish_configuration", "invoice", "FAC-1"),
        ("finish_configuration", "invoice", "FAC-2"),
    ]
    assert shown["documents"][0]["at"] == "2021-07-01T22:00:00+00:00"
    text = cli.ok("project", "show", project).out
    assert "invoice = FAC-1" in text and "invoice = FAC-2" in text


def test_an_extension_is_told_to_the_owner_and_kept_as_a_document(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    cli.ok("fire", project, "select", "group=A", now="2021-04-20")
    before = snapshot(database_url)
    refused = cli("fire", project, "extend", "until=2021-06-30", "reason=x", now="2021-05-01")
    assert refused.code == 1 and "not later than the agreement_deadline in force (2021-06-30)" in refused.err
    assert cli("fire", project, "extend", "until=2021-13-01", "reason=x", now="2021-05-01").code == 2
    assert snapshot(database_url) == before
    cli.ok("fire", project, "extend", "until=2021-07-31", "reason=avenant n° 1", now="2021-05-01")
    shown = cli.ok("project", "show", project, "--json").json()
    assert shown["next_deadline"]["date"] == "2021-07-31"
    assert shown["documents"][-1]["key"] == "until" and shown["documents"][-1]["value"] == "2021-07-31"
    templates = [m["template"] for m in cli.ok("outbox", "list", "--json").json()]
    assert "deadline_extended" in templates
    cli.ok("check")


# --- the later calls' eligibility ------------------------------------------------------------------------------


def rules(campaign: Campaign, **changes: object) -> Eligibility:
    return replace(campaign.eligibility, **changes)  # type: ignore[arg-type]


@pytest.fixture
def hdf(config_dir: Path) -> Campaign:
    return load_campaigns(config_dir)["hdf-2021"]


def grappe(tmp_path: Path, **file: object):  # type: ignore[no-untyped-def]
    return load_project_file(write_project(tmp_path, **file)).grappe  # type: ignore[arg-type]


def test_max_esms_sends_a_larger_grappe_to_the_national_call(hdf: Campaign, tmp_path: Path) -> None:
    assert eligibility_problems(grappe(tmp_path, esms=49), rules(hdf, max_esms=49)) == []
    problems = eligibility_problems(grappe(tmp_path, esms=50), rules(hdf, max_esms=49))
    assert problems == ["50 ESMS, at most 49 in this call: a grappe of this size applies to the national call"]


def test_acquisition_projects_may_have_to_target_services_socles(hdf: Campaign, tmp_path: Path) -> None:
    one = rules(hdf, min_services_socles_acquisition=1)
    assert eligibility_problems(grappe(tmp_path, socles=("ins", "dmp")), one) == []
    assert eligibility_problems(grappe(tmp_path, socles=("ins",)), one) == [
        "acquisition project targets 0 services socles (none), at least 1 required"
    ]
    assert eligibility_problems(grappe(tmp_path, socles=()), hdf.eligibility) == []  # default 0


def test_categories_name_each_refused_esms(hdf: Campaign, tmp_path: Path) -> None:
    assert eligibility_problems(grappe(tmp_path, esms=15), rules(hdf, categories=("EHPAD",))) == []
    problems = eligibility_problems(grappe(tmp_path, esms=15), rules(hdf, categories=("IME",)))
    assert len(problems) == 15 and problems[0].startswith("ESMS 59100") and "'EHPAD' is not accepted" in problems[0]


def test_most_esms_must_be_in_the_call_departements(hdf: Campaign, tmp_path: Path) -> None:
    spread = grappe(tmp_path, esms=16)  # every FINESS starts with 59
    assert eligibility_problems(spread, rules(hdf, departements=("59",))) == []
    assert eligibility_problems(spread, rules(hdf, departements=("62",))) == [
        "0 of 16 ESMS in this call's départements (62): more than half are required"
    ]
    half = replace(
        spread,
        organisations=tuple(
            replace(o, esms=tuple(replace(e, finess="62" + e.finess[2:]) if i % 2 else e for i, e in enumerate(o.esms)))
            for o in spread.organisations
        ),
    )
    inside = sum(1 for e in half.esms if e.finess.startswith("59"))
    expected = (
        []
        if inside * 2 > 16
        else [f"{inside} of 16 ESMS in this call's départements (59): more than half are required"]
    )
    assert eligibility_problems(half, rules(hdf, departements=("59",))) == expected


def test_a_submission_is_refused_naming_what_the_later_call_rules_break(
    database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    life = Life(database_url, config_dir, tmp_path)
    life.campaigns["hdf-2021"] = replace(
        life.campaigns["hdf-2021"], eligibility=rules(life.campaigns["hdf-2021"], max_esms=19)
    )
    project = life.at(paris(2021, 3, 1, 10)).add(esms=20)
    with pytest.raises(IneligibleError, match="applies to the national call"):
        life.fire(project, "submit")
    assert life.state(project) == "application"
    life.engine.dispose()


# --- time runs forward ----------------------------------------------------------------------------------------


def test_a_change_dated_before_the_projects_last_one_is_refused_and_writes_nothing(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-03-10T10:00").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-10T10:00")  # the same instant is not earlier
    before = snapshot(database_url)
    refused = cli("fire", project, "withdraw", "reason=x", now="2021-03-10T09:59:59")
    assert refused.code == 2 and "out of order" in refused.err and refused.err.count("\n") == 1
    assert cli("force", project, "rework", "--reason", "x", now="2021-03-01").code == 2
    assert snapshot(database_url) == before
    cli.ok("fire", project, "withdraw", "reason=x", now="2021-03-10T10:00:01")
