"""Audit integrity (issue 12, "Integrity"): the tampering cases that passed `esms check` and `esms audit verify`
are each named (exit 5); the chain across projects, its seal, the HMAC key, and migration 0005 with data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, write_project
from workflow.audit import GENESIS, global_hash, hash_of
from workflow.db import make_engine, migrate
from workflow.migrations import HEAD_REVISION
from workflow.models import AuditEntry

KEY = "une clé longue et secrète, gardée hors de la base"
MILLION_CENTS = 100_000_000  # 1 M€


def walk(cli: Cli, tmp_path: Path, *, until: str = "2021-06-01") -> str:
    """Register a project and take it to agreement (tranche 1 released); return its id."""
    project_id = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-03-01").out.strip()
    for now, args in [
        ("2021-03-20", ["submit"]),
        ("2021-04-10", ["select", "group=A"]),
        ("2021-04-11", ["file_needs", "reference=R"]),
        ("2021-04-12", ["sign_contract", "vendor=V"]),
        (until, ["sign_agreement"]),
    ]:
        cli.ok("fire", project_id, *args, now=now)
    return project_id


def execute(database_url: str, *statements: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def rows(database_url: str, query: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(query)).mappings().all())
    finally:
        engine.dispose()


def verify_fails(cli: Cli, *args: str) -> list[dict[str, Any]]:
    result = cli("audit", "verify", "--json", *args)
    assert result.code == 5, result.out + result.err
    problems: list[dict[str, Any]] = result.json()["problems"]
    assert problems
    return problems


def check_fails(cli: Cli) -> list[dict[str, Any]]:
    result = cli("check", "--json")
    assert result.code == 5, result.out + result.err
    violations: list[dict[str, Any]] = result.json()["violations"]
    return violations


def test_a_clean_database_verifies_and_every_new_row_covers_its_money(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    project_id = walk(cli, tmp_path)
    assert cli.ok("audit", "verify", "--json").json()["ok"] is True
    assert "0 anomalie" in cli.ok("check").out
    stored = rows(database_url, f"SELECT seq, money, global_seq FROM audit_entry WHERE project_id = {project_id}")
    assert all(r["money"] is not None for r in stored)
    last = json.loads(max(stored, key=lambda r: r["seq"])["money"])
    assert last["total_cents"] == 58_000_000
    assert [(t["number"], t["status"]) for t in last["tranches"]] == [(1, "released"), (2, "pending"), (3, "pending")]
    assert sorted(r["global_seq"] for r in stored) == list(range(1, 7))


def test_case_a_raising_the_total_and_tranches_by_a_million_is_named(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    project_id = walk(cli, tmp_path)
    execute(
        database_url,
        f"UPDATE project SET total_cents = total_cents + {MILLION_CENTS} WHERE id = {project_id}",
        f"UPDATE tranche SET amount_cents = amount_cents + {MILLION_CENTS * 4 // 10} "
        f"WHERE project_id = {project_id} AND number IN (1, 2)",
        f"UPDATE tranche SET amount_cents = amount_cents + {MILLION_CENTS * 2 // 10} "
        f"WHERE project_id = {project_id} AND number = 3",
    )
    problems = verify_fails(cli)
    named = [p["problem"] for p in problems if p["project"] == int(project_id)]
    assert any("money changed outside the engine: total_cents is 158000000" in p for p in named)
    assert any("tranche 3 amount_cents is 31600000" in p for p in named)
    # The tranches still add up to the total: only the audit's money snapshot catches it.
    violations = check_fails(cli)
    assert {(v["project"], v["invariant"]) for v in violations} == {(int(project_id), "audit chain")}


@pytest.mark.parametrize("where", ["tail", "middle"])
def test_case_b_deleting_a_projects_last_row_and_rolling_it_back_is_named(
    cli: Cli, tmp_path: Path, database_url: str, where: str
) -> None:
    project_id = walk(cli, tmp_path)
    if where == "middle":  # another project's row comes after the deleted one
        cli.ok("project", "add", str(write_project(tmp_path)), now="2021-06-02")
    execute(
        database_url,
        f"DELETE FROM audit_entry WHERE project_id = {project_id} AND seq = 6",
        f"DELETE FROM outbox_message WHERE project_id = {project_id} AND "
        "(idempotency_key LIKE '%sign_agreement%' OR idempotency_key LIKE '%tranche%')",
        f"UPDATE tranche SET released_at = NULL WHERE project_id = {project_id}",
        f"UPDATE project SET state = 'agreement', version = version - 1 WHERE id = {project_id}",
    )
    problems = verify_fails(cli)
    assert {(p["project"], p["seq"]) for p in problems} == {(int(project_id), 6)}
    word = "truncated" if where == "tail" else "missing"
    assert problems[0]["problem"].startswith(word)
    assert f"project {project_id}'s row 6" in problems[0]["problem"]
    assert any(v["invariant"] == "audit chain" and v["project"] == int(project_id) for v in check_fails(cli))


def test_case_c_deleting_a_whole_project_is_named(cli: Cli, tmp_path: Path, database_url: str) -> None:
    deleted = walk(cli, tmp_path)
    kept = walk(cli, tmp_path, until="2021-06-02")
    execute(
        database_url,
        *(
            f"DELETE FROM {table} WHERE project_id = {deleted}"
            for table in ("outbox_message", "audit_entry", "tranche", "esms", "organisation")
        ),
        f"DELETE FROM project WHERE id = {deleted}",
    )
    problems = verify_fails(cli)
    assert {p["project"] for p in problems} == {int(deleted)}
    assert all("of the chain across projects were deleted" in p["problem"] for p in problems)
    assert all(v["project"] != int(kept) for v in check_fails(cli))


def recompute_without_key(database_url: str) -> None:
    """What someone with the database but not the key does after an edit: recompute every hash, keyless."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            # Typed columns: instants come back as datetimes on both backends.
            table = AuditEntry.__table__  # type: ignore[attr-defined]
            entries = connection.execute(sa.select(table).order_by(table.c.global_seq)).mappings().all()
            previous: dict[int, str] = {}
            global_prev, prev_project, prev_seq = GENESIS, None, None
            for row in entries:
                digest = hash_of(dict(row), previous.get(row["project_id"], GENESIS))
                previous[row["project_id"]] = digest
                link = global_hash(
                    key=None,
                    global_prev_hash=global_prev,
                    global_seq=row["global_seq"],
                    row_hash=digest,
                    prev_project_id=prev_project,
                    prev_seq=prev_seq,
                )
                connection.execute(
                    sa.text("UPDATE audit_entry SET hash = :h, global_hash = :g, global_prev_hash = :p WHERE id = :id"),
                    {"h": digest, "g": link, "p": global_prev, "id": row["id"]},
                )
                connection.execute(
                    sa.text("UPDATE audit_entry SET prev_hash = :h WHERE project_id = :project AND seq = :seq"),
                    {"h": digest, "project": row["project_id"], "seq": row["seq"] + 1},
                )
                global_prev, prev_project, prev_seq = link, row["project_id"], row["seq"]
            connection.execute(sa.text("UPDATE audit_chain_head SET hash = :h"), {"h": global_prev})
    finally:
        engine.dispose()


def test_case_d_editing_a_row_and_recomputing_the_keyless_chain_is_named(
    cli: Cli, tmp_path: Path, database_url: str
) -> None:
    cli.env["ESMS_AUDIT_KEY"] = KEY
    project_id = walk(cli, tmp_path)
    assert cli.ok("audit", "verify", "--json").json()["ok"] is True
    execute(database_url, f"UPDATE audit_entry SET actor = 'mallory' WHERE project_id = {project_id} AND seq = 3")
    recompute_without_key(database_url)
    problems = verify_fails(cli)
    assert (int(project_id), 3) in {(p["project"], p["seq"]) for p in problems}
    assert all("does not match its hash across projects" in p["problem"] for p in problems)
    assert any(v["invariant"] == "audit chain" for v in check_fails(cli))
    # Without the key, the recomputed chain is indistinguishable from the engine's: the key is what catches it.
    del cli.env["ESMS_AUDIT_KEY"]
    assert cli.ok("audit", "verify", "--json").json()["ok"] is True


def test_a_keyed_chain_verifies_with_its_key_only(cli: Cli, tmp_path: Path) -> None:
    cli.env["ESMS_AUDIT_KEY"] = KEY
    walk(cli, tmp_path)
    assert cli.ok("audit", "verify", "--json").json()["ok"] is True
    assert "0 anomalie" in cli.ok("check").out
    cli.env["ESMS_AUDIT_KEY"] = "une autre clé"
    assert len(verify_fails(cli)) == 6
    del cli.env["ESMS_AUDIT_KEY"]
    assert len(verify_fails(cli)) == 6


def test_the_key_is_never_shown() -> None:
    from workflow.settings import load_settings

    settings = load_settings({"ESMS_AUDIT_KEY": KEY, "ESMS_DATABASE_URL": "sqlite:///x.sqlite3"})
    assert settings.audit_key == KEY
    assert KEY not in repr(settings)


def test_audit_seal_prints_the_head_of_the_chain(cli: Cli, tmp_path: Path, database_url: str) -> None:
    empty = cli.ok("audit", "seal", "--json").json()
    assert empty == {"at": None, "rows": 0, "hash": GENESIS}
    walk(cli, tmp_path)
    seal = cli.ok("audit", "seal", "--json").json()
    assert set(seal) == {"at", "rows", "hash"}
    last = rows(database_url, "SELECT global_hash, recorded_at FROM audit_entry ORDER BY global_seq DESC")[0]
    assert seal["rows"] == 6 and seal["hash"] == last["global_hash"]
    assert seal["at"].endswith("Z")
    assert f"6 lignes d'audit, empreinte {seal['hash']}" in cli.ok("audit", "seal").out


def test_an_earlier_seal_shows_a_rewritten_tail(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project_id = walk(cli, tmp_path)
    sealed = cli.ok("audit", "seal", "--json").json()
    cli.ok("fire", project_id, "finish_configuration", "invoice=F-1", now="2021-09-01")
    assert cli.ok("audit", "verify", "--seal", sealed["hash"], "--rows", str(sealed["rows"])).code == 0
    # Cut the history back to 5 rows and make the head agree: only the mailed seal still shows it.
    head = rows(database_url, "SELECT global_hash, project_id, seq FROM audit_entry WHERE global_seq = 5")[0]
    execute(
        database_url,
        "DELETE FROM audit_entry WHERE global_seq > 5",
        f"UPDATE audit_chain_head SET row_count = 5, hash = '{head['global_hash']}', seq = {head['seq']}",
    )
    # The rows cut released tranches 1 and 2: undo that too, so that only the mailed seal still shows the cut.
    execute(database_url, "UPDATE tranche SET released_at = NULL")
    assert cli("audit", "verify").code == 0
    problems = verify_fails(cli, "--seal", sealed["hash"], "--rows", str(sealed["rows"]))
    assert any(
        p["problem"].startswith(f"the seal {sealed['hash']} (6 rows) is no longer in the chain") for p in problems
    )
    assert cli("audit", "verify", "--seal", "pas un sceau").code == 2


def test_the_digest_carries_the_seal(cli: Cli, tmp_path: Path, database_url: str) -> None:
    cli.env["ESMS_ADMIN_EMAILS"] = "equipe@ars.example"
    walk(cli, tmp_path)
    seal = cli.ok("audit", "seal", "--json").json()
    cli.ok("digest", now="2021-06-02T08:00:00+02:00")
    digest = rows(database_url, "SELECT body_text, body_html FROM outbox_message WHERE template = 'digest'")[0]
    text = " ".join(str(digest["body_text"]).split())  # the text part is wrapped at 72 columns
    assert f"Sceau du journal d'audit : 6 lignes, empreinte {seal['hash']}" in text
    assert seal["hash"] in digest["body_html"] and "Sceau du journal d'audit" in digest["body_html"]


def test_upgrade_from_0004_links_the_existing_rows_and_verifies(
    database_url: str, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database_url)
    migrate(engine, "0004_programme_money")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO project (id, campaign_id, name, kind, state, services_socles, owner_name, owner_email, "
                "esms_count, small_esms_count, total_cents, created_at, updated_at, version) VALUES "
                "(1, 'hdf-2021', 'Ancien projet', 'acquisition', 'agreement', '', 'Asso', 'a@b.example', 20, 4, "
                "58000000, '2021-03-01 10:00:00', '2021-05-01 10:00:00', 3)"
            )
        )
        previous = GENESIS
        for seq, (event, source, dest) in enumerate(
            [("register", None, "application"), ("force", "application", "agreement")], start=1
        ):
            values = {
                "project_id": 1,
                "seq": seq,
                "at": "2021-03-01 10:00:00",
                "recorded_at": "2021-03-01 10:00:00",
                "event": event,
                "source": source,
                "dest": dest,
                "actor": "ars",
                "reason": None,
                "forced": event == "force",
                "params": "{}",
            }
            digest = hash_of(
                {
                    **values,
                    "at": datetime(2021, 3, 1, 10, tzinfo=UTC),
                    "recorded_at": datetime(2021, 3, 1, 10, tzinfo=UTC),
                },
                previous,
            )
            connection.execute(
                sa.text(
                    "INSERT INTO audit_entry (project_id, seq, at, recorded_at, event, source, dest, actor, reason, "
                    "forced, params, prev_hash, hash) VALUES (:project_id, :seq, :at, :recorded_at, :event, "
                    ":source, :dest, :actor, :reason, :forced, :params, :prev_hash, :hash)"
                ),
                {**values, "prev_hash": previous, "hash": digest},
            )
            previous = digest
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
    assert f"migrée de 0004_programme_money à {HEAD_REVISION}" in cli.ok("init").out
    assert cli.ok("audit", "verify", "--json").json() == {"rows": 2, "ok": True, "problems": []}
    seal = cli.ok("audit", "seal", "--json").json()
    assert seal["rows"] == 2 and seal["at"] == "2021-03-01T10:00:00Z"
    # Old rows cover no money: the project is compared again from its next change, which covers it.
    execute(database_url, "UPDATE project SET total_cents = total_cents + 1")
    assert cli.ok("audit", "verify").code == 0
    execute(database_url, "UPDATE project SET total_cents = total_cents - 1")
    cli.ok("fire", "1", "sign_agreement", now="2021-06-01")
    assert cli.ok("audit", "verify", "--json").json()["rows"] == 3
    execute(database_url, "UPDATE project SET total_cents = total_cents + 1")
    assert verify_fails(cli)[0]["project"] == 1
    engine.dispose()


def test_concurrent_writers_keep_one_chain_across_projects(
    cli: Cli, tmp_path: Path, config_dir: Path, database_url: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a concurrent one is refused (exit 3), see test_engine")

    from workflow.campaigns import load_campaigns
    from workflow.clock import SimulatedClock
    from workflow.engine import Workflow

    cli.env["ESMS_AUDIT_KEY"] = KEY
    ids = [int(cli.ok("project", "add", str(write_project(tmp_path)), now="2021-03-01").out) for _ in range(6)]
    campaigns = load_campaigns(config_dir)
    clock = SimulatedClock(datetime(2021, 3, 20, 9, tzinfo=UTC))

    def submit(project_id: int) -> None:
        # One engine (one connection pool) per writer, as separate processes would have.
        engine = make_engine(cli.env["ESMS_DATABASE_URL"])
        try:
            Workflow(engine, campaigns, clock, audit_key=KEY).fire(project_id, "submit", {}, "porteur")
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(submit, ids))
    assert cli.ok("audit", "verify", "--json").json() == {"rows": 12, "ok": True, "problems": []}
    assert cli.ok("audit", "seal", "--json").json()["rows"] == 12
