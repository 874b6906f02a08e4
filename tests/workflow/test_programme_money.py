"""Money a programme can defend (issue 10): one ESMS one funding, the envelope as a limit, forced moves that move
no money, releases on two people's word, and the recovery of released money.

Each rule on both sides of its boundary, on SQLite and PostgreSQL, through the engine in-process and through the
CLI (exit codes, one-line messages, nothing written on refusal). The default project file is 20 ESMS (4 small) of
an acquisition: 580 000.00 EUR, tranches of 232 000.00, 232 000.00 and 116 000.00 EUR.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from states.errors import (
    EnvelopeExceededError,
    EsmsAlreadyFundedError,
    EventNotAllowedError,
    ForcedMoveRefusedError,
    InvalidArgumentError,
    RecoveryAmountError,
    ReleaseRefusedError,
)
from tests.conftest import CONFIG_DIR, Cli, Result, snapshot, write_project
from workflow.campaigns import load_campaigns
from workflow.check import check
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.programme import committed_cents
from workflow.project_file import load_project_file

PARIS = ZoneInfo("Europe/Paris")
ADDED = "2021-03-01T10:00:00+01:00"
SUBMITTED = "2021-03-20"
SELECTED = "2021-04-10"
AGREED = "2021-04-13"
AFTER_APPLICATIONS = "2021-04-01T00:00:00+02:00"
AFTER_AGREEMENTS = "2021-07-01T00:00:00+02:00"
TOTAL = "580000.00"
TRANCHE_1 = "232000.00"
FIRST_FINESS = "591000000"  # the first ESMS of the first file of a folder (tests.conftest.write_project)


def small_campaign(config_dir: Path, envelope: str, campaign_id: str = "env-2021") -> str:
    """Write a copy of hdf-2021 with its own id and `envelope` (euros, a decimal string); return its id."""
    text = (CONFIG_DIR / "campaigns" / "hdf-2021.toml").read_text(encoding="utf-8")
    text = text.replace('id = "hdf-2021"', f'id = "{campaign_id}"')
    text, count = re.subn(r"(?m)^envelope = .*$", f'envelope = "{envelope}"', text)
    assert count == 1
    (config_dir / "campaigns" / f"{campaign_id}.toml").write_text(text, encoding="utf-8")
    return campaign_id


def refused(result: Result, code: int = 1) -> str:
    """Assert a refusal: its exit code, one line on stderr, nothing on stdout; return the line."""
    assert result.code == code, (result.code, result.out, result.err)
    assert result.err.startswith("esms: ") and result.err.count("\n") == 1, result.err
    assert result.out == ""
    return result.err


# --- the CLI ---------------------------------------------------------------------------------------------------


def new_file(folder: Path, **kwargs: Any) -> Path:
    """A project file in `folder` (created): the n-th file of a folder has ESMS 59100n000…"""
    folder.mkdir(parents=True, exist_ok=True)
    return write_project(folder, **kwargs)


def add(cli: Cli, folder: Path, **kwargs: Any) -> str:
    return str(cli.ok("project", "add", str(new_file(folder, **kwargs)), "--json", now=ADDED).json()["id"])


def to_selection(cli: Cli, pid: str) -> None:
    cli.ok("fire", pid, "submit", now=SUBMITTED)


def to_agreement(cli: Cli, pid: str, *, group: str = "A") -> None:
    to_selection(cli, pid)
    cli.ok("fire", pid, "select", f"group={group}", now=SELECTED)
    if group == "A":
        cli.ok("fire", pid, "file_needs", "reference=R1", now="2021-04-11")
        cli.ok("fire", pid, "sign_contract", "vendor=V", now="2021-04-12")


def to_configuration(cli: Cli, pid: str) -> None:
    to_agreement(cli, pid)
    cli.ok("fire", pid, "sign_agreement", now=AGREED)


def to_recovery(cli: Cli, pid: str) -> None:
    to_configuration(cli, pid)
    assert cli.ok("fire", pid, "withdraw", "reason=le porteur abandonne", "--json").json()["dest"] == "recovery"


def show(cli: Cli, pid: str) -> dict[str, Any]:
    document: dict[str, Any] = cli.ok("project", "show", pid, "--json", now=AGREED).json()
    return document


def funding(cli: Cli, campaign: str) -> dict[str, Any]:
    (document,) = cli.ok("funding", "--campaign", campaign, "--json").json()
    assert not document["remaining_eur"].startswith("-")
    return dict(document)


def assert_check_clean(cli: Cli) -> None:
    document = cli.ok("check", "--json").json()
    assert document["ok"], document["violations"]


def outbox_keys(database_url: str, project_id: str) -> dict[str, str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT idempotency_key, template FROM outbox_message WHERE project_id = :p"),
                {"p": int(project_id)},
            ).all()
    finally:
        engine.dispose()
    return {str(key): str(template) for key, template in rows}


def execute(database_url: str, statement: str, **params: Any) -> None:
    """Change the database behind the engine's back (a legacy row, a hand edit)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), params)
    finally:
        engine.dispose()


# One ESMS, one funding --------------------------------------------------------------------------------------


def test_project_add_sharing_an_esms_with_a_live_project_is_refused(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    first = add(cli, tmp_path / "a")
    before = snapshot(database_url)
    same_esms = new_file(tmp_path / "b", name="Grappe concurrente")
    line = refused(cli("project", "add", str(same_esms), now=ADDED))
    assert FIRST_FINESS in line and f"project {first}" in line and "hdf-2021" in line
    # Across campaigns too: the other campaign's file shares the same ESMS numbers.
    other_campaign = new_file(tmp_path / "c", campaign="ara-2021")
    line = refused(cli("project", "add", str(other_campaign), now=ADDED))
    assert FIRST_FINESS in line and f"project {first}" in line and "hdf-2021" in line
    assert snapshot(database_url) == before
    # The other side: a file with ESMS of its own is registered.
    add(cli, tmp_path / "a")


def test_project_add_of_several_files_is_all_or_none(cli: Cli, tmp_path: Path, database_url: str) -> None:
    own = new_file(tmp_path / "x")  # 591000000…
    own_too = new_file(tmp_path / "x")  # 591001000…
    sharing = new_file(tmp_path / "y")  # 591000000… again
    before = snapshot(database_url)
    line = refused(cli("project", "add", str(own), str(own_too), str(sharing), now=ADDED))
    assert FIRST_FINESS in line
    assert snapshot(database_url) == before
    assert len(cli.ok("project", "add", str(own), str(own_too), "--json", now=ADDED).json()["ids"]) == 2


ENDS_WITHOUT_MONEY: dict[str, list[tuple[str, list[str], str]]] = {
    "rework": [("submit", [], SUBMITTED), ("select", ["group=C"], SELECTED)],
    "rejected": [("submit", [], SUBMITTED), ("select", ["group=D"], SELECTED)],
    "withdrawn": [("withdraw", ["reason=fusion des organismes"], SUBMITTED)],
    "lapsed": [("lapse", [], AFTER_APPLICATIONS)],
}


@pytest.mark.parametrize("end", sorted(ENDS_WITHOUT_MONEY))
def test_an_end_without_money_frees_the_esms(cli: Cli, tmp_path: Path, database_url: str, end: str) -> None:
    first = add(cli, tmp_path / "a")
    again = new_file(tmp_path / "b", name="Grappe du Hainaut, nouvelle candidature")
    *steps, (last, args, now) = ENDS_WITHOUT_MONEY[end]
    for event, arguments, at in steps:
        cli.ok("fire", first, event, *arguments, now=at)
    before = snapshot(database_url)
    refused(cli("project", "add", str(again), now=ADDED))  # still live, one step before its end
    assert snapshot(database_url) == before
    assert cli.ok("fire", first, last, *args, "--json", now=now).json()["dest"] == end
    assert cli.ok("project", "add", str(again), "--json", now=ADDED).json()["id"] != int(first)
    assert_check_clean(cli)


def test_a_project_that_received_money_keeps_its_esms_when_it_ends(cli: Cli, tmp_path: Path, database_url: str) -> None:
    first = add(cli, tmp_path / "a")
    to_recovery(cli, first)
    cli.ok("fire", first, "record_repayment", f"amount={TRANCHE_1}", "reference=VIR-1")
    assert show(cli, first)["state"] == "recovered"
    before = snapshot(database_url)
    line = refused(cli("project", "add", str(new_file(tmp_path / "b")), now=ADDED))
    assert FIRST_FINESS in line and f"project {first}" in line
    assert snapshot(database_url) == before
    # A project that completed keeps them too.
    done = add(cli, tmp_path / "a")
    to_configuration(cli, done)
    cli.ok("fire", done, "finish_configuration", "invoice=F1")
    cli.ok("fire", done, "finish_rollout", "invoice=F2")
    cli.ok("fire", done, "verify_usage", "dui_actifs=90", "ins_qualifiees=60")
    assert show(cli, done)["state"] == "completed"
    new_file(tmp_path / "c")
    line = refused(cli("project", "add", str(new_file(tmp_path / "c")), now=ADDED))
    assert "591001000" in line and f"project {done}" in line
    assert_check_clean(cli)


def _duplicate_first_esms(database_url: str, *, into: str) -> None:
    """Give project `into` the first ESMS of project 1, as a database written before the rule could hold."""
    execute(
        database_url,
        "UPDATE esms SET finess = :f WHERE id = (SELECT min(id) FROM esms WHERE project_id = :p)",
        f=FIRST_FINESS,
        p=int(into),
    )


def test_submit_checks_the_esms_again(cli: Cli, tmp_path: Path, database_url: str) -> None:
    first = add(cli, tmp_path)
    second = add(cli, tmp_path)
    _duplicate_first_esms(database_url, into=second)
    before = snapshot(database_url)
    line = refused(cli("fire", second, "submit", now=SUBMITTED))
    assert FIRST_FINESS in line and f"project {first}" in line and "hdf-2021" in line
    assert snapshot(database_url) == before
    cli.ok("fire", first, "withdraw", "reason=x", now=SUBMITTED)
    assert cli.ok("fire", second, "submit", "--json", now=SUBMITTED).json()["dest"] == "selection"


def test_select_in_group_a_and_promote_check_the_esms_again(cli: Cli, tmp_path: Path, database_url: str) -> None:
    first = add(cli, tmp_path)
    second = add(cli, tmp_path)
    to_selection(cli, first)
    to_selection(cli, second)
    _duplicate_first_esms(database_url, into=second)
    before = snapshot(database_url)
    line = refused(cli("fire", second, "select", "group=A", now=SELECTED))
    assert FIRST_FINESS in line and f"project {first}" in line
    assert snapshot(database_url) == before
    # Group B commits nothing: the waiting list does not check; promoting does.
    cli.ok("fire", second, "select", "group=B", now=SELECTED)
    before = snapshot(database_url)
    line = refused(cli("fire", second, "promote", now=SELECTED))
    assert FIRST_FINESS in line and f"project {first}" in line
    assert snapshot(database_url) == before
    cli.ok("fire", first, "select", "group=D", now=SELECTED)  # frees the ESMS
    assert cli.ok("fire", second, "promote", "--json", now=SELECTED).json()["dest"] == "needs_statement"


def test_forcing_back_a_project_whose_esms_were_taken_is_refused(cli: Cli, tmp_path: Path, database_url: str) -> None:
    first = add(cli, tmp_path / "a")
    to_agreement(cli, first, group="D")
    second = add(cli, tmp_path / "b")  # takes the freed ESMS
    before = snapshot(database_url)
    line = refused(cli("force", first, "selection", "--reason", "erreur de saisie"))
    assert FIRST_FINESS in line and f"project {second}" in line
    assert snapshot(database_url) == before
    cli.ok("force", first, "rework", "--reason", "groupe C plutôt que D")  # from one end to another: allowed
    assert_check_clean(cli)


# The envelope is a limit ------------------------------------------------------------------------------------

EXACT, ONE_CENT_SHORT = "1160000", "1159999.99"  # two projects of 580 000.00 EUR


@pytest.mark.parametrize("envelope", [EXACT, ONE_CENT_SHORT])
def test_select_in_group_a_up_to_the_envelope(
    cli: Cli, config_dir: Path, tmp_path: Path, database_url: str, envelope: str
) -> None:
    campaign = small_campaign(config_dir, envelope)
    first, second = add(cli, tmp_path, campaign=campaign), add(cli, tmp_path, campaign=campaign)
    to_selection(cli, first)
    to_selection(cli, second)
    cli.ok("fire", first, "select", "group=A", now=SELECTED)
    before = snapshot(database_url)
    result = cli("fire", second, "select", "group=A", now=SELECTED)
    report = funding(cli, campaign)
    if envelope == EXACT:
        assert result.code == 0, result.err
        assert report["committed_eur"] == "1160000.00" and report["remaining_eur"] == "0.00"
        assert report["committed_projects"] == 2
    else:
        line = refused(result)
        assert f"envelope {ONE_CENT_SHORT} EUR" in line and f"{TOTAL} EUR committed" in line
        assert f"project's {TOTAL} EUR" in line
        assert snapshot(database_url) == before
        assert report["committed_eur"] == TOTAL and report["remaining_eur"] == "579999.99"
        assert report["pipeline_eur"] == TOTAL  # still in selection
        # Groups B, C and D commit nothing: the project can still be waitlisted.
        cli.ok("fire", second, "select", "group=B", now=SELECTED)
    assert_check_clean(cli)


@pytest.mark.parametrize("envelope", [EXACT, ONE_CENT_SHORT])
def test_promote_up_to_the_envelope(
    cli: Cli, config_dir: Path, tmp_path: Path, database_url: str, envelope: str
) -> None:
    campaign = small_campaign(config_dir, envelope)
    first, second = add(cli, tmp_path, campaign=campaign), add(cli, tmp_path, campaign=campaign)
    to_agreement(cli, first)
    to_agreement(cli, second, group="B")
    assert funding(cli, campaign)["waitlisted_eur"] == TOTAL
    before = snapshot(database_url)
    result = cli("fire", second, "promote", now=SELECTED)
    if envelope == EXACT:
        assert result.code == 0, result.err
        assert funding(cli, campaign)["remaining_eur"] == "0.00"
    else:
        line = refused(result)
        assert f"envelope {ONE_CENT_SHORT} EUR" in line and f"{TOTAL} EUR committed" in line
        assert snapshot(database_url) == before
        # The first project gives up before any money: its place is free again.
        cli.ok("fire", first, "withdraw", "reason=x", now=AGREED)
        assert cli.ok("fire", second, "promote", "--json", now=AGREED).json()["dest"] == "needs_statement"
        assert funding(cli, campaign)["remaining_eur"] == "579999.99"
    assert funding(cli, campaign)["waitlisted_eur"] == "0.00"
    assert_check_clean(cli)


def test_funding_follows_the_money_through_a_recovery(cli: Cli, config_dir: Path, tmp_path: Path) -> None:
    campaign = small_campaign(config_dir, EXACT)
    paid, waiting, examined, _drafted = (add(cli, tmp_path, campaign=campaign) for _ in range(4))
    to_configuration(cli, paid)
    to_agreement(cli, waiting, group="B")
    to_selection(cli, examined)
    report = funding(cli, campaign)
    assert {k: report[k] for k in report if k.endswith("_eur")} == {
        "envelope_eur": "1160000.00",
        "committed_eur": TOTAL,
        "released_eur": TRANCHE_1,
        "remaining_eur": TOTAL,
        "pipeline_eur": "1160000.00",  # one in application, one in selection
        "waitlisted_eur": TOTAL,
        "to_recover_eur": "0.00",
        "recovered_eur": "0.00",
    }
    cli.ok("fire", paid, "withdraw", "reason=x")
    report = funding(cli, campaign)
    # Withdrawn after its first tranche: it commits what it received, and owes it back.
    assert report["committed_eur"] == TRANCHE_1 and report["remaining_eur"] == "928000.00"
    assert report["to_recover_eur"] == TRANCHE_1 and report["recovered_eur"] == "0.00"
    assert report["committed_projects"] == 0
    cli.ok("fire", paid, "record_repayment", "amount=100000", "reference=VIR-1")
    report = funding(cli, campaign)
    assert report["committed_eur"] == "132000.00" and report["remaining_eur"] == "1028000.00"
    assert report["to_recover_eur"] == "132000.00" and report["recovered_eur"] == "100000.00"
    cli.ok("fire", paid, "waive_recovery", "amount=132000.00", "reason=liquidation judiciaire")
    assert show(cli, paid)["state"] == "recovered"
    report = funding(cli, campaign)
    # Released less repaid: a waiver is money spent, it stays committed.
    assert report["committed_eur"] == "132000.00" and report["to_recover_eur"] == "0.00"
    assert report["recovered_eur"] == "100000.00" and report["released_eur"] == TRANCHE_1
    cli.ok("fire", waiting, "promote", now=SELECTED)
    report = funding(cli, campaign)
    assert report["committed_eur"] == "712000.00" and report["remaining_eur"] == "448000.00"
    assert report["waitlisted_eur"] == "0.00"
    assert_check_clean(cli)


# Forced moves never move money; releasing money takes two people ------------------------------------------------


def test_a_forced_move_releases_nothing_and_names_the_pending_tranches(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    pid = add(cli, tmp_path)
    change = cli.ok("force", pid, "rollout", "--reason", "dossier papier", "--actor", "ars", "--json").json()
    assert change["released"] == [] and change["pending_milestones"] == [1, 2]
    line = cli.ok("force", pid, "completed", "--reason", "dossier papier", "--actor", "ars").out
    assert "tranche 3 atteinte mais non versée" in line and f"esms release {pid} 1" in line
    document = show(cli, pid)
    assert document["released_eur"] == "0.00" and {t["status"] for t in document["tranches"]} == {"pending"}
    assert not any(":tranche:" in key for key in outbox_keys(database_url, pid))
    assert funding(cli, "hdf-2021")["released_eur"] == "0.00"
    assert_check_clean(cli)


@pytest.mark.parametrize("back_to", ["application", "selection"])
def test_a_project_that_received_money_is_not_forced_back_before_its_selection(
    cli: Cli, tmp_path: Path, database_url: str, back_to: str
) -> None:
    # From there, `lapse` (application) or `select group=C/D` would end it keeping the money, with no recovery.
    pid = add(cli, tmp_path)
    to_configuration(cli, pid)
    before = snapshot(database_url)
    line = refused(cli("force", pid, back_to, "--reason", "nouvelle instruction", now=AGREED))
    assert f"232000.00 EUR were released to project {pid}" in line and "recovery" in line
    assert snapshot(database_url) == before
    # The other side: back to the needs statement, where a lapse or a withdrawal claims the money back.
    cli.ok("force", pid, "needs_statement", "--reason", "nouvelle expression de besoins", now=AGREED)
    assert cli.ok("fire", pid, "lapse", "--json", now=AFTER_AGREEMENTS).json()["dest"] == "recovery"
    assert_check_clean(cli)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--reason", "x", "--actor", "ars", "--approved-by", " ARS "], 1, "another person"),
        (["--reason", "x", "--actor", " Marie Curie", "--approved-by", "marie curie "], 1, "another person"),
        (["--reason", "x", "--actor", "ars", "--approved-by", "dg"], 1, None),  # tranche 3: milestone not reached
        (["--actor", "ars", "--approved-by", "dg"], 2, "--reason"),
        (["--reason", "x", "--actor", "ars"], 2, "--approved-by"),
        (["--reason", "  ", "--actor", "ars", "--approved-by", "dg"], 2, "--reason"),
        (["--reason", "x", "--actor", "ars", "--approved-by", "  "], 2, "--approved-by"),
    ],
)
def test_release_refusals_write_nothing(
    cli: Cli, tmp_path: Path, database_url: str, args: list[str], code: int, words: str | None
) -> None:
    pid = add(cli, tmp_path)
    cli.ok("force", pid, "rollout", "--reason", "dossier papier")
    before = snapshot(database_url)
    number = "3" if words is None else "1"
    line = refused(cli("release", pid, number, *args), code)
    if words is None:
        assert "tranche 3 is released at completed" in line
    else:
        assert words in line
    assert snapshot(database_url) == before


def test_release_on_two_peoples_word(cli: Cli, tmp_path: Path, database_url: str) -> None:
    pid = add(cli, tmp_path)
    cli.ok("force", pid, "rollout", "--reason", "dossier papier", "--actor", "ars")
    for number, code in (("4", 1), ("0", 1), ("x", 2)):
        before = snapshot(database_url)
        refused(cli("release", pid, number, "--reason", "x", "--actor", "ars", "--approved-by", "dg"), code)
        assert snapshot(database_url) == before
    change = cli.ok(
        "release", pid, "1", "--reason", "convention signée sur papier", "--actor", "ars", "--approved-by", "dg",
        "--json",
    ).json()  # fmt: skip
    assert change["event"] == "release" and change["forced"] and change["approved_by"] == "dg"
    assert change["source"] == change["dest"] == "rollout"
    assert change["released"] == [{"number": 1, "percent": "40", "amount_eur": TRANCHE_1}]
    last = cli.ok("project", "history", pid, "--json").json()[-1]
    assert {k: last[k] for k in ("event", "forced", "reason", "actor", "approved_by", "params")} == {
        "event": "release",
        "forced": True,
        "reason": "convention signée sur papier",
        "actor": "ars",
        "approved_by": "dg",
        "params": {"tranche": "1"},
    }
    assert all("approved_by" in row for row in cli.ok("project", "history", pid, "--json").json())
    assert outbox_keys(database_url, pid)[f"p{pid}:tranche:1"] == "tranche_released"
    before = snapshot(database_url)
    line = refused(cli("release", pid, "1", "--reason", "x", "--actor", "ars", "--approved-by", "dg"))
    assert "already released" in line
    assert snapshot(database_url) == before
    text = cli.ok("release", pid, "2", "--reason", "facture reçue", "--actor", "dg", "--approved-by", "ars").out
    assert "approuvé par ars" in text and "tranche 2" in text
    assert show(cli, pid)["released_eur"] == "464000.00"
    assert cli.ok("audit", "verify").code == 0
    assert_check_clean(cli)


@pytest.mark.parametrize("state", ["recovery", "recovered"])
def test_no_release_in_recovery(cli: Cli, tmp_path: Path, database_url: str, state: str) -> None:
    pid = add(cli, tmp_path)
    to_recovery(cli, pid)
    if state == "recovered":
        cli.ok("fire", pid, "waive_recovery", f"amount={TRANCHE_1}", "reason=x")
    before = snapshot(database_url)
    line = refused(cli("release", pid, "2", "--reason", "x", "--actor", "ars", "--approved-by", "dg"))
    assert f"is in {state}" in line
    assert snapshot(database_url) == before


# Recovery of released money ---------------------------------------------------------------------------------


def test_withdrawal_without_money_ends_the_project(cli: Cli, tmp_path: Path) -> None:
    pid = add(cli, tmp_path)
    to_agreement(cli, pid)
    assert cli.ok("fire", pid, "withdraw", "reason=x", "--json").json()["dest"] == "withdrawn"
    assert show(cli, pid)["recovery"] is None
    assert_check_clean(cli)


def test_withdrawal_after_the_first_tranche_goes_to_recovery(cli: Cli, tmp_path: Path, database_url: str) -> None:
    pid = add(cli, tmp_path)
    to_configuration(cli, pid)
    assert show(cli, pid)["recovery"] is None
    to_recovery_line = cli.ok("fire", pid, "withdraw", "reason=le porteur abandonne").out
    assert "paramétrage → reversement" in to_recovery_line
    document = show(cli, pid)
    assert document["state"] == "recovery" and document["state_label"] == "reversement"
    assert document["recovery"] == {
        "due_eur": TRANCHE_1,
        "repaid_eur": "0.00",
        "waived_eur": "0.00",
        "balance_eur": TRANCHE_1,
    }
    assert "recovery_due" in outbox_keys(database_url, pid).values()
    before = snapshot(database_url)
    refused(cli("fire", pid, "withdraw", "reason=encore"))
    assert snapshot(database_url) == before
    assert_check_clean(cli)


def test_a_lapse_after_money_goes_to_recovery(cli: Cli, tmp_path: Path) -> None:
    pid = add(cli, tmp_path)
    to_configuration(cli, pid)
    cli.ok("force", pid, "agreement", "--reason", "convention à resigner", now=AGREED)
    assert cli.ok("fire", pid, "lapse", "--json", now=AFTER_AGREEMENTS).json()["dest"] == "recovery"
    assert show(cli, pid)["recovery"]["balance_eur"] == TRANCHE_1
    assert_check_clean(cli)


BAD_AMOUNTS = [
    ("0", 1),
    ("0.00", 1),
    ("-5", 1),
    ("232000.01", 1),
    ("1e3", 2),
    ("12,345", 2),  # the French decimal comma is read (12,5 is 12.50 EUR), still at most two decimals
    ("1 000", 2),
    ("٨٦", 2),
    ("12.345", 2),
    ("NaN", 2),
    ("", 2),
]


@pytest.mark.parametrize("event", ["record_repayment", "waive_recovery"])
def test_repayment_and_waiver_amounts_on_both_sides_of_their_bounds(
    cli: Cli, tmp_path: Path, database_url: str, event: str
) -> None:
    pid = add(cli, tmp_path)
    to_recovery(cli, pid)
    extra = ["reason=décision du comité"] if event == "waive_recovery" else ["reference=VIR-1"]
    before = snapshot(database_url)
    for amount, code in BAD_AMOUNTS:
        line = refused(cli("fire", pid, event, f"amount={amount}", *extra), code)
        if code == 1:
            assert "balance owed (232000.00 EUR)" in line
    if event == "waive_recovery":
        refused(cli("fire", pid, event, "amount=10"), 2)  # a waiver says why
    refused(cli("fire", pid, event, *extra), 2)  # no amount
    assert snapshot(database_url) == before
    first = cli.ok("fire", pid, event, "amount=0.01", *extra, "--json").json()
    assert first["dest"] == "recovery"
    assert show(cli, pid)["recovery"]["balance_eur"] == "231999.99"
    refused(cli("fire", pid, event, f"amount={TRANCHE_1}", *extra))  # one cent above the balance now
    assert cli.ok("fire", pid, event, "amount=231999.99", *extra, "--json").json()["dest"] == "recovered"
    key = "repaid_eur" if event == "record_repayment" else "waived_eur"
    recovery = show(cli, pid)["recovery"]
    assert recovery["balance_eur"] == "0.00" and recovery[key] == TRANCHE_1 and recovery["due_eur"] == TRANCHE_1
    before = snapshot(database_url)
    refused(cli("fire", pid, event, "amount=1", *extra))  # recovered is an end
    refused(cli("fire", pid, "withdraw", "reason=x"))
    assert snapshot(database_url) == before
    assert_check_clean(cli)


def test_two_instalments_repay_the_balance(cli: Cli, tmp_path: Path, database_url: str) -> None:
    pid = add(cli, tmp_path)
    to_recovery(cli, pid)
    cli.ok("fire", pid, "record_repayment", "amount=132000", "reference=VIR-1")
    assert_check_clean(cli)
    assert show(cli, pid)["recovery"] == {
        "due_eur": TRANCHE_1,
        "repaid_eur": "132000.00",
        "waived_eur": "0.00",
        "balance_eur": "100000.00",
    }
    # The French decimal comma (since the measured values accepted it): 100 000,00 EUR.
    change = cli.ok("fire", pid, "record_repayment", "amount=100000,00", "reference=VIR-2", "--json").json()
    assert change["dest"] == "recovered"
    assert show(cli, pid)["recovery"]["balance_eur"] == "0.00"
    templates = list(outbox_keys(database_url, pid).values())
    assert templates.count("repayment_recorded") == 2
    assert_check_clean(cli)


def test_check_detects_a_hand_edited_repayment(cli: Cli, tmp_path: Path, database_url: str) -> None:
    pid = add(cli, tmp_path)
    to_recovery(cli, pid)
    cli.ok("fire", pid, "record_repayment", "amount=1000", "reference=VIR-1")
    assert_check_clean(cli)
    execute(database_url, "UPDATE project SET repaid_cents = repaid_cents + 1 WHERE id = :p", p=int(pid))
    result = cli("check")
    assert result.code == 5
    assert f"project {pid}: recovery: repaid_cents is 100001, history says 100000" in result.out
    execute(database_url, "UPDATE project SET repaid_cents = 23200001 WHERE id = :p", p=int(pid))
    result = cli("check")
    assert result.code == 5 and "exceed" in result.out


# --- the engine, in-process ---------------------------------------------------------------------------------------


def paris(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=PARIS)


class World:
    """The engine on a fresh database with a simulated clock, project files written in a folder."""

    def __init__(self, url: str, config_dir: Path, folder: Path) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.config_dir = config_dir
        self.clock = SimulatedClock(paris(2021, 3, 1, 10))
        self.folder = folder
        self.workflow = Workflow(self.engine, load_campaigns(config_dir), self.clock)

    def reload_campaigns(self) -> None:
        self.workflow = Workflow(self.engine, load_campaigns(self.config_dir), self.clock)

    def spec(self, sub: str = "a", **kwargs: Any) -> Any:
        (self.folder / sub).mkdir(parents=True, exist_ok=True)
        return load_project_file(write_project(self.folder / sub, **kwargs))

    def add(self, sub: str = "a", **kwargs: Any) -> int:
        return self.workflow.register(self.spec(sub, **kwargs), "test")

    def fire(self, pid: int, event: str, at: datetime, **params: str) -> str:
        self.clock.set(at)
        return self.workflow.fire(pid, event, params, "test").dest

    def to_configuration(self, pid: int, group: str = "A") -> None:
        self.fire(pid, "submit", paris(2021, 3, 20))
        self.fire(pid, "select", paris(2021, 4, 10), group=group)
        if group == "A":
            self.fire(pid, "file_needs", paris(2021, 4, 11), reference="R")
            self.fire(pid, "sign_contract", paris(2021, 4, 12), vendor="V")
            self.fire(pid, "sign_agreement", paris(2021, 4, 13))

    def committed(self, campaign: str) -> int:
        with Session(self.engine) as session:
            return committed_cents(session, campaign)

    def clean(self) -> None:
        assert check(self.engine, self.workflow.campaigns).violations == ()


@pytest.fixture
def world(database_url: str, config_dir: Path, tmp_path: Path, install_schema: Any) -> Iterator[World]:
    install_schema(database_url)
    created = World(database_url, config_dir, tmp_path / "files")
    yield created
    created.engine.dispose()


def test_engine_one_esms_one_funding(world: World, database_url: str) -> None:
    first = world.add("a")
    own = world.spec("a")  # 591001000…
    sharing = world.spec("b")  # 591000000…, the first project's
    before = snapshot(database_url)
    with pytest.raises(EsmsAlreadyFundedError, match=rf"ESMS {FIRST_FINESS} .* project {first} of campaign hdf-2021"):
        world.workflow.register_many([own, sharing], "test")
    assert snapshot(database_url) == before
    # Two files of one call sharing ESMS: the first of them counts for the second.
    world.spec("c")
    own_again = world.spec("c")  # 591001000… too
    with pytest.raises(EsmsAlreadyFundedError, match="ESMS 591001000 already belongs to project"):
        world.workflow.register_many([own, own_again], "test")
    assert snapshot(database_url) == before
    world.fire(first, "withdraw", paris(2021, 3, 2), reason="x")
    assert len(world.workflow.register_many([own, sharing], "test")) == 2
    world.clean()


def test_engine_submit_select_and_promote_check_the_esms_again(world: World, database_url: str) -> None:
    first, second, third = world.add(), world.add(), world.add()
    world.fire(first, "submit", paris(2021, 3, 20))
    world.fire(second, "submit", paris(2021, 3, 20))
    _duplicate_first_esms(database_url, into=str(second))
    _duplicate_first_esms(database_url, into=str(third))
    with pytest.raises(EsmsAlreadyFundedError, match=f"{FIRST_FINESS} already belongs to project {first} "):
        world.fire(third, "submit", paris(2021, 3, 20))
    with pytest.raises(EsmsAlreadyFundedError):
        world.fire(second, "select", paris(2021, 4, 10), group="A")
    assert world.fire(second, "select", paris(2021, 4, 10), group="B") == "waitlisted"
    with pytest.raises(EsmsAlreadyFundedError):
        world.fire(second, "promote", paris(2021, 4, 10))
    world.fire(first, "select", paris(2021, 4, 10), group="C")
    with pytest.raises(EsmsAlreadyFundedError, match=f"project {third} "):
        world.fire(second, "promote", paris(2021, 4, 10))  # the third project still holds it
    world.fire(third, "lapse", paris(2021, 4, 10))  # application deadline passed: frees its ESMS
    assert world.fire(second, "promote", paris(2021, 4, 10)) == "needs_statement"
    world.clean()


def test_engine_forced_moves_keep_the_rules(world: World, database_url: str) -> None:
    first = world.add("a")
    world.fire(first, "withdraw", paris(2021, 3, 2), reason="x")
    second = world.add("b")
    before = snapshot(database_url)
    with pytest.raises(ForcedMoveRefusedError, match=f"project {second}"):
        world.workflow.force(first, "application", "retour", "test")
    assert snapshot(database_url) == before
    world.to_configuration(second)
    with pytest.raises(ForcedMoveRefusedError, match="recovery instead"):
        world.workflow.force(second, "withdrawn", "x", "test")
    change = world.workflow.force(second, "usage_evaluation", "x", "test")
    assert change.released == () and change.pending_milestones == (2,)
    world.clean()


@pytest.mark.parametrize("envelope", [EXACT, ONE_CENT_SHORT])
def test_engine_envelope(world: World, config_dir: Path, database_url: str, envelope: str) -> None:
    campaign = small_campaign(config_dir, envelope)
    world.reload_campaigns()
    first, second, third = (world.add(campaign=campaign) for _ in range(3))
    world.to_configuration(first)
    world.fire(second, "submit", paris(2021, 3, 20))
    world.fire(third, "submit", paris(2021, 3, 20))
    assert world.committed(campaign) == 58_000_000
    before = snapshot(database_url)
    if envelope == EXACT:
        assert world.fire(second, "select", paris(2021, 4, 10), group="A") == "needs_statement"
        assert world.committed(campaign) == 116_000_000
        world.fire(third, "select", paris(2021, 4, 10), group="B")
        with pytest.raises(EnvelopeExceededError, match=r"1160000\.00 EUR committed"):
            world.fire(third, "promote", paris(2021, 4, 10))
    else:
        with pytest.raises(EnvelopeExceededError, match=re.escape(f"envelope {ONE_CENT_SHORT} EUR")):
            world.fire(second, "select", paris(2021, 4, 10), group="A")
        assert snapshot(database_url) == before
        # A forced move into a committing state obeys the envelope too.
        with pytest.raises(ForcedMoveRefusedError, match="envelope"):
            world.workflow.force(second, "agreement", "x", "test")
        # The first project withdraws after tranche 1: only what it received stays committed.
        assert world.fire(first, "withdraw", paris(2021, 4, 14), reason="x") == "recovery"
        assert world.committed(campaign) == 23_200_000
        assert world.fire(second, "select", paris(2021, 4, 10), group="A") == "needs_statement"
        assert world.committed(campaign) == 81_200_000
        world.fire(first, "record_repayment", paris(2021, 5, 1), amount="1000")
        assert world.committed(campaign) == 81_100_000
    world.clean()


def test_engine_release_and_recovery(world: World, database_url: str) -> None:
    pid = world.add()
    world.workflow.force(pid, "configuration", "dossier papier", "ars")
    before = snapshot(database_url)
    with pytest.raises(ReleaseRefusedError, match="another person"):
        world.workflow.release(pid, 1, "x", " ARS ", "ars")
    with pytest.raises(ReleaseRefusedError, match="tranche 2 is released at rollout"):
        world.workflow.release(pid, 2, "x", "ars", "dg")
    with pytest.raises(InvalidArgumentError):
        world.workflow.release(pid, 1, "x", "ars", " ")
    assert snapshot(database_url) == before
    change = world.workflow.release(pid, 1, "x", "ars", "dg")
    assert [t.amount_cents for t in change.released] == [23_200_000] and change.approved_by == "dg"
    with pytest.raises(ReleaseRefusedError, match="already released"):
        world.workflow.release(pid, 1, "x", "ars", "dg")
    assert world.fire(pid, "withdraw", paris(2021, 5, 1), reason="x") == "recovery"
    with pytest.raises(EventNotAllowedError):
        world.fire(pid, "withdraw", paris(2021, 5, 1), reason="x")
    with pytest.raises(ReleaseRefusedError, match="is in recovery"):
        world.workflow.release(pid, 1, "x", "ars", "dg")
    for amount in ("0", "-1", "232000.01"):
        with pytest.raises(RecoveryAmountError):
            world.fire(pid, "record_repayment", paris(2021, 5, 2), amount=amount)
    for amount in ("1e3", "12,345", "٨٦"):
        with pytest.raises(InvalidArgumentError):
            world.fire(pid, "waive_recovery", paris(2021, 5, 2), amount=amount, reason="x")
    assert world.fire(pid, "record_repayment", paris(2021, 5, 2), amount="200000") == "recovery"
    with pytest.raises(RecoveryAmountError):
        world.fire(pid, "waive_recovery", paris(2021, 5, 2), amount="32000.01", reason="x")
    assert world.fire(pid, "waive_recovery", paris(2021, 5, 3), amount="32000", reason="x") == "recovered"
    with pytest.raises(ForcedMoveRefusedError):
        world.workflow.force(pid, "configuration", "x", "test")  # repayments are recorded: the recovery stays
    world.clean()
