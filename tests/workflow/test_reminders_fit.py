"""Mail that fits the state (issue "The programme team's desk"): a reminder lists only the steps still ahead, and
all reminders of one deadline update one calendar event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from states.lifecycle import DEADLINES_BY_KEY
from tests.conftest import Cli, write_project
from workflow.db import make_engine


@pytest.mark.parametrize(
    ("state", "todo"),
    [
        (
            "needs_statement",
            "déposer l'expression de besoins sur la plateforme du RESAH, contractualiser avec un éditeur de DUI et "
            "signer la convention de financement avec l'ARS",
        ),
        ("vendor_contract", "contractualiser avec un éditeur de DUI et signer la convention de financement avec l'ARS"),
        ("agreement", "signer la convention de financement avec l'ARS"),
    ],
)
def test_a_reminder_lists_only_the_steps_still_ahead(state: str, todo: str) -> None:
    assert DEADLINES_BY_KEY["agreement_deadline"].todo_from(state) == todo


def reminders(cli: Cli) -> list[tuple[str, str, str]]:
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT body_text, attachments FROM outbox_message WHERE template = 'reminder' ORDER BY id")
        ).all()
    engine.dispose()
    return [(str(body), *_ics(str(attachments))) for body, attachments in rows]


def _ics(attachments: str) -> tuple[str, str]:
    content = str(json.loads(attachments)[0]["content"])
    fields = dict(line.split(":", 1) for line in content.replace("\r\n ", "").split("\r\n") if ":" in line)
    return fields["UID"], fields["SEQUENCE"]


def test_every_reminder_of_a_deadline_updates_one_calendar_event(cli: Cli, tmp_path: Path) -> None:
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    cli.ok("fire", project, "select", "group=A", now="2021-04-20")
    cli.ok("tick", now="2021-06-16T08:00")  # 14 days before 30/06, in needs_statement
    cli.ok("fire", project, "file_needs", "reference=R", now="2021-06-17")
    cli.ok("fire", project, "sign_contract", "vendor=V", now="2021-06-18")
    cli.ok("tick", now="2021-06-23T08:00")  # 7 days before, in agreement
    first, second = reminders(cli)
    assert first[1] == second[1] == f"p{project}-agreement_deadline@esms-numerique"
    assert (first[2], second[2]) == ("0", "1")
    assert "déposer l'expression de besoins" in first[0]
    assert "déposer l'expression de besoins" not in second[0] and "signer la convention" in second[0]


def with_contact_and_team(config_dir: Path) -> None:
    path = config_dir / "campaigns" / "hdf-2021.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        'timezone = "Europe/Paris"\n', 'timezone = "Europe/Paris"\nadmin_emails = ["equipe@ars-hdf.example"]\n', 1
    )
    text = text[: text.index("\n[contact]")]  # the shipped contact, replaced by one with a phone number
    text += '\n[contact]\nname = "Mission ESMS numérique"\nemail = "esms@ars-hdf.example"\nphone = "03 62 72 77 00"\n'
    path.write_text(text, encoding="utf-8")


def bodies(cli: Cli, template: str) -> list[tuple[str, str]]:
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT recipients, body_text FROM outbox_message WHERE template = :t ORDER BY id"), {"t": template}
        ).all()
    engine.dispose()
    return [(str(r), str(b)) for r, b in rows]


def test_owner_messages_close_with_the_campaign_contact(cli: Cli, tmp_path: Path, config_dir: Path) -> None:
    with_contact_and_team(config_dir)
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    [(_, body)] = bodies(cli, "submission_received")
    closing = "Votre contact à l'ARS : Mission ESMS numérique, esms@ars-hdf.example, 03 62 72 77 00"
    assert closing in " ".join(body.split())


def test_a_campaign_team_gets_the_digest_of_its_campaign_and_the_admins_get_every_campaign(
    cli: Cli, tmp_path: Path, config_dir: Path
) -> None:
    with_contact_and_team(config_dir)
    cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20")
    cli.env["ESMS_ADMIN_EMAILS"] = "programme@cnsa.example"
    cli.ok("digest", now="2021-03-20T08:00")
    digests = bodies(cli, "digest")
    assert [json.loads(r) for r, _ in digests] == [["programme@cnsa.example"], ["equipe@ars-hdf.example"]]
    everything, own = digests[0][1], digests[1][1]
    assert "amorçage Hauts-de-France (Hauts-de-France)" in everything and "Auvergne-Rhône-Alpes" in everything
    assert "amorçage Hauts-de-France (Hauts-de-France)" in own and "Auvergne-Rhône-Alpes" not in own
    del cli.env["ESMS_ADMIN_EMAILS"]
    cli.ok("digest", now="2021-03-21T08:00")  # the campaign's team alone is enough
    assert len(bodies(cli, "digest")) == 3


def test_owner_messages_reply_to_the_campaign_contact(cli: Cli, tmp_path: Path, config_dir: Path) -> None:
    from sqlmodel import Session, select

    from notifications.models import OutboxMessage
    from notifications.relay import build_email

    with_contact_and_team(config_dir)
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    with Session(engine) as session:
        [message] = session.exec(select(OutboxMessage)).all()
    engine.dispose()
    email = build_email(message, "ESMS numérique <esms-numerique@esms-numerique.invalid>", message.created_at)
    assert email["Reply-To"] == "esms@ars-hdf.example"
    assert "no-reply" not in str(email["From"])
