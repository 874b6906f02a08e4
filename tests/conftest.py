"""Shared fixtures: a fresh database on each backend, a CLI runner, project file factories, a DB snapshot.

The fast loop is `pytest -m "not slow"`: it leaves out what starts processes or servers and runs the Hypothesis
properties with a few examples each (profile `fast`); `pytest` alone runs everything with the full counts.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer.main
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "config"
POSTGRES_URL_VAR = "ESMS_TEST_POSTGRES_URL"
_build_command = typer.main.get_command

settings.register_profile("full", settings.get_profile("default"))
settings.register_profile("fast", max_examples=5)


def pytest_configure(config: pytest.Config) -> None:
    """Load the `fast` Hypothesis profile when slow tests are left out, unless a profile was chosen."""
    chosen = config.getoption("hypothesis_profile", None) or os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        settings.load_profile(chosen)
    elif "not slow" in (config.getoption("markexpr", "") or ""):
        settings.load_profile("fast")


def examples(full: int) -> int:
    """`full` Hypothesis examples, or fewer under a profile that asks for fewer (the fast loop)."""
    return min(full, settings.default.max_examples)


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VAR) or None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema of the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'esms.sqlite3'}"
        return
    if _postgres_url() is None:
        pytest.skip(f"PostgreSQL tests skipped: set {POSTGRES_URL_VAR} (e.g. postgresql://postgres@127.0.0.1/test)")
    with _postgres_schema() as url:
        yield url


@contextlib.contextmanager
def _postgres_schema() -> Iterator[str]:
    """A private, empty schema of the test PostgreSQL server, dropped afterwards."""
    base = _postgres_url()
    assert base is not None
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


# --- a migrated schema, built once per session and copied into each test's fresh database -------------------


def _record_migration(url: str) -> list[tuple[str, Any]]:
    """Migrate the empty database at `url` to the newest revision; return every statement that was sent."""
    from sqlalchemy import event

    from workflow.db import make_engine, migrate

    engine = make_engine(url)
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        assert not many, "a migration sent an executemany: replay it with executemany too"
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return statements


@pytest.fixture(scope="session")
def install_schema(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], None]:
    """Bring an empty test database to the newest revision, as `esms init` does, without running Alembic again.

    Alembic takes about 0.2 s a database; this takes a few milliseconds. SQLite: a copy of a database migrated
    once. PostgreSQL: the statements one migration sent, replayed in the test's own schema. `esms init` itself is
    tested on empty and older databases in tests/workflow/test_schema.py and test_integrity.py.
    """
    from workflow.db import make_engine

    @functools.cache
    def sqlite_template() -> Path:
        template = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
        _record_migration(f"sqlite:///{template}")
        return template

    @functools.cache
    def postgres_script() -> list[tuple[str, Any]]:
        with _postgres_schema() as url:
            return _record_migration(url)

    def install(url: str) -> None:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            assert parsed.database is not None and not Path(parsed.database).exists()
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sqlite_template(), parsed.database)
            return
        engine = make_engine(url)
        try:
            with engine.begin() as connection:
                for statement, parameters in postgres_script():
                    connection.exec_driver_sql(statement, parameters)
        finally:
            engine.dispose()

    return install


@dataclass
class Result:
    """What one `esms` invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


@functools.cache
def _command_built_once(app: Any) -> Any:
    """typer builds the click command from `app` on each `esms` run, a third of an in-process run: build it once
    (a click command is made to be invoked many times: each invocation has its own context)."""
    return _build_command(app)


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
        typer.main.get_command = _command_built_once
        try:
            code = main(argv)
        finally:
            typer.main.get_command = _build_command
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
def cli(
    database_url: str,
    config_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    install_schema: Callable[[str], None],
) -> Cli:
    """An `esms` runner on a fresh, initialised database."""
    install_schema(database_url)
    return Cli(
        {
            "ESMS_DATABASE_URL": database_url,
            "ESMS_CONFIG_DIR": str(config_dir),
            "ESMS_DATA_DIR": str(tmp_path / "data"),
        },
        capsys,
    )


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
    """Write a project file: `esms` ESMS spread over `organisations`, the first `small` of them small.

    Each file of a folder gets its own ESMS numbers (one ESMS, one funding): the first file's are 591000000,
    591000001…, the second's 591001000…, and so on.
    """
    first_esms = 1_000_000 + 1_000 * len(list(folder.glob("project-*.toml")))
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
                f'finess = "59{first_esms + index:07d}"',
                f'name = "ESMS {index + 1}"',
                'category = "EHPAD"',
                f"small = {'true' if index < small else 'false'}",
            ]
    path = folder / f"project-{uuid.uuid4().hex[:8]}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
