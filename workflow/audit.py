"""The tamper-evident audit log: each row's hash covers its content and the previous row's hash.

Three layers, each catching what the one before cannot:

- **per project**: a row's hash covers its content, the money it left behind (`money`, a canonical snapshot of the
  project's total, tranches and recovery figures) and the previous row of its project; editing a row changes its
  hash, deleting one breaks the chain of the next. `verify` also compares each project's current money with the
  snapshot of its last row: money changed behind the engine's back is named, field by field.
- **across projects**: every row also carries a global sequence number and a hash chained to the row appended
  before it, whatever its project (`global_*` columns), and the one-row table `audit_chain_head` holds the last
  link. A deleted project, or a history cut at its end, leaves a gap in the global chain or a head that points
  past the last row. `esms audit seal` prints the head; the daily digest mails it, so that a rewritten tail shows
  against the mail archive (`esms audit verify --seal`).
- **the key**: with `ESMS_AUDIT_KEY` set, the global hashes are HMAC-SHA256 under that key, kept outside the
  database: a chain recomputed without the key does not verify. Every process that writes or verifies must be
  given the same key. Per-project hashes stay plain SHA-256 (rows written before the key existed keep theirs);
  each one is covered by a keyed global hash, so rewriting a row still needs the key.

Hashes are computed from canonical JSON, so they do not depend on the database's formats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from workflow.db import translate_errors
from workflow.models import AuditChainHead, AuditEntry, Project, Tranche

#: The `prev_hash` of a project's first row, and the `global_prev_hash` of the first row of all.
GENESIS = "0" * 64
#: The one row of `audit_chain_head`.
HEAD_ID = 1


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
    money: str | None = None  # canonical JSON of the project's money after the change (`money_snapshot`)

    @classmethod
    def of(cls, row: Mapping[str, Any] | object) -> AuditRecord:
        """Read the hashed fields of a row: a mapping (a query row, insert values) or an `AuditEntry`."""
        # Rows written before approvers (migration 0003 hashes them) or snapshots existed have neither.
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
        # Covered when present, left out when null: rows hashed before approvers or money snapshots existed keep
        # their hashes, and setting or clearing one afterwards changes the hash either way.
        for optional in ("approved_by", "money"):
            if canonical[optional] is None:
                del canonical[optional]
        return hashlib.sha256(_canonical({**canonical, "prev_hash": prev_hash}).encode("utf-8")).hexdigest()


#: The fields of an audit row that its hash covers (besides the previous row's hash).
HASHED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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


# --- money -----------------------------------------------------------------------------------------------------


def money_snapshot(connection: Connection, project_id: int) -> str:
    """The project's money as stored now, as canonical JSON: what an audit row written now covers."""
    project = connection.execute(
        sa.select(col(Project.total_cents), col(Project.repaid_cents), col(Project.waived_cents)).where(
            col(Project.id) == project_id
        )
    ).one()
    tranches = connection.execute(
        sa.select(col(Tranche.number), col(Tranche.amount_cents), col(Tranche.released_at)).where(
            col(Tranche.project_id) == project_id
        )
    ).all()
    return _canonical(_money(project[0], project[1], project[2], [(t[0], t[1], t[2]) for t in tranches]))


def _money(
    total: int, repaid: int, waived: int, tranches: Iterable[tuple[int, int, datetime | None]]
) -> dict[str, Any]:
    return {
        "total_cents": int(total),
        "repaid_cents": int(repaid),
        "waived_cents": int(waived),
        "tranches": [
            {
                "number": int(number),
                "amount_cents": int(amount),
                "status": "pending" if released_at is None else "released",
                "released_at": None if released_at is None else _instant(released_at),
            }
            for number, amount, released_at in sorted(tranches)
        ],
    }


def _money_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Each money field whose current value is not what the last audit row covers, as `field is X, not Y`."""
    found = [
        f"{name} is {current[name]}, its last audit row says {recorded.get(name)}"
        for name in ("total_cents", "repaid_cents", "waived_cents")
        if current[name] != recorded.get(name)
    ]
    old = {t["number"]: t for t in recorded.get("tranches", [])}
    new = {t["number"]: t for t in current["tranches"]}
    for number in sorted(old.keys() | new.keys()):
        if number not in new:
            found.append(f"tranche {number} was deleted")
        elif number not in old:
            found.append(f"tranche {number} was added")
        else:
            found.extend(
                f"tranche {number} {name} is {new[number][name]}, its last audit row says {old[number][name]}"
                for name in ("amount_cents", "status", "released_at")
                if new[number][name] != old[number][name]
            )
    return found


# --- the chain across projects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seal:
    """The head of the chain across projects: how many rows, the last hash, when the last row was written."""

    at: datetime | None
    rows: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; `at` in ISO-8601 UTC."""
        return {"at": None if self.at is None else _iso(self.at), "rows": self.rows, "hash": self.hash}


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def global_hash(
    *,
    key: str | None,
    global_prev_hash: str,
    global_seq: int,
    row_hash: str,
    prev_project_id: int | None,
    prev_seq: int | None,
) -> str:
    """The link of one row in the chain across projects: HMAC-SHA256 under `key`, or SHA-256 without one."""
    text = _canonical(
        {
            "global_prev_hash": global_prev_hash,
            "global_seq": global_seq,
            "hash": row_hash,
            "prev_project_id": prev_project_id,
            "prev_seq": prev_seq,
        }
    ).encode("utf-8")
    if key:
        return hmac.new(key.encode("utf-8"), text, hashlib.sha256).hexdigest()
    return hashlib.sha256(text).hexdigest()


def read_head(connection: Connection, *, for_update: bool = False) -> AuditChainHead | None:
    """The chain head row, or None when no row was ever appended (or it was deleted)."""
    query = sa.select(AuditChainHead.__table__).where(col(AuditChainHead.id) == HEAD_ID)  # type: ignore[attr-defined]
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).mappings().first()
    return None if row is None else AuditChainHead(**row)


def seal(connection: Connection) -> Seal:
    """The seal of the log as it stands: the head of the chain across projects."""
    head = read_head(connection)
    if head is None:
        return Seal(at=None, rows=0, hash=GENESIS)
    return Seal(at=head.at, rows=head.row_count, hash=head.hash)


def chain_row(connection: Connection, values: dict[str, Any], *, key: str | None, at: datetime) -> dict[str, Any]:
    """The columns linking a row into the chain across projects; the head is moved on to it.

    `values` holds the row's project_id, seq and hash. The caller serialises appenders (PostgreSQL: the head row
    is read FOR UPDATE, after the commitments lock that every writer takes first; SQLite has one writer), so that
    two rows never take the same place.
    """
    head = read_head(connection, for_update=connection.dialect.name == "postgresql")
    rows, prev_hash = (head.row_count, head.hash) if head is not None else (0, GENESIS)
    prev_project_id, prev_seq = (head.project_id, head.seq) if head is not None else (None, None)
    link = {
        "global_seq": rows + 1,
        "global_prev_hash": prev_hash,
        "global_prev_project_id": prev_project_id,
        "global_prev_seq": prev_seq,
    }
    link["global_hash"] = global_hash(
        key=key,
        global_prev_hash=prev_hash,
        global_seq=rows + 1,
        row_hash=values["hash"],
        prev_project_id=prev_project_id,
        prev_seq=prev_seq,
    )
    moved = {
        "row_count": rows + 1,
        "hash": link["global_hash"],
        "project_id": values["project_id"],
        "seq": values["seq"],
        "at": at,
    }
    table = AuditChainHead.__table__  # type: ignore[attr-defined]
    if head is None:
        connection.execute(sa.insert(table).values(id=HEAD_ID, **moved))
    else:
        connection.execute(sa.update(table).where(table.c.id == HEAD_ID).values(**moved))
    return link


def rechain(connection: Connection, *, key: str | None) -> Seal:
    """(Re)build the chain across projects over every audit row in insertion (id) order, and its head.

    Used by migration 0005 on rows written before the chain existed. It links the rows' stored hashes and never
    recomputes them: a row edited before the upgrade still fails its own hash afterwards.
    """
    audit = AuditEntry.__table__  # type: ignore[attr-defined]
    head_table = AuditChainHead.__table__  # type: ignore[attr-defined]
    rows = connection.execute(
        sa.select(audit.c.id, audit.c.project_id, audit.c.seq, audit.c.hash, audit.c.recorded_at).order_by(audit.c.id)
    ).all()
    prev_hash, prev_project_id, prev_seq = GENESIS, None, None
    last_at = None
    for number, row in enumerate(rows, start=1):
        digest = global_hash(
            key=key,
            global_prev_hash=prev_hash,
            global_seq=number,
            row_hash=row.hash,
            prev_project_id=prev_project_id,
            prev_seq=prev_seq,
        )
        connection.execute(
            sa.update(audit)
            .where(audit.c.id == row.id)
            .values(
                global_seq=number,
                global_prev_hash=prev_hash,
                global_prev_project_id=prev_project_id,
                global_prev_seq=prev_seq,
                global_hash=digest,
            )
        )
        prev_hash, prev_project_id, prev_seq, last_at = digest, row.project_id, row.seq, row.recorded_at
    connection.execute(sa.delete(head_table))
    if rows:
        connection.execute(
            sa.insert(head_table).values(
                id=HEAD_ID, row_count=len(rows), hash=prev_hash, project_id=prev_project_id, seq=prev_seq, at=last_at
            )
        )
    return Seal(at=last_at, rows=len(rows), hash=prev_hash)


# --- verification ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tampering:
    """One place where the stored log differs from what the engine wrote (project or seq None: not known)."""

    project_id: int | None
    seq: int | None
    audit_id: int | None
    problem: str

    def line(self) -> str:
        """One line for people."""
        row = f"audit row {self.audit_id}" if self.audit_id is not None else "audit row"
        where = f"project {self.project_id}" if self.project_id is not None else "log"
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{where}, {row}{seq}: {self.problem}"


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


def verify_money(last: AuditEntry, current: dict[str, Any]) -> list[Tampering]:
    """Compare a project's current money with what its last audit row covers."""
    # Rows written before snapshots existed (migration 0005) cover no money: such a project is compared again
    # from its next change on, which the engine always writes with a snapshot.
    if last.money is None:
        return []
    return [
        Tampering(last.project_id, last.seq, last.id, f"money changed outside the engine: {difference}")
        for difference in _money_differences(json.loads(last.money), current)
    ]


@dataclass
class _GlobalWalk:
    """The chain across projects, checked row by row in global order."""

    key: str | None
    problems: list[Tampering]
    expected_seq: int = 1
    expected_prev: str = GENESIS
    hashes: dict[int, str] | None = None

    def step(self, row: Any) -> None:
        if row.global_seq is None:
            self.problems.append(
                Tampering(row.project_id, row.seq, row.id, "not in the chain across projects (inserted by hand)")
            )
            return
        if row.global_seq != self.expected_seq:
            self.problems.append(
                _gap(self.expected_seq, row.global_seq - 1, row.global_prev_project_id, row.global_prev_seq)
            )
        elif row.global_prev_hash != self.expected_prev:
            self.problems.append(
                Tampering(row.project_id, row.seq, row.id, "chain across projects broken: the row before was edited")
            )
        digest = global_hash(
            key=self.key,
            global_prev_hash=row.global_prev_hash or "",
            global_seq=row.global_seq,
            row_hash=row.hash,
            prev_project_id=row.global_prev_project_id,
            prev_seq=row.global_prev_seq,
        )
        if digest != row.global_hash:
            self.problems.append(
                Tampering(
                    row.project_id,
                    row.seq,
                    row.id,
                    "edited: does not match its hash across projects (rewritten, or verified with another key)",
                )
            )
        if self.hashes is not None:
            self.hashes[row.global_seq] = row.global_hash
        self.expected_seq = row.global_seq + 1
        self.expected_prev = row.global_hash

    def end(self, head: AuditChainHead | None) -> None:
        last = self.expected_seq - 1
        if head is None:
            if last:
                self.problems.append(Tampering(None, None, None, "the chain head (audit_chain_head) was deleted"))
            return
        if head.row_count > last:
            self.problems.append(_gap(last + 1, head.row_count, head.project_id, head.seq, tail=True))
        elif head.row_count < last:
            self.problems.append(
                Tampering(None, None, None, f"the chain head says {head.row_count} rows, the log holds {last}")
            )
        elif head.hash != self.expected_prev:
            self.problems.append(Tampering(None, None, None, "the chain head does not match the last row"))


def _gap(first: int, last: int, project_id: int | None, seq: int | None, *, tail: bool = False) -> Tampering:
    rows = f"row {first}" if first == last else f"rows {first} to {last}"
    what = "truncated: the last" if tail else "missing:"
    known = f"; the last of them was project {project_id}'s row {seq}" if project_id is not None else ""
    return Tampering(
        project_id,
        seq,
        None,
        f"{what} {rows} of the chain across projects were deleted{known}",
    )


def verify(
    engine: Engine,
    project_id: int | None = None,
    *,
    key: str | None = None,
    seal_hash: str | None = None,
    seal_rows: int | None = None,
) -> tuple[int, list[Tampering]]:
    """Verify every project's chain (or one), its money, and the chain across projects; return (rows, problems).

    `key` is `ESMS_AUDIT_KEY` (None: plain SHA-256). With `project_id`, the chain across projects is not walked.
    `seal_hash` (and `seal_rows`) is an earlier seal, such as one mailed in a digest: it must still be in the chain.
    """
    problems: list[Tampering] = []
    checked = 0
    query = select(AuditEntry).order_by(col(AuditEntry.project_id), col(AuditEntry.seq))
    if project_id is not None:
        query = query.where(AuditEntry.project_id == project_id)
    with translate_errors(), Session(engine) as session:
        money = _current_money(session.connection(), project_id)
        current: list[AuditEntry] = []

        def close(rows: list[AuditEntry]) -> None:
            problems.extend(verify_chain(rows))
            if rows and rows[-1].project_id in money:
                problems.extend(verify_money(rows[-1], money[rows[-1].project_id]))

        for entry in session.exec(query.execution_options(yield_per=2000)):
            if current and current[0].project_id != entry.project_id:
                close(current)
                current = []
            current.append(entry)
            checked += 1
        close(current)
        session.expunge_all()
        # A project whose whole history was deleted has no chain left to break: catch it from the project table.
        has_history = sa.exists().where(col(AuditEntry.project_id) == col(Project.id))
        orphan_query = sa.select(col(Project.id)).where(~has_history)
        if project_id is not None:
            orphan_query = orphan_query.where(col(Project.id) == project_id)
        orphans = session.execute(orphan_query).all()
        problems.extend(Tampering(int(r[0]), 1, None, "missing: its whole history was deleted") for r in orphans)
        if project_id is None:
            problems.extend(_verify_global(session.connection(), key, seal_hash, seal_rows))
    return checked, problems


def _current_money(connection: Connection, project_id: int | None) -> dict[int, dict[str, Any]]:
    projects = sa.select(
        col(Project.id), col(Project.total_cents), col(Project.repaid_cents), col(Project.waived_cents)
    )
    tranches = sa.select(
        col(Tranche.project_id), col(Tranche.number), col(Tranche.amount_cents), col(Tranche.released_at)
    )
    if project_id is not None:
        projects = projects.where(col(Project.id) == project_id)
        tranches = tranches.where(col(Tranche.project_id) == project_id)
    by_project: dict[int, list[tuple[int, int, datetime | None]]] = {}
    for row in connection.execute(tranches):
        by_project.setdefault(int(row[0]), []).append((row[1], row[2], row[3]))
    return {
        int(pid): _money(total, repaid, waived, by_project.get(int(pid), []))
        for pid, total, repaid, waived in connection.execute(projects)
        if pid is not None
    }


def _verify_global(
    connection: Connection, key: str | None, seal_hash: str | None, seal_rows: int | None
) -> list[Tampering]:
    audit = AuditEntry.__table__  # type: ignore[attr-defined]
    problems: list[Tampering] = []
    walk = _GlobalWalk(key=key, problems=problems, hashes={} if seal_hash is not None else None)
    query = (
        sa.select(
            audit.c.id,
            audit.c.project_id,
            audit.c.seq,
            audit.c.hash,
            audit.c.global_seq,
            audit.c.global_prev_hash,
            audit.c.global_prev_project_id,
            audit.c.global_prev_seq,
            audit.c.global_hash,
        )
        # Rows outside the chain (NULL) first, then the chain in order.
        .order_by(audit.c.global_seq.is_not(None), audit.c.global_seq)
        .execution_options(yield_per=2000)
    )
    for row in connection.execute(query):
        walk.step(row)
    walk.end(read_head(connection))
    if seal_hash is not None:
        problems.extend(_verify_seal(walk.hashes or {}, seal_hash, seal_rows))
    return problems


def _verify_seal(hashes: dict[int, str], seal_hash: str, seal_rows: int | None) -> list[Tampering]:
    if seal_hash == GENESIS and not seal_rows:  # the seal of an empty log is a prefix of any log
        return []
    if seal_rows is not None:
        if hashes.get(seal_rows) == seal_hash:
            return []
    elif seal_hash in hashes.values():
        return []
    rows = f" ({seal_rows} rows)" if seal_rows is not None else ""
    return [
        Tampering(
            None,
            None,
            None,
            f"the seal {seal_hash}{rows} is no longer in the chain: rows it covered were deleted or rewritten",
        )
    ]


def describe(problems: list[Tampering]) -> list[dict[str, Any]]:
    """Problems as JSON-ready dicts."""
    return [{"project": p.project_id, "seq": p.seq, "audit_id": p.audit_id, "problem": p.problem} for p in problems]
