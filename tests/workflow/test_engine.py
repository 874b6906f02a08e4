"""The engine on a real database (SQLite and PostgreSQL): refusals change nothing, forced moves, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, snapshot, write_project

ADDED = "2021-03-01T10:00:00+01:00"


def add_project(cli: Cli, tmp_path: Path, **kwargs: object) -> str:
    return str(cli.ok("project", "add", str(write_project(tmp_path, **kwargs)), "--json", now=ADDED).json()["id"])  # type: ignore[arg-type]


def advance_to_agreement(cli: Cli, project_id: str) -> None:
    cli.ok("fire", project_id, "submit", now="2021-03-20")
    cli.ok("fire", project_id, "select", "group=A", now="2021-04-10")
    cli.ok("fire", project_id, "file_needs", "reference=R1", now="2021-04-11")
    cli.ok("fire", project_id, "sign_contract", "vendor=V", now="2021-04-12")


REFUSED = [
    # (state to reach first, command, exit code)
    ("application", ["fire", "{id}", "submit"], 1, "2021-04-01T00:00:00+02:00"),  # after the deadline
    ("application", ["fire", "{id}", "submit"], 1, "2021-02-14T23:59:59+01:00"),  # before the call opens
    ("application", ["fire", "{id}", "select", "group=A"], 1, "2021-04-10"),  # wrong state
    ("application", ["fire", "{id}", "select"], 2, "2021-04-10"),  # missing parameter
    ("application", ["fire", "{id}", "withdraw", "reason"], 2, None),  # not key=value
    ("application", ["fire", "{id}", "explode"], 2, None),  # unknown event
    ("application", ["fire", "999", "submit"], 2, None),  # unknown project
    ("application", ["fire", "abc", "submit"], 2, None),  # malformed id
    ("application", ["force", "{id}", "nowhere", "--reason", "x"], 2, None),  # unknown state
    ("application", ["force", "{id}", "selection", "--reason", "  "], 2, None),  # empty reason
    ("application", ["force", "{id}", "application", "--reason", "x"], 2, None),  # already there
    ("agreement", ["fire", "{id}", "sign_agreement"], 1, "2021-07-01T00:00:00+02:00"),  # deadline passed
    ("agreement", ["fire", "{id}", "sign_agreement"], 2, "2021-06-31"),  # impossible date
]


@pytest.mark.parametrize(("reach", "command", "code", "now"), REFUSED)
def test_refused_command_leaves_the_database_unchanged(
    cli: Cli, tmp_path: Path, database_url: str, reach: str, command: list[str], code: int, now: str | None
) -> None:
    project_id = add_project(cli, tmp_path)
    if reach == "agreement":
        advance_to_agreement(cli, project_id)
    before = snapshot(database_url)
    result = cli(*[part.format(id=project_id) for part in command], now=now)
    assert result.code == code, result.err
    assert result.err.startswith("esms: ") and result.err.count("\n") == 1
    assert result.out == ""
    assert snapshot(database_url) == before


def test_ineligible_submission_is_refused_and_changes_nothing(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project_id = add_project(cli, tmp_path, esms=14, small=0)
    before = snapshot(database_url)
    result = cli("fire", project_id, "submit", now="2021-03-20")
    assert result.code == 1
    assert "14 ESMS, at least 15 required" in result.err
    assert snapshot(database_url) == before


def test_malformed_project_file_is_refused_and_changes_nothing(cli: Cli, tmp_path: Path, database_url: str) -> None:
    add_project(cli, tmp_path)
    before = snapshot(database_url)
    bad = write_project(tmp_path)
    bad.write_text(bad.read_text().replace('finess = "591001003"', 'finess = "591001002"'))
    result = cli("project", "add", str(bad))
    assert result.code == 2
    assert "already listed" in result.err and str(bad) in result.err
    unknown_campaign = write_project(tmp_path, campaign="idf-2031")
    assert cli("project", "add", str(unknown_campaign)).code == 2
    assert snapshot(database_url) == before


def history(cli: Cli, project_id: str) -> list[dict[str, object]]:
    return cli.ok("project", "history", project_id, "--json").json()  # type: ignore[no-any-return]


def tranches(cli: Cli, project_id: str) -> list[tuple[str, str | None]]:
    shown = cli.ok("project", "show", project_id, "--json").json()
    return [(t["status"], t["released_at"]) for t in shown["tranches"]]


def test_forced_transition_is_audited_moves_no_money_and_names_the_milestones_reached(cli: Cli, tmp_path: Path) -> None:
    project_id = add_project(cli, tmp_path)
    moved = cli.ok(
        "force",
        project_id,
        "rollout",
        "--reason",
        "reprise d'un dossier papier",
        "--actor",
        "ars",
        "--json",
        now="2021-05-01T12:00:00+02:00",
    ).json()
    assert moved["released"] == []
    assert moved["pending_milestones"] == [1, 2]
    last = history(cli, project_id)[-1]
    assert last == {
        **last,
        "event": "force",
        "source": "application",
        "dest": "rollout",
        "actor": "ars",
        "reason": "reprise d'un dossier papier",
        "forced": True,
        "approved_by": None,
    }
    assert tranches(cli, project_id) == [("pending", None)] * 3

    # Money moves on two people's word, each tranche once.
    for number in ("1", "2"):
        released = cli.ok(
            "release",
            project_id,
            number,
            "--reason",
            "factures reçues sur papier",
            "--actor",
            "ars",
            "--approved-by",
            "directrice",
            "--json",
            now="2021-05-02T12:00:00+02:00",
        ).json()
        assert [t["number"] for t in released["released"]] == [int(number)]
        assert released["state"] == "rollout" and released["approved_by"] == "directrice"
    stamp = "2021-05-02T10:00:00+00:00"
    assert tranches(cli, project_id) == [("released", stamp), ("released", stamp), ("pending", None)]
    last = history(cli, project_id)[-1]
    assert last == {
        **last,
        "event": "release",
        "source": "rollout",
        "dest": "rollout",
        "forced": True,
        "approved_by": "directrice",
        "params": {"tranche": "2"},
    }

    # Backwards: nothing released, nothing undone.
    back = cli.ok(
        "force", project_id, "agreement", "--reason", "convention à resigner", "--json", now="2021-05-10"
    ).json()
    assert back["released"] == [] and back["pending_milestones"] == []
    assert tranches(cli, project_id) == [("released", stamp), ("released", stamp), ("pending", None)]

    # Forwards again past released milestones: they stay released with their first stamp.
    cli.ok("fire", project_id, "sign_agreement", now="2021-06-01")
    assert tranches(cli, project_id)[:2] == [("released", stamp), ("released", stamp)]
    done = cli.ok(
        "force",
        project_id,
        "completed",
        "--reason",
        "critères vérifiés sur place",
        "--json",
        now="2022-01-10T12:00:00+01:00",
    ).json()
    assert done["released"] == [] and done["pending_milestones"] == [3]
    assert tranches(cli, project_id)[2] == ("pending", None)
    assert [h["forced"] for h in history(cli, project_id)] == [False, True, True, True, True, False, True]
    cli.ok("check")


def test_forced_move_to_an_end_releases_nothing(cli: Cli, tmp_path: Path) -> None:
    project_id = add_project(cli, tmp_path)
    result = cli.ok("force", project_id, "withdrawn", "--reason", "dissolution", "--json").json()
    assert result["released"] == []
    assert [s for s, _ in tranches(cli, project_id)] == ["pending"] * 3


def test_concurrent_change_makes_the_later_writer_fail_cleanly(
    cli: Cli, tmp_path: Path, database_url: str, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workflow.engine as engine_module
    from states.errors import ConflictError
    from workflow.campaigns import load_campaigns
    from workflow.clock import SimulatedClock
    from workflow.db import make_engine

    project_id = int(add_project(cli, tmp_path))
    cli.ok("force", str(project_id), "needs_statement", "--reason", "mise en place", now="2021-03-20T09:00:00+01:00")
    campaigns = load_campaigns(config_dir)
    clock = SimulatedClock(engine_module.datetime.fromisoformat("2021-03-20T10:00:00+01:00"))
    first = engine_module.Workflow(make_engine(database_url), campaigns, clock)
    second = engine_module.Workflow(make_engine(database_url), campaigns, clock)
    real_for_project = engine_module.for_project
    interleaved: list[bool] = []

    def for_project_while_another_process_withdraws(campaign, project):  # type: ignore[no-untyped-def]
        # The first writer has read the project; the second one commits a change before it writes. (An event
        # that commits money takes the programme's lock first and would simply wait: `file_needs` does not.)
        if not interleaved:
            interleaved.append(True)
            second.fire(project_id, "withdraw", {"reason": "abandon"}, "owner")
        return real_for_project(campaign, project)

    monkeypatch.setattr(engine_module, "for_project", for_project_while_another_process_withdraws)
    # PostgreSQL sees the version moved; SQLite refuses the stale snapshot first: both are the same conflict.
    with pytest.raises(ConflictError, match="another process"):
        first.fire(project_id, "file_needs", {"reference": "RESAH-1"}, "officer")
    monkeypatch.setattr(engine_module, "for_project", real_for_project)

    events = [h["event"] for h in history(cli, str(project_id))]
    assert events == ["register", "force", "withdraw"]
    assert cli.ok("project", "show", str(project_id), "--json").json()["state"] == "withdrawn"
    assert ConflictError("x").exit_code == 3
