"""`esms check`: the invariants that must hold on any database, whatever crashed when.

- every project's state is reachable from its history: the audit rows chain (each row leaves the state the
  previous one entered), every unforced row is an arrow of the life cycle, and the last one entered the
  project's current state;
- tranches are released exactly for the milestones the history reached, and add up to the project's total;
- every message the history calls for is queued exactly once (idempotency keys make a second copy impossible;
  a missing one is reported), and no tranche is told twice;
- the audit chain of hashes is intact (`workflow.audit`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from states import lifecycle
from workflow.audit import verify as verify_audit
from workflow.db import translate_errors
from workflow.models import AuditEntry, OutboxMessage, Project, Tranche

ARROWS = {(source, t.event, t.dest) for t in lifecycle.TRANSITIONS for source in t.sources}


@dataclass(frozen=True)
class Violation:
    """One broken invariant."""

    project_id: int | None
    invariant: str
    detail: str

    def line(self) -> str:
        """One line for people."""
        where = f"project {self.project_id}" if self.project_id is not None else "database"
        return f"{where}: {self.invariant}: {self.detail}"


@dataclass(frozen=True)
class CheckReport:
    """What `esms check` found."""

    projects: int
    audit_rows: int
    messages: int
    violations: tuple[Violation, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "projects": self.projects,
            "audit_rows": self.audit_rows,
            "messages": self.messages,
            "ok": not self.violations,
            "violations": [
                {"project": v.project_id, "invariant": v.invariant, "detail": v.detail} for v in self.violations
            ],
        }


def check(engine: Engine, batch: int = 500) -> CheckReport:
    """Check every invariant on every project (in batches, so memory stays flat)."""
    violations: list[Violation] = []
    projects = messages = 0
    with translate_errors(), Session(engine) as session:
        ids = [int(i) for i in session.exec(select(Project.id).order_by(col(Project.id))).all() if i is not None]
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            audit: dict[int, list[AuditEntry]] = {}
            for entry in session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.project_id).in_(chunk))
                .order_by(col(AuditEntry.project_id), col(AuditEntry.seq))
            ):
                audit.setdefault(entry.project_id, []).append(entry)
            tranches: dict[int, list[Tranche]] = {}
            for tranche in session.exec(select(Tranche).where(col(Tranche.project_id).in_(chunk))):
                tranches.setdefault(tranche.project_id, []).append(tranche)
            keys: dict[int, list[str]] = {}
            for message in session.exec(select(OutboxMessage).where(col(OutboxMessage.project_id).in_(chunk))):
                keys.setdefault(message.project_id or 0, []).append(message.idempotency_key)
                messages += 1
            for project in session.exec(select(Project).where(col(Project.id).in_(chunk))):
                assert project.id is not None
                projects += 1
                rows = audit.get(project.id, [])
                violations.extend(_history(project, rows))
                violations.extend(_money(project, rows, tranches.get(project.id, [])))
                violations.extend(_messages(project, rows, tranches.get(project.id, []), keys.get(project.id, [])))
            session.expunge_all()
    audit_rows, tampering = verify_audit(engine)
    violations.extend(Violation(t.project_id, "audit chain", t.problem + f" (seq {t.seq})") for t in tampering)
    return CheckReport(projects=projects, audit_rows=audit_rows, messages=messages, violations=tuple(violations))


def _history(project: Project, rows: list[AuditEntry]) -> list[Violation]:
    found = []
    if not rows:
        return [Violation(project.id, "history", "no audit row")]
    if rows[0].event != lifecycle.EventName.REGISTER or rows[0].dest != lifecycle.State.APPLICATION:
        found.append(Violation(project.id, "history", "does not start with its registration in application"))
    for previous, row in itertools.pairwise(rows):
        if row.source != previous.dest:
            found.append(
                Violation(
                    project.id,
                    "history",
                    f"row {row.seq} leaves {row.source} but row {previous.seq} entered {previous.dest}",
                )
            )
        if not row.forced and (row.source, row.event, row.dest) not in ARROWS:
            found.append(
                Violation(
                    project.id,
                    "history",
                    f"row {row.seq}: {row.event} {row.source} -> {row.dest} is no arrow of the life cycle",
                )
            )
    if rows[-1].dest != project.state:
        found.append(
            Violation(
                project.id, "history", f"state {project.state} is not the last state of its history ({rows[-1].dest})"
            )
        )
    return found


def _money(project: Project, rows: list[AuditEntry], tranches: list[Tranche]) -> list[Violation]:
    found = []
    reached = {n for row in rows for n in lifecycle.tranches_released_by(row.event, row.dest, forced=row.forced)}
    released = {t.number for t in tranches if t.released_at is not None}
    if released != reached:
        found.append(
            Violation(
                project.id,
                "tranches",
                f"released {sorted(released)} but the history reached the milestones of {sorted(reached)}",
            )
        )
    total = sum(t.amount_cents for t in tranches)
    if total != project.total_cents:
        found.append(Violation(project.id, "tranches", f"add up to {total} cents, not the total {project.total_cents}"))
    return found


def _messages(project: Project, rows: list[AuditEntry], tranches: list[Tranche], keys: list[str]) -> list[Violation]:
    # The keys the life cycle's declaration calls for, built by the same function the engine queues them with.
    pid = project.id or 0
    found = []
    expected: list[str] = []
    for row in rows[1:]:
        declared = (lifecycle.FORCED_MESSAGE,) if row.forced else lifecycle.EVENTS_BY_NAME[row.event].messages
        missed = lifecycle.DEADLINE_BY_STATE.get(row.source or "", "")
        expected.extend(
            lifecycle.message_key(m.key, pid, event=row.event, seq=row.seq, deadline=missed) for m in declared
        )
    released = {
        lifecycle.message_key(lifecycle.MessageKey.PER_TRANCHE, pid, event="", seq=0, tranche=t.number)
        for t in tranches
        if t.released_at is not None
    }
    expected.extend(sorted(released))
    present = set(keys)
    for key in expected:
        if key not in present:
            found.append(Violation(project.id, "messages", f"no message queued for {key}"))
    if len(keys) != len(present):
        found.append(Violation(project.id, "messages", "a message is queued twice"))
    for key in keys:
        if ":tranche:" in key and key not in released:
            found.append(Violation(project.id, "messages", f"{key} told but the tranche is not released"))
    return found
