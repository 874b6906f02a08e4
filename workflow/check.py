"""`esms check`: the invariants that must hold on any database, whatever crashed when.

- every project's state is reachable from its history: the audit rows chain (each row leaves the state the
  previous one entered), every unforced row is an arrow of the life cycle, and the last one entered the
  project's current state;
- tranches are released exactly for the milestones the history reached, and add up to the project's total;
- every message the history calls for is queued exactly once (idempotency keys make a second copy impossible;
  a missing one is reported), and no tranche is told twice;
- delivered twice: not a violation but a count (`possible_duplicates`). The relay counts each handover to the
  server before it starts (`handovers`) and each outcome when it marks (`attempts`); a delivered message with
  more handovers than outcomes had a relay stop between sending and marking, so it may have arrived twice. It
  cannot see a duplicate the server dropped or one sent by a relay older than the fencing (migration 0006);
  with the claims fenced and renewed, nothing else sends a message twice;
- the audit chain of hashes is intact, each project's money is what its last audit row covers, and no row is
  missing from the chain across projects (`workflow.audit`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from states import lifecycle
from workflow.amendments import AMENDABLE_STATES, amendment_message_keys
from workflow.audit import verify as verify_audit
from workflow.campaigns import Campaign
from workflow.db import translate_errors
from workflow.models import AuditEntry, OutboxMessage, Project, Tranche
from workflow.programme import committed_cents
from workflow.purge import PURGEABLE_STATES

ARROWS = {(source, t.event, t.dest) for t in lifecycle.TRANSITIONS for source in t.sources}
# An amendment changes the grappe, not the state: an unforced row that stays where it is.
ARROWS |= {(state, lifecycle.EventName.AMEND, state) for state in AMENDABLE_STATES}
# A purge removes personal data, not the state: an unforced row that stays in an end.
ARROWS |= {(state, lifecycle.EventName.PURGE, state) for state in PURGEABLE_STATES}


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
    #: Handovers to the mail server beyond one per delivered message: perhaps delivered twice (see above).
    possible_duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "projects": self.projects,
            "audit_rows": self.audit_rows,
            "messages": self.messages,
            "possible_duplicates": self.possible_duplicates,
            "ok": not self.violations,
            "violations": [
                {"project": v.project_id, "invariant": v.invariant, "detail": v.detail} for v in self.violations
            ],
        }


def check(
    engine: Engine,
    campaigns: Mapping[str, Campaign] | None = None,
    batch: int = 500,
    *,
    audit_key: str | None = None,
) -> CheckReport:
    """Check every invariant on every project (in batches, so memory stays flat), and each campaign's envelope.

    `audit_key` is ESMS_AUDIT_KEY, which the audit chain is verified under (`workflow.audit.verify`).
    """
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
    with translate_errors(), Session(engine) as session:
        for campaign in (campaigns or {}).values():
            committed = committed_cents(session, campaign.id)
            if committed > campaign.envelope_cents:
                violations.append(
                    Violation(
                        None,
                        "envelope",
                        f"{campaign.id} commits {committed} cents, over its envelope of {campaign.envelope_cents}",
                    )
                )
    with translate_errors(), Session(engine) as session:
        duplicates = session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(OutboxMessage.handovers - OutboxMessage.attempts), 0)).where(
                col(OutboxMessage.status).in_(["sent", "partial"]),
                col(OutboxMessage.handovers) > col(OutboxMessage.attempts),
            )
        ).scalar_one()
    audit_rows, tampering = verify_audit(engine, key=audit_key)
    violations.extend(
        Violation(t.project_id, "audit chain", t.problem + (f" (seq {t.seq})" if t.seq is not None else ""))
        for t in tampering
    )
    return CheckReport(
        projects=projects,
        audit_rows=audit_rows,
        messages=messages,
        violations=tuple(violations),
        possible_duplicates=int(duplicates),
    )


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
    # Events and releases by two people must have released their tranches. Forced moves release nothing today;
    # before the four-eyes rule they released the milestones they reached, so those stay allowed, not required.
    required = {n for row in rows for n in lifecycle.tranches_released_by(row.event, json.loads(row.params))}
    allowed = required | {
        n for row in rows if row.event == lifecycle.EventName.FORCE for n in lifecycle.tranches_reached(row.dest)
    }
    released = {t.number for t in tranches if t.released_at is not None}
    if not required <= released <= allowed:
        found.append(
            Violation(
                project.id,
                "tranches",
                f"released {sorted(released)} but the history released {sorted(required)}",
            )
        )
    total = sum(t.amount_cents for t in tranches)
    if total != project.total_cents:
        found.append(Violation(project.id, "tranches", f"add up to {total} cents, not the total {project.total_cents}"))
    found.extend(_recovery(project, rows, sum(t.amount_cents for t in tranches if t.released_at is not None)))
    return found


def _recovery(project: Project, rows: list[AuditEntry], released: int) -> list[Violation]:
    # released = repaid + waived + balance, with each part as the history recorded it and the balance never below 0.
    found = []
    recorded: dict[str, int] = {"repaid_cents": 0, "waived_cents": 0}
    for row in rows:
        spec = lifecycle.EVENTS_BY_NAME.get(row.event)
        if spec is not None and not row.forced:
            for name, cents in spec.amounts(json.loads(row.params)).items():
                recorded[name] += cents
    for name, cents in recorded.items():
        if getattr(project, name) != cents:
            found.append(Violation(project.id, "recovery", f"{name} is {getattr(project, name)}, history says {cents}"))
    balance = released - project.repaid_cents - project.waived_cents
    if balance < 0:
        found.append(Violation(project.id, "recovery", f"repaid and waived exceed the {released} cents released"))
    if project.state == lifecycle.State.RECOVERY and balance <= 0:
        found.append(Violation(project.id, "recovery", "in recovery with nothing left to repay"))
    if project.state == lifecycle.State.RECOVERED and balance != 0:
        found.append(Violation(project.id, "recovery", f"recovered with a balance of {balance} cents"))
    if project.state in lifecycle.ENDS_WITHOUT_MONEY and released > 0:
        found.append(Violation(project.id, "recovery", f"ended in {project.state} keeping {released} cents released"))
    return found


def _messages(project: Project, rows: list[AuditEntry], tranches: list[Tranche], keys: list[str]) -> list[Violation]:
    # The keys the life cycle's declaration calls for, built by the same function the engine queues them with.
    pid = project.id or 0
    found = []
    expected: list[str] = []
    for row in rows[1:]:
        declared = lifecycle.declared_messages(row.event, row.source, row.dest)
        missed = lifecycle.DEADLINE_BY_STATE.get(row.source or "", "")
        expected.extend(
            lifecycle.message_key(m.key, pid, event=row.event, seq=row.seq, deadline=missed, template=m.template)
            for m in declared
        )
        if row.event == lifecycle.EventName.AMEND:
            expected.extend(amendment_message_keys(pid, row.seq, json.loads(row.params)))
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
