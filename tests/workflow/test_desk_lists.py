"""The programme team's lists (issue "The programme team's desk"): deadlines to chase, the project list and the
project's grappe."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, write_project


def waiting_for_agreement(cli: Cli, tmp_path: Path, name: str, email: str) -> str:
    project = cli.ok("project", "add", str(write_project(tmp_path, name=name, owner_email=email)), now="2021-02-20")
    project_id = project.out.strip()
    cli.ok("fire", project_id, "submit", now="2021-03-01")
    cli.ok("fire", project_id, "select", "group=A", now="2021-04-20")
    return project_id


def test_deadlines_lists_the_owners_to_chase_soonest_first_within_the_window(cli: Cli, tmp_path: Path) -> None:
    late = waiting_for_agreement(cli, tmp_path, "Grappe A", "a@example.org")
    early = cli.ok(
        "project", "add", str(write_project(tmp_path, name="Grappe B", owner_email="b@example.org")), now="2021-02-20"
    ).out.strip()
    rows = cli.ok("deadlines", "--json", now="2021-03-20T10:00").json()
    assert [r["id"] for r in rows] == [int(early)]  # 31/03 is 11 days away; 30/06 is beyond 30 days
    assert rows[0] == {
        "id": int(early),
        "name": "Grappe B",
        "campaign": "hdf-2021",
        "state": "application",
        "deadline": {"name": "application_deadline", "date": "2021-03-31", "at": "2021-03-31T22:00:00+00:00"},
        "days_left": 11,
        "owner": {"name": "Association Les Tilleuls", "email": "b@example.org"},
        "reminders_sent": 0,
    }
    cli.ok("tick", now="2021-06-16T08:00")  # B lapsed on 01/04; A gets its reminder 14 days before 30/06
    rows = cli.ok("deadlines", "--days", "14", "--json", now="2021-06-16T09:00").json()
    assert [(r["id"], r["days_left"], r["reminders_sent"]) for r in rows] == [(int(late), 14, 1)]
    assert cli.ok("deadlines", "--days", "13", "--json", now="2021-06-16T09:00").json() == []
    text = cli.ok("deadlines", "--days", "14", now="2021-06-16T09:00").out
    assert "date limite de signature de la convention : 30/06/2021" in text and "1 projet avec" in text
    assert cli("deadlines", "--campaign", "nope").code == 2


def test_project_list_json_gives_owner_esms_total_and_next_deadline(cli: Cli, tmp_path: Path) -> None:
    project = waiting_for_agreement(cli, tmp_path, "Grappe A", "a@example.org")
    [row] = cli.ok("project", "list", "--json", now="2021-05-01").json()
    assert row["id"] == int(project) and row["owner"] == {"name": "Association Les Tilleuls", "email": "a@example.org"}
    assert row["esms"] == 20 and row["total_eur"] == "580000.00"
    assert row["next_deadline"]["name"] == "agreement_deadline" and row["next_deadline"]["date"] == "2021-06-30"
    text = cli.ok("project", "list", now="2021-05-01").out
    assert "expression de besoins (RESAH)" in text and "580\u202f000,00\u00a0€" in text and "1 projet" in text


def test_project_show_lists_the_organisations_with_their_esms(cli: Cli, tmp_path: Path) -> None:
    project = cli.ok(
        "project", "add", str(write_project(tmp_path, organisations=3, esms=15, small=2)), now="2021-02-20"
    )
    text = cli.ok("project", "show", project.out.strip()).out
    assert "Organisation 1 (FINESS 590000000) : 5 ESMS" in text
    assert "591000000  ESMS 1 (EHPAD, petit ESMS)" in text and "591000002  ESMS 3 (EHPAD)" in text
