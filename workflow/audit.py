"""The tamper-evident audit log: each row's hash covers its content and the previous row's hash.

Editing a row changes its hash; deleting one breaks the chain of the next; `esms audit verify` names both. The
hash is computed from a canonical JSON of the row, so it does not depend on the database's formats.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workflow.db import translate_errors
from workflow.models import AuditEntry, Project

#: The `prev_hash` of a project's first row.
GENESIS = "0" * 64


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """The content of one audit row, each field named once: what the engine inserts and what the hash covers."""

    project_id: int
    seq: int
    at: datetime
    recorded_at: datetime
    event: str
    source: str | None
    dest: str
    actor: str
    reason: str | None
    forced: bool
    params: str  # canonical JSON of the event's parameters
    approved_by: str | None = None  # the second person of a release

    @classmethod
    def of(cls, row: Mapping[str, Any] | object) -> AuditRecord:
        """Read the hashed fields of a row: a mapping (a query row, insert values) or an `AuditEntry`."""
        # Rows written before approvers existed (migration 0003 hashes them) have no `approved_by`.
        values: dict[str, Any] = (
            {name: row.get(name) for name in HASHED_FIELDS}
            if isinstance(row, Mapping)
            else {name: getattr(row, name, None) for name in HASHED_FIELDS}
        )
        return cls(**values)

    def values(self) -> dict[str, Any]:
        """The row's columns, for an insert."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def hash(self, prev_hash: str) -> str:
        """The SHA-256 of this row's content chained to the previous row's hash."""
        canonical = {name: getattr(self, name) for name in HASHED_FIELDS}
        canonical.update(at=_instant(self.at), recorded_at=_instant(self.recorded_at), forced=bool(self.forced))
        # Covered when present, left out when null: rows hashed before approvers existed keep their hashes, and
        # setting or clearing an approver afterwards changes the hash either way.
        if self.approved_by is None:
            del canonical["approved_by"]
        text = json.dumps(
            {**canonical, "prev_hash": prev_hash}, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: The fields of an audit row that its hash covers (besides the previous row's hash).
HASHED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))


def _instant(moment: datetime) -> str:
    # Microseconds kept, always UTC: the text is the same whatever the backend stored.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hash_of(row: Mapping[str, Any], prev_hash: str) -> str:
    """The hash of an audit row given as a mapping (a row of a query, the values of an insert)."""
    return AuditRecord.of(row).hash(prev_hash)


def hash_entry(entry: AuditEntry, prev_hash: str) -> str:
    """The hash an audit row must carry after `prev_hash`."""
    return AuditRecord.of(entry).hash(prev_hash)


def last_hash(session: Session, project_id: int) -> tuple[int, str]:
    """The last (seq, hash) of a project's chain, or (0, GENESIS)."""
    row = session.connection().execute(_LAST_HASH, {"project_id": project_id}).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


# Built once: the statement is compiled once per process, then only executed.
_LAST_HASH = (
    sa.select(col(AuditEntry.seq), col(AuditEntry.hash))
    .where(col(AuditEntry.project_id) == sa.bindparam("project_id"))
    .order_by(col(AuditEntry.seq).desc())
    .limit(1)
)


@dataclass(frozen=True)
class Tampering:
    """One place where the stored log differs from what the engine wrote."""

    project_id: int
    seq: int
    audit_id: int | None
    problem: str

    def line(self) -> str:
        """One line for people."""
        row = f"audit row {self.audit_id}" if self.audit_id is not None else "audit row"
        return f"project {self.project_id}, {row} (seq {self.seq}): {self.problem}"


def verify_chain(entries: Iterable[AuditEntry]) -> list[Tampering]:
    """Check one project's rows (in seq order): edited rows, deleted rows, broken links."""
    problems = []
    expected_prev = GENESIS
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(
                Tampering(
                    entry.project_id,
                    expected_seq,
                    None,
                    f"missing: rows {expected_seq} to {entry.seq - 1} were deleted",
                )
            )
        if entry.prev_hash != expected_prev:
            problems.append(
                Tampering(entry.project_id, entry.seq, entry.id, "chain broken: the previous row was deleted or edited")
            )
        if hash_entry(entry, entry.prev_hash) != entry.hash:
            problems.append(Tampering(entry.project_id, entry.seq, entry.id, "edited: content does not match its hash"))
        expected_prev = entry.hash
        expected_seq = entry.seq + 1
    return problems


def verify(engine: Engine, project_id: int | None = None) -> tuple[int, list[Tampering]]:
    """Verify every project's chain (or one); return (rows checked, problems)."""
    problems: list[Tampering] = []
    checked = 0
    query = select(AuditEntry).order_by(col(AuditEntry.project_id), col(AuditEntry.seq))
    if project_id is not None:
        query = query.where(AuditEntry.project_id == project_id)
    with translate_errors(), Session(engine) as session:
        current: list[AuditEntry] = []
        for entry in session.exec(query.execution_options(yield_per=2000)):
            if current and current[0].project_id != entry.project_id:
                problems.extend(verify_chain(current))
                current = []
            current.append(entry)
            checked += 1
        problems.extend(verify_chain(current))
        # A project whose whole history was deleted has no chain left to break: catch it from the project table.
        has_history = sa.exists().where(col(AuditEntry.project_id) == col(Project.id))
        orphan_query = sa.select(col(Project.id)).where(~has_history)
        if project_id is not None:
            orphan_query = orphan_query.where(col(Project.id) == project_id)
        orphans = session.execute(orphan_query).all()
        problems.extend(Tampering(int(r[0]), 1, None, "missing: its whole history was deleted") for r in orphans)
    return checked, problems


def describe(problems: list[Tampering]) -> list[dict[str, Any]]:
    """Problems as JSON-ready dicts."""
    return [{"project": p.project_id, "seq": p.seq, "audit_id": p.audit_id, "problem": p.problem} for p in problems]
