"""The `esms` CLI on a fresh database: a project from application to completion (in-process), and the real
entry point in subprocesses: exit codes, JSON on stdout, one-line errors without traceback (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli, write_project

# (instant, event and arguments, expected state, tranches expected released after it)
WALK = [
    ("2021-03-31T23:59:59+02:00", ["submit"], "selection", 0),
    ("2021-04-01T09:00:00+02:00", ["select", "group=A"], "needs_statement", 0),
    ("2021-04-02T09:00:00+02:00", ["file_needs", "reference=RESAH-2021-0042"], "vendor_contract", 0),
    ("2021-05-10T09:00:00+02:00", ["sign_contract", "vendor=Éditeur DUI"], "agreement", 0),
    ("2021-06-30T23:59:59+02:00", ["sign_agreement"], "configuration", 1),
    ("2021-10-01T09:00:00+02:00", ["finish_configuration", "invoice=FAC-1"], "rollout", 2),
    ("2022-03-01T09:00:00+01:00", ["finish_rollout", "invoice=FAC-2"], "usage_evaluation", 2),
    ("2022-06-01T09:00:00+02:00", ["verify_usage", "dui_actifs=85", "ins_qualifiees=50"], "completed", 3),
]


def test_acquisition_project_goes_from_application_to_completed_with_exact_tranches(cli: Cli, tmp_path: Path) -> None:
    project_file = write_project(tmp_path, esms=20, small=4)
    added = cli("project", "add", str(project_file), "--json", now="2021-03-01T10:00:00+01:00")
    assert added.code == 0, added.err
    project_id = str(added.json()["id"])

    shown = cli("project", "show", project_id, "--json").json()
    assert shown["state"] == "application"
    assert shown["total_eur"] == "580000.00"
    assert [t["amount_eur"] for t in shown["tranches"]] == ["232000.00", "232000.00", "116000.00"]
    assert {t["status"] for t in shown["tranches"]} == {"pending"}

    release_instants: dict[int, str] = {}
    for now, (event, *args), state, released in WALK:
        result = cli("fire", project_id, event, *args, "--actor", "ars-hdf", now=now)
        assert result.code == 0, result.err
        shown = cli("project", "show", project_id, "--json").json()
        assert shown["state"] == state
        statuses = [t["status"] for t in shown["tranches"]]
        assert statuses == ["released"] * released + ["pending"] * (3 - released)
        for tranche in shown["tranches"]:
            if tranche["status"] == "released":
                release_instants.setdefault(tranche["number"], tranche["released_at"])
                # Released once, stamped once: later events never move the stamp.
                assert tranche["released_at"] == release_instants[tranche["number"]]

    assert release_instants == {
        1: "2021-06-30T21:59:59+00:00",
        2: "2021-10-01T07:00:00+00:00",
        3: "2022-06-01T07:00:00+00:00",
    }
    assert shown["selection_group"] == "A"
    assert shown["next_deadline"] is None

    again = cli("fire", project_id, "verify_usage", "dui_actifs=90", "ins_qualifiees=90")
    assert again.code == 1
    assert again.err.count("\n") == 1 and "completed" in again.err

    history = cli("project", "history", project_id, "--json").json()
    assert [h["event"] for h in history] == ["register"] + [step[1][0] for step in WALK]
    assert all(h["actor"] == "ars-hdf" for h in history[1:])
    assert all(not h["forced"] for h in history)
    assert history[1]["at"] == "2021-03-31T21:59:59+00:00"
    assert history[1]["recorded_at"] > "2026"  # the real wall clock, not the simulated instant

    funding = cli("funding", "--campaign", "hdf-2021", "--json").json()
    assert funding[0]["committed_eur"] == "580000.00"
    assert [t["amount_eur"] for t in funding[0]["released"]] == ["232000.00", "232000.00", "116000.00"]
    assert funding[0]["remaining_eur"] == "1420000.00"


def errors(tmp_path: Path) -> list[tuple[list[str], int]]:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"name = \xff\xfe\n")
    return [
        (["project", "add", str(bad)], 2),
        (["project", "show", "42"], 2),
        (["fire", "1", "no_such_event"], 2),
        (["--now", "31/03/2021", "project", "list"], 2),
        (["project", "list", "--state", "nowhere"], 2),
        (["frobnicate"], 2),
    ]


def test_cli_errors_are_one_line_without_traceback(cli: Cli, tmp_path: Path) -> None:
    for args, code in errors(tmp_path):
        result = cli(*args)
        assert result.code == code, (args, result.err)
        assert result.out == ""
        assert result.err.count("\n") == 1, result.err
        assert "Traceback" not in result.err
        assert result.err.startswith("esms: ")


@pytest.mark.slow
def test_real_entry_point_exits_with_the_codes_and_prints_json_or_one_line(cli: Cli, tmp_path: Path) -> None:
    added = cli.subprocess("project", "add", str(write_project(tmp_path)), "--json", now="2021-03-01")
    assert (added.code, added.err) == (0, "")
    assert added.json() == {"id": 1}
    refused = cli.subprocess("fire", "1", "select", "group=A", now="2021-03-20")
    assert refused.code == 1 and refused.out == ""
    assert refused.err.startswith("esms: ") and refused.err.count("\n") == 1
    for args, code in errors(tmp_path):
        result = cli.subprocess(*args)
        assert result.code == code, (args, result.err)
        assert result.err.count("\n") == 1, result.err
        assert "Traceback" not in result.err
        assert result.err.startswith("esms: ")
