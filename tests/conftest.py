"""Shared fixtures: a fresh database on each backend, a CLI runner, project file factories, a DB snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "config"
POSTGRES_URL_VAR = "ESMS_TEST_POSTGRES_URL"


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VAR) or None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema of the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'esms.sqlite3'}"
        return
    base = _postgres_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests skipped: set {POSTGRES_URL_VAR} (e.g. postgresql://postgres@127.0.0.1/test)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Result:
    """What one `esms` invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


class Cli:
    """Runs `esms` in this process (fast) or as a real subprocess, against one database and config folder."""

    def __init__(self, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
        self.env = env
        self._capsys = capsys

    def __call__(self, *args: str, now: str | None = None) -> Result:
        from workflow.cli.main import main

        argv = (["--now", now] if now else []) + list(args)
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        self._capsys.readouterr()
        try:
            code = main(argv)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str, now: str | None = None) -> Result:
        result = self(*args, now=now)
        assert result.code == 0, f"esms {' '.join(args)} failed ({result.code}): {result.err}"
        return result

    def subprocess(self, *args: str, now: str | None = None, timeout: float = 60) -> Result:
        argv = [sys.executable, "-m", "workflow.cli.main", *(["--now", now] if now else []), *args]
        env = {**os.environ, **self.env}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config folder that a test may change."""
    import shutil

    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR / "campaigns", target / "campaigns")
    shutil.copytree(CONFIG_DIR / "projects", target / "projects")
    return target


@pytest.fixture
def cli(database_url: str, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """An `esms` runner on a fresh, initialised database."""
    runner = Cli(
        {
            "ESMS_DATABASE_URL": database_url,
            "ESMS_CONFIG_DIR": str(config_dir),
            "ESMS_DATA_DIR": str(tmp_path / "data"),
        },
        capsys,
    )
    runner.ok("init")
    return runner


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused command changed nothing."""
    from workflow.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            return {
                table: sorted(map(tuple, connection.execute(sa.text(f'SELECT * FROM "{table}"')).all()), key=repr)
                for table in sorted(tables)
            }
    finally:
        engine.dispose()


def write_project(
    folder: Path,
    *,
    name: str = "Grappe du Hainaut",
    campaign: str = "hdf-2021",
    kind: str = "acquisition",
    socles: tuple[str, ...] = ("mssante", "dmp"),
    organisations: int = 3,
    esms: int = 20,
    small: int = 4,
    owner_email: str = "dui@tilleuls.example",
) -> Path:
    """Write a project file: `esms` ESMS spread over `organisations`, the first `small` of them small."""
    lines = [
        f"name = {json.dumps(name, ensure_ascii=False)}",
        f'campaign = "{campaign}"',
        f'kind = "{kind}"',
        "services_socles = [" + ", ".join(f'"{s}"' for s in socles) + "]",
        "[owner]",
        'name = "Association Les Tilleuls"',
        f'email = "{owner_email}"',
    ]
    for org in range(organisations):
        lines += ["[[organisations]]", f'name = "Organisation {org + 1}"', f'finess = "59{org:07d}"']
        for index in range(org, esms, organisations):
            lines += [
                "[[organisations.esms]]",
                f'finess = "59{1_000_000 + index:07d}"',
                f'name = "ESMS {index + 1}"',
                'category = "EHPAD"',
                f"small = {'true' if index < small else 'false'}",
            ]
    path = folder / f"project-{uuid.uuid4().hex[:8]}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
