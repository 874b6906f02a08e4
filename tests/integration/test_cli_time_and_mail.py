"""The CLI around time and mail: `esms tick --json`, `esms digest`, `esms outbox list/send/retry`."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from tests.conftest import Cli, write_project


def add(cli: Cli, tmp_path: Path, now: str = "2021-03-01") -> str:
    return cli.ok("project", "add", str(write_project(tmp_path)), now=now).out.strip()


def test_tick_json_says_what_the_pass_did_and_a_second_tick_does_nothing(cli: Cli, tmp_path: Path) -> None:
    first, second = add(cli, tmp_path), add(cli, tmp_path)
    cli.ok("fire", second, "submit", now="2021-03-10")
    report = cli.ok("tick", "--json", now="2021-04-01T00:00:00+02:00").json()
    assert [(t["project"], t["dest"]) for t in report["transitions"]] == [(int(first), "lapsed")]
    assert report["mail"]["sent"] >= 2  # the lapse and the acknowledgement, written as .eml files
    again = cli.ok("tick", "--json", now="2021-04-01T00:00:00+02:00").json()
    assert again["due"] == 0 and again["transitions"] == [] and again["mail"]["sent"] == 0


def test_digest_lists_undecided_projects_near_deadlines_and_yesterdays_tranches(cli: Cli, tmp_path: Path) -> None:
    cli.env["ESMS_ADMIN_EMAILS"] = "equipe@ars.example, chef@ars.example"
    undecided = add(cli, tmp_path)
    cli.ok("fire", undecided, "submit", now="2021-03-10")
    near = add(cli, tmp_path)
    cli.ok("force", near, "agreement", "--reason", "préparation", now="2021-06-01")
    paid = add(cli, tmp_path)
    cli.ok("force", paid, "agreement", "--reason", "préparation", now="2021-06-01")
    cli.ok("fire", paid, "sign_agreement", now="2021-06-21T15:00:00+02:00")
    assert "mis en file" in cli.ok("digest", now="2021-06-22T08:00:00+02:00").out
    assert "déjà mis en file" in cli.ok("digest", now="2021-06-22T09:00:00+02:00").out
    cli.ok("outbox", "send", now="2021-06-22T08:00:00+02:00")
    digests = [
        message
        for message in (
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted((Path(cli.env["ESMS_DATA_DIR"]) / "mail").glob("*.eml"))
        )
        if message["X-ESMS-Template"] == "digest"
    ]
    assert len(digests) == 1
    digest = digests[0]
    assert digest["To"] == "equipe@ars.example, chef@ars.example"
    text = digest.get_body(preferencelist=("plain",)).get_content()
    assert "Grappe du Hainaut" in text
    assert "232\u202f000,00\u00a0€" in text  # yesterday's tranche
    assert "30 juin 2021" in text  # the agreement deadline of the project near it


def test_digest_without_admin_addresses_is_bad_input(cli: Cli) -> None:
    result = cli("digest")
    assert result.code == 2 and "ESMS_ADMIN_EMAILS" in result.err


def test_outbox_list_retry_and_statuses(cli: Cli, tmp_path: Path) -> None:
    project = add(cli, tmp_path)
    cli.ok("fire", project, "submit", now="2021-03-10")
    pending = cli.ok("outbox", "list", "--status", "pending", "--json").json()
    assert [m["template"] for m in pending] == ["submission_received"]
    assert cli("outbox", "list", "--status", "lost").code == 2
    retry = cli("outbox", "retry", str(pending[0]["id"]))
    assert retry.code == 2 and "only dead messages" in retry.err
    assert cli("outbox", "retry").code == 2
    assert cli("outbox", "retry", "999").code == 2
    cli.ok("outbox", "send", now="2021-03-10")
    assert [m["status"] for m in cli.ok("outbox", "list", "--json").json()] == ["sent"]
    assert "0 message à renvoyer" in cli.ok("outbox", "retry", "--dead").out
