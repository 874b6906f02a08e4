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
