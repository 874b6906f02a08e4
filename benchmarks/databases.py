"""Scratch databases for the benchmark: SQLite files in a work folder, PostgreSQL private schemas.

Every database is migrated with `workflow.db.migrate(make_engine(url))`, exactly as `esms init` does. A
PostgreSQL schema is created for one case and dropped afterwards (and, at the latest, when the run ends), like
the `database_url` fixture of `tests/conftest.py`.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class Database:
    """One scratch database: its SQLAlchemy URL, its backend and where it lives."""

    backend: str  # "sqlite" or "postgresql"
    url: str
    path: Path | None = None  # the SQLite file
    schema: str | None = None  # the PostgreSQL schema


def _sqlalchemy_pg_url(base: str) -> str:
    """Return `base` with the psycopg 3 driver named, as `workflow.db.make_engine` does."""
    if base.startswith("postgresql://"):
        return base.replace("postgresql://", "postgresql+psycopg://", 1)
    if base.startswith("postgres://"):
        return base.replace("postgres://", "postgresql+psycopg://", 1)
    return base


class Databases:
    """Creates scratch databases and removes them."""

    def __init__(self, workdir: Path, postgres_url: str | None) -> None:
        self.workdir = workdir
        self.postgres_url = postgres_url
        self._schemas: list[str] = []
        self._admin: sa.Engine | None = None

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends of this run: SQLite always, PostgreSQL when a URL was given."""
        return ("sqlite", "postgresql") if self.postgres_url else ("sqlite",)

    def _admin_engine(self) -> sa.Engine:
        assert self.postgres_url is not None
        if self._admin is None:
            self._admin = sa.create_engine(_sqlalchemy_pg_url(self.postgres_url))
        return self._admin

    def new(self, backend: str, label: str) -> Database:
        """Return a new, empty database (not migrated yet) on `backend`."""
        tag = f"{label}_{uuid.uuid4().hex[:8]}"
        if backend == "sqlite":
            path = self.workdir / f"{tag}.sqlite3"
            return Database(backend="sqlite", url=f"sqlite:///{path}", path=path)
        assert self.postgres_url is not None
        schema = f"bench_{tag}".lower()
        with self._admin_engine().begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        self._schemas.append(schema)
        separator = "&" if "?" in self.postgres_url else "?"
        return Database(
            backend="postgresql",
            url=f"{self.postgres_url}{separator}options=-csearch_path%3D{schema}",
            schema=schema,
        )

    def copy_sqlite(self, source: Database, label: str) -> Database:
        """Return an identical copy of a SQLite database (SQLite's online backup: WAL content included)."""
        assert source.path is not None
        target = self.new("sqlite", label)
        assert target.path is not None
        with sqlite3.connect(source.path) as src, sqlite3.connect(target.path) as dst:
            src.backup(dst)
        with sqlite3.connect(target.path) as dst:
            dst.execute("PRAGMA journal_mode=WAL")
        return target

    def copy_postgres(self, source: Database, label: str) -> Database:
        """Return an identical copy of a PostgreSQL schema: migrated the same way, rows copied server-side."""
        from sqlmodel import SQLModel

        import workflow.models  # noqa: F401 (registers the tables)
        from benchmarks.generate import ANALYZED_TABLES
        from workflow.db import make_engine, migrate

        assert source.schema is not None
        target = self.new("postgresql", label)
        engine = make_engine(target.url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        # Schema and table names are ours (generated, or from the models): nothing outside is formatted in.
        with self._admin_engine().begin() as connection:
            for table in SQLModel.metadata.sorted_tables:
                source_table = f'"{source.schema}"."{table.name}"'
                target_table = f'"{target.schema}"."{table.name}"'
                connection.execute(sa.text(f"INSERT INTO {target_table} SELECT * FROM {source_table}"))  # noqa: S608
                if "id" in table.c and table.c["id"].primary_key and table.c["id"].autoincrement in (True, "auto"):
                    next_id = f"SELECT coalesce(max(id), 0) + 1 FROM {target_table}"  # noqa: S608
                    connection.execute(
                        sa.text(f"SELECT setval(pg_get_serial_sequence(:table, 'id'), ({next_id}), false)"),
                        {"table": target_table},
                    )
        with self._admin_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            tables = ", ".join(f'"{target.schema}"."{name}"' for name in ANALYZED_TABLES)
            connection.execute(sa.text(f"ANALYZE {tables}"))
        return target

    def drop(self, database: Database) -> None:
        """Remove a database (the file with its WAL, or the schema)."""
        if database.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database.path}{suffix}").unlink(missing_ok=True)
        if database.schema is not None and database.schema in self._schemas:
            with self._admin_engine().begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{database.schema}" CASCADE'))
            self._schemas.remove(database.schema)

    def close(self) -> None:
        """Drop every schema still there."""
        if self._admin is None:
            return
        with self._admin.begin() as connection:
            for schema in self._schemas:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        self._schemas.clear()
        self._admin.dispose()
        self._admin = None

    def postgres_server_version(self) -> str | None:
        """The PostgreSQL server version, or None without PostgreSQL."""
        if not self.postgres_url:
            return None
        with self._admin_engine().connect() as connection:
            return str(connection.execute(sa.text("SHOW server_version")).scalar())

    def raw_postgres(self, database: Database) -> Any:
        """A plain psycopg connection to the schema of `database` (for the raw baselines)."""
        import psycopg

        assert self.postgres_url is not None and database.schema is not None
        return psycopg.connect(self.postgres_url, options=f"-csearch_path={database.schema}")


def raw_sqlite(database: Database) -> sqlite3.Connection:
    """A plain sqlite3 connection with the engine's pragmas (WAL, busy timeout, foreign keys), autocommit."""
    assert database.path is not None
    connection = sqlite3.connect(database.path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection
