"""Database access: engines for SQLite (embedded default) and PostgreSQL, migrations, and transactions.

`transaction()` is the one way the engine writes: everything inside commits together or not at all, and driver
errors come out as the engine's own one-line errors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

from notifications.storage import private_folder, transaction, translate_errors
from states.errors import DatabaseNotInitialisedError, InvalidArgumentError
from workflow.migrations import HEAD_REVISION

__all__ = ["ensure_current", "make_engine", "migrate", "transaction", "translate_errors"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, *, create: bool = True) -> Engine:
    """Create an engine for `url`; for SQLite, set safe pragmas and, with `create`, make the file and its folder.

    Without `create` (every command but `esms init`), a missing SQLite file is "run esms init": a read-only
    command creates no file and no folder. What is created is private to its owner (0700 folders, 0600 file),
    whatever the umask: the database holds owners' names, e-mails and message bodies.
    """
    parsed = _parsed_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not the psycopg2 default
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _sqlite_file(Path(parsed.database), create=create)
        # The driver's own transaction handling defers BEGIN and breaks SAVEPOINTs; SQLAlchemy's documented
        # recipe: let the driver do nothing and emit BEGIN ourselves (see `_sqlite_begin`).
        kwargs["connect_args"] = {"timeout": 30, "isolation_level": None}
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise InvalidArgumentError(f"ESMS_DATABASE_URL: cannot use {parsed.drivername!r} ({error})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _parsed_url(url: str) -> sa.engine.URL:
    """Parse the database URL; a malformed one is named without ever echoing what it holds (a password)."""
    example = "e.g. sqlite:////var/lib/esms/esms.sqlite3 or postgresql://user@host:5432/esms"
    if "://" not in url:
        raise InvalidArgumentError(f"ESMS_DATABASE_URL is not a database URL ({example})")
    try:
        parsed = sa.engine.make_url(url)
        _ = parsed.port  # a port that is not a number only fails when read
    except (exc.ArgumentError, ValueError):
        scheme = url.split("://", 1)[0]
        raise InvalidArgumentError(
            f"ESMS_DATABASE_URL ({scheme}://…) is not a valid database URL: check the host, port and path ({example})"
        ) from None
    return parsed


def _sqlite_file(path: Path, *, create: bool) -> None:
    """Check (or, with `create`, make) a SQLite file and its folder, private to their owner."""
    if path.exists():
        if not path.is_file():
            raise InvalidArgumentError(f"ESMS_DATABASE_URL: {path} is not a file")
        return
    if not create:
        raise DatabaseNotInitialisedError(f"the database {path} does not exist: run `esms init`")
    try:
        private_folder(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(descriptor, 0o600)  # the umask may have taken bits off, never add them: set them exactly
        os.close(descriptor)
    except FileExistsError:
        return  # created by another process meanwhile: it is the same database
    except OSError as error:
        raise InvalidArgumentError(f"ESMS_DATABASE_URL: cannot create {path} ({error.strerror})") from None


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a writer commits; the busy timeout makes writers queue instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema to `target` (the newest by default; idempotent); return (revision before, after)."""
    from alembic import command
    from alembic.config import Config

    before = current_revision(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with translate_errors(), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, target)
    return before, HEAD_REVISION if target == "head" else current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision recorded in the database, or None for an empty database."""
    with translate_errors(), engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def ensure_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing or older than this code."""
    revision = current_revision(engine)
    if revision != HEAD_REVISION:
        state = "has no schema" if revision is None else f"is at revision {revision}, not {HEAD_REVISION}"
        raise DatabaseNotInitialisedError(f"the database {state}: run `esms init`")
