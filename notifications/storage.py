"""The outbox's storage plumbing, shared by the whole engine: UTC timestamps and one transaction per unit of work.

It sits here, in the lowest package that needs a database, so that `notifications` (the outbox, the relay) never
imports `workflow`; `workflow.models` and `workflow.db` build on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Dialect, Engine
from sqlmodel import Session

from states.errors import ConflictError, OperationalError


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC (naive in SQLite, `timestamptz` in PostgreSQL), always read back aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    """A `UTCDateTime` column for an SQLModel field."""
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver errors into the engine's errors (one line, the right exit code)."""
    try:
        yield
    except exc.OperationalError as error:
        text = str(error.orig) if error.orig is not None else str(error)
        if "locked" in text or "lock timeout" in text or "could not serialize" in text or "deadlock" in text:
            raise ConflictError(
                f"another process changed the database at the same moment ({text.splitlines()[0]}); "
                "nothing was done, retry"
            ) from None
        raise OperationalError(f"database unavailable: {text.splitlines()[0]}") from None
    except exc.IntegrityError as error:
        first = str(error.orig).splitlines()[0] if error.orig is not None else "integrity error"
        raise ConflictError(f"another process wrote the same row first ({first}); retry") from None


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """Run the body in one transaction: commit when it returns, roll back when anything raises."""
    with translate_errors(), Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def private_folder(folder: Path) -> None:
    """Create `folder` and its missing parents with mode 0700 whatever the umask (existing ones are left as they are).

    The database and the mail folder hold owners' names, addresses and messages: private to their owner.
    """
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(20, "a file stands where a folder is needed", str(parent))
            break
        missing.append(parent)
    for created in reversed(missing):
        created.mkdir(mode=0o700)
        created.chmod(0o700)
