"""The transactional outbox: messages queued with the change that causes them, and what became of each.

Statuses: `pending` (to send at `next_attempt_at`), `sent`, `partial` (delivered, but some recipients were
refused: see `last_error`), `dead` (refused for good, or too many attempts; `esms outbox retry` revives it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from notifications.models import OutboxMessage, OutboxStatus
from notifications.render import Rendered
from notifications.storage import transaction, translate_errors
from states.errors import InvalidArgumentError

#: Every status, in the order of a message's life (kept for the callers that list them).
STATUSES: tuple[OutboxStatus, ...] = tuple(OutboxStatus)


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A file attached to a message (the `.ics` of a deadline)."""

    filename: str
    content_type: str
    content: str


def enqueue(
    session: Session,
    *,
    key: str,
    project_id: int | None,
    template: str,
    recipients: list[str],
    rendered: Rendered,
    now: datetime,
    attachments: tuple[Attachment, ...] = (),
    reply_to: str | None = None,
) -> bool:
    """Queue a message in the caller's transaction unless one with this idempotency key exists; True if queued."""
    row = {
        "reply_to": reply_to,
        "idempotency_key": key,
        "project_id": project_id,
        "template": template,
        "recipients": json.dumps(recipients),
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "attachments": json.dumps([a.__dict__ for a in attachments], ensure_ascii=False),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        # The unique key decides, in one statement: a repeated event or sweep inserts nothing.
        statement = _INSERT_NEW_ONLY[dialect]
        return session.connection().execute(statement, row).first() is not None
    exists = session.execute(sa.select(col(OutboxMessage.id)).where(col(OutboxMessage.idempotency_key) == key)).first()
    if exists is not None:
        return False
    session.execute(sa.insert(OutboxMessage).values(**row))
    return True


# The Core table (an ORM-enabled insert reports no reliable rowcount); statements built once per dialect.
_TABLE: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_INSERT_NEW_ONLY = {
    name: insert(_TABLE).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(_TABLE.c.id)
    for name, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}


def message_view(message: OutboxMessage) -> dict[str, Any]:
    """A message as `esms outbox list` shows it (never the body)."""
    return {
        "id": message.id,
        "key": message.idempotency_key,
        "project": message.project_id,
        "template": message.template,
        "recipients": json.loads(message.recipients),
        "subject": message.subject,
        "status": message.status,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "last_error": message.last_error,
        "created_at": message.created_at.isoformat(),
    }


def list_messages(engine: Engine, status: OutboxStatus | str | None, limit: int = 1000) -> list[dict[str, Any]]:
    """List messages, newest first, optionally of one status (a name as typed is checked here)."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
    if status is not None:
        if status not in STATUSES:
            raise InvalidArgumentError(f"unknown status {str(status)!r} (statuses: {', '.join(STATUSES)})")
        query = query.where(OutboxMessage.status == OutboxStatus(status))
    with translate_errors(), Session(engine) as session:
        return [message_view(m) for m in session.exec(query).all()]


def retry(engine: Engine, now: datetime, message_id: int | None, *, dead: bool) -> int:
    """Make dead messages (one by id, or every one with `dead`) pending again now; return how many."""
    with transaction(engine) as session:
        query = sa.update(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.DEAD)
        if message_id is not None:
            message = session.get(OutboxMessage, message_id)
            if message is None:
                raise InvalidArgumentError(f"unknown message: {message_id} (see `esms outbox list`)")
            if message.status != OutboxStatus.DEAD:
                raise InvalidArgumentError(f"message {message_id} is {message.status}; only dead messages are retried")
            query = query.where(col(OutboxMessage.id) == message_id)
        elif not dead:
            raise InvalidArgumentError("outbox retry: give a message id, or retry every dead message")
        result = session.execute(query.values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now))
        return int(result.rowcount)  # type: ignore[attr-defined]
