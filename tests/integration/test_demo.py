"""The README's first command: the demo runs on embedded defaults and prints the timeline (slow: a whole
simulated campaign of daemon passes, about 5 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.slow


# The demo writes its own SQLite file whatever the configured database: one backend is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_demo_walks_the_sample_projects_and_reports_the_money(cli: Cli, tmp_path: Path) -> None:
    result = cli.ok("demo", "--database", str(tmp_path / "demo.sqlite3"))
    lines = result.out.splitlines()
    assert any("enregistré n° 1 Grappe du Hainaut" in line and "580\u202f000,00\u00a0€" in line for line in lines)
    assert any("évaluation des critères d'usage → terminé" in line and "tranche 3" in line for line in lines)
    assert any(
        "convention → caduc (balayage : date limite de signature de la convention dépassée)" in line for line in lines
    )
    assert any("REFUSÉ" in line and "project is in lapsed" in line for line in lines)
    assert any("rappel envoyé, date limite de signature de la convention dans 7 jours" in line for line in lines)
    assert (tmp_path / "demo.sqlite3").is_file()
    mails = sorted((tmp_path / "demo-mail").glob("*.eml"))
    summary = next(line for line in lines if "courriels écrits dans" in line)
    assert f"{len(mails)} courriels écrits" in summary


def test_demo_leaves_alone_a_database_it_did_not_create(cli: Cli, tmp_path: Path) -> None:
    precious = tmp_path / "precious.sqlite3"
    precious.write_bytes(b"not the demo's")
    result = cli("demo", "--database", str(precious))
    assert result.code == 2 and "was not created by esms demo" in result.err
    assert precious.read_bytes() == b"not the demo's"
