"""One active daemon per database: a lease row (holder, expiry) taken and renewed by compare-and-set.

A daemon that cannot take the lease stands by and tries again each pass; when the holder dies, its lease
expires and a standby takes over. Lease times are wall-clock times: they are about processes, not the calendar.
The holder renews it during a pass too, and stops working as soon as a renewal says another holder has it.
A database that refuses every write is not "another daemon": `ReadOnlyDatabaseError` says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from states.errors import OperationalError
from workflow.db import translate_errors
from workflow.models import Lease

SCHEDULER_LEASE = "scheduler"
#: How SQLite ("attempt to write a readonly database") and PostgreSQL ("read-only transaction") refuse writes.
_READ_ONLY = ("readonly", "read-only")


class ReadOnlyDatabaseError(OperationalError):
    """The database refuses writes (a read-only file, a replica, `default_transaction_read_only`): exit 4."""


def acquire(engine: Engine, holder: str, now: datetime, ttl: timedelta, name: str = SCHEDULER_LEASE) -> bool:
    """Take or renew the lease for `holder` until `now + ttl`; False when another live holder has it."""
    with translate_errors(), Session(engine) as session:
        try:
            with session.begin():
                current = session.get(Lease, name)
                if current is None:
                    session.add(Lease(name=name, holder=holder, expires_at=now + ttl, renewed_at=now))
                    return True
                if current.holder != holder and current.expires_at > now:
                    return False
                # Compare-and-set on what we read: of two standbys taking an expired lease, one wins.
                result = session.execute(
                    sa.update(Lease)
                    .where(
                        col(Lease.name) == name,
                        col(Lease.holder) == current.holder,
                        col(Lease.expires_at) == current.expires_at,
                    )
                    .values(holder=holder, expires_at=now + ttl, renewed_at=now)
                )
                return bool(result.rowcount == 1)  # type: ignore[attr-defined]
        except exc.DBAPIError as error:
            text = str(error.orig if error.orig is not None else error)
            if any(marker in text.lower() for marker in _READ_ONLY):
                raise ReadOnlyDatabaseError(
                    f"the database is read-only ({text.splitlines()[0]}): the daemon needs to write to it"
                ) from None
            if isinstance(error, exc.IntegrityError | exc.OperationalError):
                return False  # somebody else inserted or holds the write lock: try again next pass
            raise


def release(engine: Engine, holder: str, name: str = SCHEDULER_LEASE) -> None:
    """Give the lease up (on a clean exit), so that a standby takes over at once."""
    with translate_errors(), Session(engine) as session, session.begin():
        session.execute(sa.delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))
