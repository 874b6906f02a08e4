"""Amendments (issue 11): `esms project amend ID FILE --reason TEXT` under the rules of the project's state.

Each rule on both sides of its boundary, on SQLite and PostgreSQL, through the CLI in-process (exit codes,
one-line messages, nothing written on refusal) and `esms check` clean after every accepted amendment. The
default grappe is 20 ESMS (4 small) of an acquisition over 3 organisations: 580 000.00 EUR, tranches of
232 000.00, 232 000.00 and 116 000.00 EUR.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from states.errors import ConflictError, OperationalError
from states.money import split_tranches
from tests.conftest import Cli, snapshot
from workflow import amendments
from workflow import engine as engine_module
from workflow.amendments import split_remainder
from workflow.campaigns import load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.project_file import load_project_file

ADDED = "2021-03-01T10:00:00+01:00"
LATER = "2021-04-20T10:00:00+02:00"
OWNER = "dui@tilleuls.example"


def grappe_file(
    folder: Path,
    *,
    esms: Iterable[int] = range(20),
    small: Iterable[int] = range(4),
    organisations: Iterable[int] = range(3),
    first: int = 0,
    campaign: str = "hdf-2021",
    kind: str = "acquisition",
    socles: tuple[str, ...] = ("mssante", "dmp"),
    owner_name: str = "Association Les Tilleuls",
    owner_email: str = OWNER,
) -> Path:
    """A project file: ESMS number i is FINESS 59(1000000 + first + i), run by organisation i % 3 (by the last one
    listed when that one is not), small when i is in `small`: the same numbers in every file of a test."""
    orgs = list(organisations)
    small = set(small)
    lines = [
        'name = "Grappe du Hainaut"',
        f'campaign = "{campaign}"',
        f'kind = "{kind}"',
        "services_socles = [" + ", ".join(f'"{s}"' for s in socles) + "]",
        "[owner]",
        f"name = {json.dumps(owner_name, ensure_ascii=False)}",
        f'email = "{owner_email}"',
    ]
    by_org: dict[int, list[int]] = {org: [] for org in orgs}
    for index in esms:
        by_org[index % 3 if index % 3 in by_org else orgs[-1]].append(index)
    for org in orgs:
        lines += ["[[organisations]]", f'name = "Organisation {org + 1}"', f'finess = "59{first + org:07d}"']
        for index in by_org[org]:
            lines += [
                "[[organisations.esms]]",
                f'finess = "59{1_000_000 + first + index:07d}"',
                f'name = "ESMS {index + 1}"',
                'category = "EHPAD"',
                f"small = {'true' if index in small else 'false'}",
            ]
    path = folder / f"grappe-{uuid.uuid4().hex[:8]}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def add(cli: Cli, tmp_path: Path, **kwargs: Any) -> str:
    return str(cli.ok("project", "add", str(grappe_file(tmp_path, **kwargs)), "--json", now=ADDED).json()["id"])


#: The commands that bring a project from `application` to each state (selected in group A, tranches by events).
PATH: dict[str, list[tuple[list[str], str]]] = {"application": []}
PATH["selection"] = [(["submit"], "2021-03-20")]
PATH["needs_statement"] = [*PATH["selection"], (["select", "group=A"], "2021-04-10")]
PATH["waitlisted"] = [*PATH["selection"], (["select", "group=B"], "2021-04-10")]
PATH["vendor_contract"] = [*PATH["needs_statement"], (["file_needs", "reference=R1"], "2021-04-11")]
PATH["agreement"] = [*PATH["vendor_contract"], (["sign_contract", "vendor=V"], "2021-04-12")]
PATH["configuration"] = [*PATH["agreement"], (["sign_agreement"], "2021-04-13")]
PATH["rollout"] = [*PATH["configuration"], (["finish_configuration", "invoice=F1"], "2021-04-14")]
PATH["usage_evaluation"] = [*PATH["rollout"], (["finish_rollout", "invoice=F2"], "2021-04-15")]
PATH["completed"] = [*PATH["usage_evaluation"], (["verify_usage", "dui_actifs=90", "ins_qualifiees=60"], "2021-04-16")]
PATH["recovery"] = [*PATH["configuration"], (["withdraw", "reason=fusion"], "2021-04-16")]


def reach(cli: Cli, project_id: str, state: str) -> None:
    for command, now in PATH[state]:
        cli.ok("fire", project_id, *command, now=now)
    assert show(cli, project_id)["state"] == state


def show(cli: Cli, project_id: str) -> dict[str, Any]:
    return cli.ok("project", "show", project_id, "--json").json()  # type: ignore[no-any-return]


def amend(cli: Cli, project_id: str, file: Path, *extra: str) -> Any:
    return cli("project", "amend", project_id, str(file), "--reason", "avenant n° 1", *extra, now=LATER)


def refused(cli: Cli, database_url: str, project_id: str, file: Path, code: int = 1) -> str:
    """Amend, expect a one-line refusal with `code` and nothing written; return the message."""
    before = snapshot(database_url)
    result = amend(cli, project_id, file)
    assert result.code == code, result.err
    assert result.err.startswith("esms: ") and result.err.count("\n") == 1, result.err
    assert result.out == ""
    assert snapshot(database_url) == before
    return str(result.err)


def tranches(cli: Cli, project_id: str) -> list[tuple[str, str]]:
    return [(t["amount_eur"], t["status"]) for t in show(cli, project_id)["tranches"]]


def assert_check_clean(cli: Cli) -> None:
    result = cli("check", "--json")
    assert result.code == 0, result.out
    assert result.json()["violations"] == []


def edit_campaign(config_dir: Path, pattern: str, replacement: str) -> None:
    path = config_dir / "campaigns" / "hdf-2021.toml"
    text, count = re.subn(pattern, replacement, path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert count == 1
    path.write_text(text, encoding="utf-8")


def outbox(database_url: str, project_id: str) -> dict[str, tuple[str, list[str], str, str]]:
    """The project's queued messages: key → (template, recipients, subject, text)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT idempotency_key, template, recipients, subject, body_text FROM outbox_message "
                    "WHERE project_id = :pid"
                ),
                {"pid": int(project_id)},
            ).all()
    finally:
        engine.dispose()
    return {key: (template, json.loads(to), subject, text) for key, template, to, subject, text in rows}


# --- application and selection: anything goes, eligibility waits for `submit` ------------------------------------


@pytest.mark.parametrize("state", ["application", "selection"])
def test_before_selection_any_change_is_accepted_even_an_ineligible_grappe(
    cli: Cli, tmp_path: Path, state: str
) -> None:
    project_id = add(cli, tmp_path)
    reach(cli, project_id, state)
    # 2 organisations, 10 ESMS of which 5 are new, another socle: ineligible, still accepted before selection.
    file = grappe_file(tmp_path, esms=[*range(5), *range(40, 45)], small=[0], organisations=[0, 1], socles=("dmp",))
    change = amend(cli, project_id, file, "--json")
    assert change.code == 0, change.err
    assert change.json() == {**change.json(), "event": "amend", "source": state, "dest": state, "forced": False}
    shown = show(cli, project_id)
    assert (shown["esms"], shown["small_esms"], shown["total_eur"]) == (10, 1, "270000.00")
    assert shown["services_socles"] == ["dmp"]
    assert tranches(cli, project_id) == [("108000.00", "pending"), ("108000.00", "pending"), ("54000.00", "pending")]
    assert_check_clean(cli)


def test_an_amended_application_is_checked_again_at_submit(cli: Cli, tmp_path: Path) -> None:
    project_id = add(cli, tmp_path)
    assert amend(cli, project_id, grappe_file(tmp_path, esms=range(14))).code == 0
    submitted = cli("fire", project_id, "submit", now="2021-03-20")
    assert submitted.code == 1
    assert "14 ESMS, at least 15 required" in submitted.err


# --- from needs_statement to agreement: eligible now, and a larger total fits the envelope ------------------------


@pytest.mark.parametrize("state", ["needs_statement", "vendor_contract", "agreement", "waitlisted"])
def test_once_selected_an_ineligible_grappe_is_refused_listing_every_problem(
    cli: Cli, tmp_path: Path, database_url: str, state: str
) -> None:
    project_id = add(cli, tmp_path)
    reach(cli, project_id, state)
    message = refused(cli, database_url, project_id, grappe_file(tmp_path, esms=range(14), organisations=[0, 1]))
    assert "amend refused: not eligible" in message
    assert "2 organisations, at least 3 required" in message
    assert "14 ESMS, at least 15 required" in message
    # One ESMS more: eligible, accepted, total recomputed.
    assert amend(cli, project_id, grappe_file(tmp_path, esms=range(15))).code == 0
    assert show(cli, project_id)["total_eur"] == "455000.00"
    assert tranches(cli, project_id) == [("182000.00", "pending"), ("182000.00", "pending"), ("91000.00", "pending")]
    assert_check_clean(cli)


@pytest.mark.parametrize(("envelope", "accepted"), [("605000", True), ("604999.99", False)])
def test_a_larger_total_must_fit_the_envelope(
    cli: Cli, tmp_path: Path, database_url: str, config_dir: Path, envelope: str, accepted: bool
) -> None:
    edit_campaign(config_dir, r"^envelope = .*$", f'envelope = "{envelope}"')
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "needs_statement")  # commits 580 000.00 of the envelope
    one_more = grappe_file(tmp_path, esms=range(21))  # 605 000.00
    if accepted:
        assert amend(cli, project_id, one_more).code == 0
        assert show(cli, project_id)["total_eur"] == "605000.00"
        assert_check_clean(cli)
    else:
        message = refused(cli, database_url, project_id, one_more)
        assert "envelope 604999.99 EUR of hdf-2021: 0.00 EUR committed" in message
        assert "the project's new 605000.00 EUR would exceed it" in message
        # A smaller total always fits: it frees part of the envelope.
        assert amend(cli, project_id, grappe_file(tmp_path, esms=range(19))).code == 0


def test_the_waiting_list_commits_nothing_so_the_envelope_does_not_limit_it(
    cli: Cli, tmp_path: Path, config_dir: Path
) -> None:
    edit_campaign(config_dir, r"^envelope = .*$", 'envelope = "580000"')
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "waitlisted")
    assert amend(cli, project_id, grappe_file(tmp_path, esms=range(21))).code == 0
    assert show(cli, project_id)["total_eur"] == "605000.00"


# --- one ESMS, one funding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["application", "needs_statement"])
def test_an_added_esms_of_another_live_project_is_refused_until_it_is_freed(
    cli: Cli, tmp_path: Path, database_url: str, state: str
) -> None:
    project_id = add(cli, tmp_path)
    other = add(cli, tmp_path, first=1000)  # its ESMS are 591001000…
    reach(cli, project_id, state)
    taking = grappe_file(tmp_path, esms=[*range(20), 1000, 1001])  # 591001000 and 591001001 belong to `other`
    message = refused(cli, database_url, project_id, taking)
    assert f"ESMS 591001000 already belongs to project {other} of campaign hdf-2021 (and 1 more)" in message
    cli.ok("fire", other, "withdraw", "reason=fusion", now="2021-03-10")  # withdrawn without money: ESMS freed
    assert amend(cli, project_id, taking).code == 0
    assert show(cli, project_id)["esms"] == 22
    assert_check_clean(cli)


# --- from configuration on: removals and a new owner only, tranches recomputed to the cent ------------------------


@pytest.mark.parametrize("state", ["configuration", "rollout", "usage_evaluation"])
def test_after_configuration_additions_and_other_socles_are_refused(
    cli: Cli, tmp_path: Path, database_url: str, state: str
) -> None:
    project_id = add(cli, tmp_path)
    reach(cli, project_id, state)
    added = refused(cli, database_url, project_id, grappe_file(tmp_path, esms=[*range(19), 20]))
    assert f"is in {state}: ESMS and organisations may only leave, the file adds ESMS 591000020" in added
    organisation = refused(cli, database_url, project_id, grappe_file(tmp_path, organisations=[0, 1, 3]))
    assert "the file adds organisations 590000003" in organisation
    socles = refused(cli, database_url, project_id, grappe_file(tmp_path, socles=("mssante", "dmp", "e-parcours")))
    assert "its services socles cannot change" in socles
    bigger = refused(cli, database_url, project_id, grappe_file(tmp_path, small=range(5)))  # one more small ESMS
    assert "its total may only go down, not from 580000.00 to 600000.00 EUR" in bigger
    # Removing an ESMS and merging two organisations is what may happen now.
    assert amend(cli, project_id, grappe_file(tmp_path, esms=range(19), organisations=[0, 1])).code == 0
    shown = show(cli, project_id)
    assert (shown["state"], shown["esms"], shown["total_eur"]) == (state, 19, "555000.00")
    amounts = [Fraction(t["amount_eur"]) for t in shown["tranches"]]
    assert sum(amounts) == Fraction("555000.00")
    assert_check_clean(cli)


def test_removal_after_tranche_1_splits_the_rest_among_pending_tranches_to_the_cent(
    cli: Cli, tmp_path: Path, config_dir: Path
) -> None:
    edit_campaign(config_dir, r"^acquisition_per_esms = .*$", 'acquisition_per_esms = "25000.01"')
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "configuration")
    assert tranches(cli, project_id)[0] == ("232000.08", "released")  # 40 % of 580 000.20
    # 17 ESMS: 17 × 25 000.01 + 4 × 20 000 = 505 000.17; 273 000.09 left, split 40:20 between tranches 2 and 3.
    assert amend(cli, project_id, grappe_file(tmp_path, esms=range(17))).code == 0
    shown = show(cli, project_id)
    assert shown["total_eur"] == "505000.17"
    assert tranches(cli, project_id) == [
        ("232000.08", "released"),
        ("182000.06", "pending"),
        ("91000.03", "pending"),
    ]
    assert_check_clean(cli)
    # Tranche 2 is released at its new amount: what was promised adds up to the new total.
    cli.ok("fire", project_id, "finish_configuration", "invoice=F1", now="2021-04-21")
    assert show(cli, project_id)["released_eur"] == "414000.14"
    assert_check_clean(cli)


@pytest.mark.parametrize(("small", "accepted"), [([0, 1], True), ([0], False)])
def test_the_new_total_may_equal_what_was_released_never_less(
    cli: Cli, tmp_path: Path, database_url: str, config_dir: Path, small: list[int], accepted: bool
) -> None:
    edit_campaign(config_dir, r"^tranches = .*$", "tranches = [50, 30, 20]")
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "configuration")  # 50 % of 580 000.00 released: 290 000.00
    # 10 ESMS at 25 000.00, and 20 000.00 per small one: 290 000.00 with two small, 270 000.00 with one.
    file = grappe_file(tmp_path, esms=range(10), small=small)
    if accepted:
        assert amend(cli, project_id, file).code == 0
        assert tranches(cli, project_id) == [("290000.00", "released"), ("0.00", "pending"), ("0.00", "pending")]
        assert_check_clean(cli)
    else:
        message = refused(cli, database_url, project_id, file)
        assert f"290000.00 EUR were already released to project {project_id}, more than its new total" in message
        assert "of 270000.00 EUR" in message


# --- ended projects, the wrong call, nothing to change ------------------------------------------------------------


@pytest.mark.parametrize("state", ["completed", "recovery", "withdrawn", "rejected", "rework", "lapsed"])
def test_an_ended_project_cannot_be_amended(cli: Cli, tmp_path: Path, database_url: str, state: str) -> None:
    project_id = add(cli, tmp_path)
    if state in PATH:
        reach(cli, project_id, state)
    else:
        cli.ok("force", project_id, state, "--reason", "x", now="2021-03-10")
    message = refused(cli, database_url, project_id, grappe_file(tmp_path, esms=range(19)))
    assert f"amend refused: project {project_id} is in {state}: it can no longer be amended" in message


@pytest.mark.parametrize(
    ("change", "wording"),
    [({"campaign": "ara-2021"}, "campaign 'ara-2021'"), ({"kind": "compliance"}, "kind 'compliance'")],
)
def test_another_campaign_or_kind_is_bad_input(
    cli: Cli, tmp_path: Path, database_url: str, change: dict[str, Any], wording: str
) -> None:
    project_id = add(cli, tmp_path)
    message = refused(cli, database_url, project_id, grappe_file(tmp_path, esms=range(19), **change), code=2)
    assert f"amend: the file's {wording} is not project {project_id}'s" in message


def test_a_file_that_changes_nothing_and_a_missing_reason_are_bad_input(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    project_id = add(cli, tmp_path)
    assert "changes nothing" in refused(cli, database_url, project_id, grappe_file(tmp_path), code=2)
    before = snapshot(database_url)
    file = str(grappe_file(tmp_path, esms=range(19)))
    assert cli("project", "amend", project_id, file, "--reason", "  ").code == 2
    assert cli("project", "amend", project_id, file).code == 2
    assert cli("project", "amend", "999", file, "--reason", "x").code == 2
    assert snapshot(database_url) == before


# --- the history and the owners told -----------------------------------------------------------------------------


def test_the_history_keeps_the_totals_and_both_owners_are_told(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "configuration")
    new_owner = grappe_file(
        tmp_path, esms=range(18), owner_name="Association Les Chênes", owner_email="dui@chenes.example"
    )
    result = cli("project", "amend", project_id, str(new_owner), "--reason", "fusion", "--actor", "ars-hdf", now=LATER)
    assert result.code == 0, result.err
    assert result.out.strip() == f"projet {project_id} : paramétrage → paramétrage (amend)"
    row = cli.ok("project", "history", project_id, "--json").json()[-1]
    assert row == {
        **row,
        "event": "amend",
        "source": "configuration",
        "dest": "configuration",
        "actor": "ars-hdf",
        "reason": "fusion",
        "forced": False,
        "approved_by": None,
    }
    params = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    assert params == {
        "old_total_eur": "580000.00",
        "new_total_eur": "530000.00",
        "old_esms_count": "20",
        "new_esms_count": "18",
        "previous_owner_told": "true",
    }
    shown = show(cli, project_id)
    assert shown["owner"] == {"name": "Association Les Chênes", "email": "dui@chenes.example"}
    seq = row["seq"]
    messages = outbox(database_url, project_id)
    new = messages[f"p{project_id}:amend:{seq}:project_amended"]
    old = messages[f"p{project_id}:amend:{seq}:project_amended_previous_owner"]
    assert [new[0], new[1], old[0], old[1]] == [
        "project_amended",
        ["dui@chenes.example"],
        "project_amended",
        [OWNER],
    ]
    assert new[2] == "ESMS numérique — modification du projet : Grappe du Hainaut"
    for _, _, _, text in (new, old):
        assert "20 avant, 18 après" in text
        assert "580\u202f000,00\u00a0€ avant" in text and "530\u202f000,00\u00a0€ après" in text
        assert "Association Les Chênes (nouveau porteur)" in text
        assert "232\u202f000,00\u00a0€ déjà versés" in text
    assert "précédent porteur" in old[3] and "précédent porteur" not in new[3]
    assert_check_clean(cli)


def test_a_new_owner_name_alone_tells_the_owner_once(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "rollout")
    assert amend(cli, project_id, grappe_file(tmp_path, owner_name="Les Tilleuls (fusionnée)")).code == 0
    seq = cli.ok("project", "history", project_id, "--json").json()[-1]["seq"]
    amended = {k: v for k, v in outbox(database_url, project_id).items() if ":amend:" in k}
    assert list(amended) == [f"p{project_id}:amend:{seq}:project_amended"]
    assert amended[f"p{project_id}:amend:{seq}:project_amended"][1] == [OWNER]
    assert tranches(cli, project_id)[2] == ("116000.00", "pending")  # nothing to recompute
    assert_check_clean(cli)


def test_check_reports_a_missing_amendment_message(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project_id = add(cli, tmp_path)
    assert amend(cli, project_id, grappe_file(tmp_path, esms=range(19))).code == 0
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM outbox_message WHERE idempotency_key LIKE '%:amend:%'"))
    finally:
        engine.dispose()
    result = cli("check", "--json")
    assert result.code == 5
    details = [v["detail"] for v in result.json()["violations"]]
    assert details == [f"no message queued for p{project_id}:amend:2:project_amended"]


# --- the split itself --------------------------------------------------------------------------------------------


@given(
    cents=st.integers(min_value=0, max_value=10**15),
    percents=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=5),
)
def test_the_split_adds_up_never_overpays_before_the_last_and_matches_the_registration_split(
    cents: int, percents: list[int]
) -> None:
    shares = split_remainder(cents, [Fraction(p) for p in percents])
    assert sum(shares) == cents
    assert all(share >= 0 for share in shares)
    whole = sum(percents)
    assert all(share * whole <= cents * p for share, p in zip(shares[:-1], percents, strict=False))
    assert split_remainder(cents, [Fraction(40), Fraction(40), Fraction(20)]) == split_tranches(
        cents, [Decimal(40), Decimal(40), Decimal(20)]
    )


# --- one transaction, through the engine in-process -----------------------------------------------------------


@pytest.fixture
def workflow(cli: Cli, database_url: str, config_dir: Path) -> Iterator[Workflow]:
    """The engine on the `cli` database, its clock at LATER."""
    engine = make_engine(database_url)
    yield Workflow(engine, load_campaigns(config_dir), SimulatedClock(datetime.fromisoformat(LATER)))
    engine.dispose()


def test_a_failure_while_telling_the_owner_leaves_nothing_written(
    cli: Cli, tmp_path: Path, database_url: str, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = add(cli, tmp_path)
    reach(cli, project_id, "configuration")
    spec = load_project_file(grappe_file(tmp_path, esms=range(18), owner_email="dui@chenes.example"))
    before = snapshot(database_url)

    def broken(*_: Any, **__: Any) -> bool:
        raise OperationalError("outbox unavailable")

    monkeypatch.setattr(amendments, "enqueue", broken)
    with pytest.raises(OperationalError):
        amendments.amend(workflow, int(project_id), spec, "avenant", "ars")
    assert snapshot(database_url) == before
    monkeypatch.undo()
    change = amendments.amend(workflow, int(project_id), spec, "avenant", "ars")
    assert (change.event, change.source, change.dest, change.seq) == ("amend", "configuration", "configuration", 7)
    assert_check_clean(cli)


def test_an_amendment_read_before_another_change_loses_cleanly(
    cli: Cli, tmp_path: Path, database_url: str, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = add(cli, tmp_path)
    spec = load_project_file(grappe_file(tmp_path, esms=range(18)))
    load = engine_module._load

    def stale(session: Any, pid: int) -> Any:
        project = load(session, pid)
        # Another process's change lands between our read and our write (the row, not the object we hold).
        session.execute(sa.text("UPDATE project SET version = version + 1 WHERE id = :pid"), {"pid": pid})
        return project

    monkeypatch.setattr(amendments, "_load", stale)
    before = snapshot(database_url)
    with pytest.raises(ConflictError, match="changed by another process"):
        amendments.amend(workflow, int(project_id), spec, "avenant", "ars")
    assert snapshot(database_url) == before
