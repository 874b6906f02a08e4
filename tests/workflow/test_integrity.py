"""Tamper-evident audit, `esms check`, and migrations from each earlier revision with data in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, write_project
from workflow.db import make_engine, migrate


def walk(cli: Cli, tmp_path: Path) -> str:
    project_id = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-03-01").out.strip()
    for now, args in [
        ("2021-03-20", ["submit"]),
        ("2021-04-10", ["select", "group=A"]),
        ("2021-04-11", ["file_needs", "reference=R"]),
        ("2021-04-12", ["sign_contract", "vendor=V"]),
        ("2021-06-01", ["sign_agreement"]),
    ]:
        cli.ok("fire", project_id, *args, now=now)
    return project_id


def execute(database_url: str, statement: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


def test_intact_database_passes_check_and_audit_verify(cli: Cli, tmp_path: Path) -> None:
    walk(cli, tmp_path)
    assert "0 anomalie" in cli.ok("check").out
    assert cli.ok("audit", "verify", "--json").json()["ok"] is True


def test_audit_verify_names_an_edited_row_and_a_deleted_row(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project_id = walk(cli, tmp_path)
    execute(database_url, f"UPDATE audit_entry SET actor = 'mallory' WHERE project_id = {project_id} AND seq = 3")
    execute(database_url, f"DELETE FROM audit_entry WHERE project_id = {project_id} AND seq = 5")
    result = cli("audit", "verify", "--json")
    assert result.code == 5
    problems = {(p["seq"], p["problem"].split(":")[0]) for p in result.json()["problems"]}
    assert (3, "edited") in problems
    assert (5, "missing") in problems
    assert cli("audit", "verify").err.count("\n") == 1


@pytest.mark.parametrize(
    ("statement", "invariant"),
    [
        ("UPDATE tranche SET released_at = NULL WHERE number = 1", "tranches"),
        ("UPDATE tranche SET released_at = '2021-06-02 00:00:00' WHERE number = 2", "tranches"),
        ("UPDATE tranche SET amount_cents = amount_cents + 1 WHERE number = 3", "tranches"),
        ("UPDATE project SET state = 'rollout'", "history"),
        ("DELETE FROM outbox_message WHERE template = 'tranche_released'", "messages"),
    ],
)
def test_check_reports_each_broken_invariant(
    cli: Cli, tmp_path: Path, database_url: str, statement: str, invariant: str
) -> None:
    walk(cli, tmp_path)
    execute(database_url, statement)
    result = cli("check", "--json")
    assert result.code == 5
    assert invariant in {v["invariant"] for v in result.json()["violations"]}


@pytest.mark.parametrize("revision", ["0001_initial", "0002_scheduler_and_outbox"])
def test_upgrade_from_an_earlier_revision_keeps_the_data_and_verifies(
    database_url: str, revision: str, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database_url)
    migrate(engine, revision)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO project (id, campaign_id, name, kind, state, services_socles, owner_name, owner_email, "
                "esms_count, small_esms_count, total_cents, created_at, updated_at, version) VALUES "
                "(1, 'hdf-2021', 'Ancien projet', 'acquisition', 'agreement', '', 'Asso', 'a@b.example', 20, 4, "
                "58000000, '2021-03-01 10:00:00', '2021-05-01 10:00:00', 3)"
            )
        )
        for seq, (event, source, dest) in enumerate(
            [("register", None, "application"), ("force", "application", "agreement")], start=1
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO audit_entry (project_id, seq, at, recorded_at, event, source, dest, actor, reason, "
                    "forced, params) VALUES (1, :seq, '2021-03-01 10:00:00', '2021-03-01 10:00:00', :event, "
                    ":source, :dest, 'ars', NULL, :forced, '{}')"
                ),
                {"seq": seq, "event": event, "source": source, "dest": dest, "forced": event == "force"},
            )
        for number, amount in ((1, 23_200_000), (2, 23_200_000), (3, 11_600_000)):
            connection.execute(
                sa.text(
                    "INSERT INTO tranche (project_id, number, percent, amount_cents) "
                    f"VALUES (1, {number}, '40', {amount})"
                )
            )
    cli = Cli(
        {"ESMS_DATABASE_URL": database_url, "ESMS_CONFIG_DIR": str(config_dir), "ESMS_DATA_DIR": str(tmp_path)}, capsys
    )
    upgraded = cli.ok("init", now="2021-05-02T10:00:00+02:00").out
    assert f"migrée de {revision} à" in upgraded
    if revision == "0001_initial":  # stored before the scheduler existed: scheduled by `esms init`
        assert "1 projet planifié(s) pour le balayage des échéances" in upgraded
    assert cli.ok("project", "show", "1", "--json").json()["state"] == "agreement"
    from workflow.audit import verify

    checked, problems = verify(engine)
    assert checked == 2 and problems == []
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT state FROM project WHERE id = 1")).scalar() == "agreement"
        assert connection.execute(sa.text("SELECT COUNT(*) FROM tranche")).scalar() == 3
    engine.dispose()
