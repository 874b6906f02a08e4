"""Personal data kept no longer than needed (issue "Reliability and data protection", RGPD): `esms purge`."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import Cli, snapshot, write_project
from workflow.db import make_engine


def with_retention(config_dir: Path, months: int) -> None:
    path = config_dir / "campaigns" / "hdf-2021.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + f"\n[retention]\nmonths_after_end = {months}\n", encoding="utf-8"
    )


def rows(cli: Cli, query: str, **params: object) -> list[tuple[object, ...]]:
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(query), params).all()]
    finally:
        engine.dispose()


def ended_project(cli: Cli, tmp_path: Path, email: str = "dui@tilleuls.example") -> str:
    project = cli.ok("project", "add", str(write_project(tmp_path, owner_email=email)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    cli.ok("fire", project, "withdraw", "reason=fusion", now="2021-03-15T12:00")
    cli.ok("tick", now="2021-03-15T12:01")  # the withdrawal message is written
    return project


def test_a_project_is_purged_only_once_its_retention_has_passed(cli: Cli, tmp_path: Path, config_dir: Path) -> None:
    with_retention(config_dir, 12)
    project = ended_project(cli, tmp_path)
    assert cli.ok("purge", "--json", now="2022-03-15T23:59").json()["projects"] == []
    dry = cli.ok("purge", "--dry-run", "--json", now="2022-03-16T00:00:01").json()
    assert dry["dry_run"] is True and [p["id"] for p in dry["projects"]] == [int(project)]
    assert rows(cli, "SELECT owner_email FROM project") == [("dui@tilleuls.example",)]  # a dry run writes nothing

    done = cli.ok("purge", "--json", now="2022-03-16T00:00:01").json()
    assert [(p["id"], p["state"], p["messages"]) for p in done["projects"]] == [(int(project), "withdrawn", 2)]
    shown = cli.ok("project", "show", project, "--json").json()
    assert shown["owner"] == {"name": "porteur pseudonymisé", "email": f"porteur-{project}@pseudonymise.invalid"}
    for recipients, text, html in rows(cli, "SELECT recipients, body_text, body_html FROM outbox_message"):
        assert json.loads(str(recipients)) == [f"porteur-{project}@pseudonymise.invalid"] and text == html == ""
    # No personal data in the audit, and the chain still verifies; a second purge finds nothing.
    audit = rows(cli, "SELECT event, actor, reason, params FROM audit_entry ORDER BY id")
    assert audit[-1][0] == "purge" and all("tilleuls" not in str(row) for row in audit)
    cli.ok("audit", "verify")
    cli.ok("check")
    assert cli.ok("purge", "--json", now="2030-01-01").json()["projects"] == []


def test_a_project_in_recovery_is_never_purged(cli: Cli, tmp_path: Path, config_dir: Path) -> None:
    with_retention(config_dir, 1)
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("force", project, "agreement", "--reason", "reprise", now="2021-03-01")
    cli.ok("fire", project, "sign_agreement", now="2021-03-02")
    cli.ok("fire", project, "withdraw", "reason=abandon", now="2021-03-03")
    assert cli.ok("project", "show", project, "--json").json()["state"] == "recovery"
    assert cli.ok("purge", "--json", now="2030-01-01").json()["projects"] == []


def test_without_a_retention_period_nothing_is_purged(cli: Cli, tmp_path: Path, database_url: str) -> None:
    ended_project(cli, tmp_path)
    before = snapshot(database_url)
    assert cli.ok("purge", "--json", now="2040-01-01").json()["projects"] == []
    assert snapshot(database_url) == before
