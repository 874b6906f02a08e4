"""The only path that changes a project: register it, fire an event on it, or force it to a state.

Each command reads the project, lets the life-cycle machine decide, and writes the new state, its audit row and
its tranche releases in one transaction, guarded by the project's version so that two processes never both win.
A refused command raises before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from states import lifecycle
from states.errors import (
    ConflictError,
    EsmsAlreadyFundedError,
    ForcedMoveRefusedError,
    InvalidArgumentError,
    InvalidFieldError,
    ReleaseRefusedError,
    UnknownProjectError,
    UnknownStateError,
)
from states.grappe import EsmsRecord, Grappe, OrganisationRecord
from states.guards import GuardContext
from states.machine import fire as fire_machine
from states.money import format_cents, split_tranches
from states.text import FIELD_LIMITS, has_control_characters
from workflow.audit import AuditRecord, chain_row, last_hash, money_snapshot
from workflow.calendars import deadline_set_by, for_project, with_deadline
from workflow.campaigns import Campaign, get_campaign
from workflow.change import Change, DeadlineSet, ReleasedTranche
from workflow.clock import Clock
from workflow.db import transaction
from workflow.messages import queue_change_messages
from workflow.models import AuditEntry, Esms, Organisation, Project, Tranche
from workflow.programme import (
    COMMITTED_STATES,
    ProgrammeView,
    committed_cents,
    esms_held,
    funds_of,
    lock_commitments,
)
from workflow.project_file import ProjectSpec
from workflow.schedule import next_due_at

MAX_REASON = FIELD_LIMITS["reason"]


class Workflow:
    """Registers projects and changes their state under the programme's rules."""

    def __init__(
        self, engine: Engine, campaigns: dict[str, Campaign], clock: Clock, audit_key: str | None = None
    ) -> None:
        self.engine = engine
        self.campaigns = campaigns
        self.clock = clock
        # ESMS_AUDIT_KEY: the audit chain's HMAC key (workflow.audit); None: plain SHA-256.
        self.audit_key = audit_key

    # --- registering ---------------------------------------------------------------------------------------

    def register(self, spec: ProjectSpec, actor: str) -> int:
        """Register a project in `application` with its grappe and its pending tranches; return its id."""
        return self.register_many([spec], actor)[0]

    def register_many(self, specs: list[ProjectSpec], actor: str) -> list[int]:
        """Register several projects in one transaction: all of them, or none if one is refused."""
        actor = checked_actor(actor)
        campaigns = [get_campaign(self.campaigns, spec.campaign) for spec in specs]
        with transaction(self.engine) as session:
            lock_commitments(session)
            return [
                self._register_in(session, spec, campaign, actor)
                for spec, campaign in zip(specs, campaigns, strict=True)
            ]

    def _register_in(self, session: Session, spec: ProjectSpec, campaign: Campaign, actor: str) -> int:
        now, wall = self.clock.now(), self.clock.wall()
        # One ESMS, one funding; the projects registered before in this transaction count too.
        conflicts = esms_held(session, (e.finess for e in spec.grappe.esms))
        if conflicts:
            first = conflicts[0]
            raise EsmsAlreadyFundedError(
                f"{spec.name}: ESMS {first.finess} already belongs to project {first.project_id} "
                f"of campaign {first.campaign_id}",
                rule="esms_not_funded_elsewhere",
                event=lifecycle.EventName.REGISTER,
            )
        total = spec.grappe.funding_total_cents(campaign.funding)
        project = Project(
            campaign_id=campaign.id,
            name=spec.name,
            kind=spec.grappe.kind,
            state=lifecycle.State.APPLICATION,
            services_socles=",".join(spec.grappe.services_socles),
            owner_name=spec.owner_name,
            owner_email=spec.owner_email,
            esms_count=spec.grappe.esms_count,
            small_esms_count=spec.grappe.small_esms_count,
            total_cents=total,
            created_at=now,
            updated_at=now,
            next_due_at=next_due_at(campaign, lifecycle.State.APPLICATION, now),
        )
        session.add(project)
        session.flush()
        assert project.id is not None
        for org in spec.grappe.organisations:
            organisation = Organisation(project_id=project.id, name=org.name, finess=org.finess)
            session.add(organisation)
            session.flush()
            assert organisation.id is not None
            session.add_all(
                Esms(
                    project_id=project.id,
                    organisation_id=organisation.id,
                    finess=e.finess,
                    name=e.name,
                    category=e.category,
                    small=e.small,
                )
                for e in org.esms
            )
        amounts = split_tranches(total, list(campaign.funding.tranches))
        for number, (percent, amount) in enumerate(zip(campaign.funding.tranches, amounts, strict=True), 1):
            session.add(Tranche(project_id=project.id, number=number, percent=str(percent), amount_cents=amount))
        append_audit(
            session,
            AuditRecord(
                project_id=project.id,
                seq=0,
                at=now,
                recorded_at=wall,
                event=lifecycle.EventName.REGISTER,
                source=None,
                dest=lifecycle.State.APPLICATION,
                actor=actor,
                reason=None,
                forced=False,
                params="{}",
            ),
            key=self.audit_key,
        )
        return project.id

    # --- changing state ------------------------------------------------------------------------------------

    def fire(
        self, project_id: int, event: str, params: dict[str, str], actor: str, *, reason: str | None = None
    ) -> Change:
        """Fire `event` with its `key=value` parameters on a project, under the programme's rules."""
        actor = checked_actor(actor)
        with transaction(self.engine) as session:
            return self.fire_in(session, _load(session, project_id), event, params, actor, reason=reason)

    def fire_in(
        self,
        session: Session,
        project: Project,
        event: str,
        params: dict[str, str],
        actor: str,
        *,
        reason: str | None = None,
    ) -> Change:
        """Fire `event` on a loaded `project` inside the caller's transaction."""
        campaign = get_campaign(self.campaigns, project.campaign_id)
        spec = lifecycle.EVENTS_BY_NAME.get(event)
        if spec is not None and spec.commits:
            lock_commitments(session)
        context = GuardContext(
            event=event,
            state=project.state,
            campaign=for_project(campaign, project),
            grappe=lambda: load_grappe(session, project),
            now=self.clock.now(),
            params=params,
            funds=lambda: funds_of(session, project),
            programme=ProgrammeView(session, project),
        )
        dest = fire_machine(context)
        assert spec is not None  # the machine refused unknown events
        return self._write(
            session,
            project,
            campaign,
            event=spec.name,
            dest=dest,
            params=params,
            actor=actor,
            forced=False,
            reason=spec.reason(params) or reason,
            fields=spec.recorded(params),
            amounts=spec.amounts(params),
            share_reason=False,
        )

    def force(self, project_id: int, state: str, reason: str, actor: str, *, share_reason: bool = False) -> Change:
        """Move a project to `state` bypassing the guards; audited as forced with the operator's reason.

        A forced move never moves money: no tranche is released (the change names those whose milestone the
        new state has reached, for `release`), and the programme's money rules still hold (`_forced_money`).
        The owner is told the new state; the reason stays internal unless `share_reason`.
        """
        if state not in lifecycle.STATES:
            raise UnknownStateError(state, list(lifecycle.STATES))
        actor = checked_actor(actor)
        reason = checked_reason(reason, command="force")
        with transaction(self.engine) as session:
            lock_commitments(session)
            project = _load(session, project_id)
            if project.state == state:
                raise InvalidArgumentError(f"force: project {project_id} is already in {state}")
            campaign = get_campaign(self.campaigns, project.campaign_id)
            dest = lifecycle.State(state)
            _forced_money(session, project, campaign, dest)
            return self._write(
                session,
                project,
                campaign,
                event=lifecycle.EventName.FORCE,
                dest=dest,
                params={},
                actor=actor,
                forced=True,
                reason=reason,
                fields={},
                amounts={},
                share_reason=share_reason,
            )

    def release(self, project_id: int, number: int, reason: str, actor: str, approved_by: str) -> Change:
        """Release tranche `number` on two people's word: `actor` asks, `approved_by` approves (four eyes).

        Allowed only when the project has reached the tranche's milestone on the main line, the tranche is still
        pending and the project owes nothing back. The state does not move; the audit row has event `release`,
        `forced`, the reason and both names; the owner is told as for any release.
        """
        actor = checked_actor(actor)
        approver = checked_actor(approved_by, field="approved_by")
        reason = checked_reason(reason, command="release")
        with transaction(self.engine) as session:
            project = _load(session, project_id)
            state = lifecycle.State(project.state)
            refuse = _release_refusal(session, project, number, actor, approver)
            if refuse:
                raise ReleaseRefusedError(refuse, rule="four_eyes_release", event="release", state=state)
            campaign = get_campaign(self.campaigns, project.campaign_id)
            return self._write(
                session,
                project,
                campaign,
                event=lifecycle.EventName.RELEASE,
                dest=state,
                params={"tranche": str(number)},
                actor=actor,
                forced=True,
                reason=reason,
                fields={},
                amounts={},
                share_reason=False,
                approved_by=approver,
            )

    def _write(
        self,
        session: Session,
        project: Project,
        campaign: Campaign,
        *,
        event: str,
        dest: str,
        params: dict[str, str],
        actor: str,
        forced: bool,
        reason: str | None,
        fields: dict[str, str],
        amounts: dict[str, int],
        share_reason: bool,
        approved_by: str | None = None,
    ) -> Change:
        now, wall = self.clock.now(), self.clock.wall()
        assert project.id is not None
        refuse_going_back(project, now)
        source = project.state
        calendar = for_project(campaign, project)
        deadline_set = None
        spec = None if forced else lifecycle.EVENTS_BY_NAME.get(event)
        if spec is not None and (given := deadline_set_by(spec, params, calendar, source, now)) is not None:
            key, day = given
            deadline_set = DeadlineSet(key=key, day=day, previous=calendar.calendar.get(key))
            fields = {**fields, "own_deadlines": with_deadline(project, key, day)}
            calendar = replace(calendar, calendar={**calendar.calendar, key: day})
        # The version in the WHERE clause is what makes a concurrent change lose cleanly instead of silently.
        # No session synchronisation: it would compare the row with every project the sweep's batch loaded.
        updated = session.execute(
            sa.update(Project)
            .execution_options(synchronize_session=False)
            .where(col(Project.id) == project.id, col(Project.version) == project.version)
            .values(
                state=dest,
                updated_at=now,
                version=project.version + 1,
                next_due_at=next_due_at(calendar, dest, now),
                sweep_error=None,  # a change makes a past sweep failure moot
                sweep_error_at=None,
                **fields,
                # Amounts add up (a repayment to what was repaid): the version guard makes the read-add safe.
                **{name: getattr(project, name) + cents for name, cents in amounts.items()},
            )
        )
        if updated.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(
                f"project {project.id} was changed by another process since it was read; nothing was done, retry"
            )
        released = self._release_tranches(session, project.id, lifecycle.tranches_released_by(event, params), now)
        seq = append_audit(
            session,
            AuditRecord(
                project_id=project.id,
                seq=0,
                at=now,
                recorded_at=wall,
                event=event,
                source=source,
                dest=dest,
                actor=actor,
                reason=reason,
                forced=forced,
                params=json.dumps(params, ensure_ascii=False, sort_keys=True),
                approved_by=approved_by,
            ),
            key=self.audit_key,
        )
        change = Change(
            project_id=project.id,
            event=event,
            source=source,
            dest=dest,
            at=now,
            actor=actor,
            forced=forced,
            reason=reason,
            released=released,
            seq=seq,
            approved_by=approved_by,
            amounts=amounts,
            pending_milestones=_pending_milestones(session, project.id, dest) if forced else (),
            deadline_set=deadline_set,
        )
        session.flush()
        queue_change_messages(
            session,
            change,
            project,
            calendar,
            now,
            share_reason=share_reason,
            selection_group=fields.get("selection_group", project.selection_group),
        )
        return change

    @staticmethod
    def _release_tranches(
        session: Session, project_id: int, due: tuple[int, ...], now: datetime
    ) -> tuple[ReleasedTranche, ...]:
        if not due:
            return ()
        pending = session.exec(
            select(Tranche)
            .where(
                Tranche.project_id == project_id,
                col(Tranche.number).in_(due),
                col(Tranche.released_at).is_(None),
            )
            .order_by(col(Tranche.number))
        ).all()
        released = []
        for tranche in pending:
            # `released_at IS NULL` in the WHERE clause: a tranche is released once, whatever happens around it.
            result = session.execute(
                sa.update(Tranche)
                .execution_options(synchronize_session=False)
                .where(col(Tranche.id) == tranche.id, col(Tranche.released_at).is_(None))
                .values(released_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError(f"tranche {tranche.number} of project {project_id} was released concurrently")
            released.append(
                ReleasedTranche(
                    number=tranche.number, percent=Decimal(tranche.percent), amount_cents=tranche.amount_cents
                )
            )
        return tuple(released)


MAX_ACTOR = FIELD_LIMITS["actor"]


def checked_actor(actor: str, *, field: str = "actor") -> str:
    """A person as audited (the actor, an approver): one line of text, at most 200 characters."""
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR or has_control_characters(actor):
        raise InvalidFieldError(field, f"must be 1 to {MAX_ACTOR} characters of text on one line")
    return actor


def refuse_going_back(project: Project, now: datetime) -> None:
    """Refuse a change dated before the project's last one: its history would be written out of order."""
    if now < project.updated_at:
        raise InvalidArgumentError(
            f"project {project.id} last changed at {project.updated_at.isoformat()}: a change at {now.isoformat()} "
            "would write its history out of order (check --now)"
        )


def checked_reason(reason: str, *, command: str) -> str:
    """The reason of a forced move or a release: required, one line, at most `MAX_REASON` characters."""
    reason = reason.strip()
    if not reason:
        raise InvalidFieldError("reason", "must say why the rules are bypassed", command=command)
    if has_control_characters(reason):
        raise InvalidFieldError("reason", "must be one line of text (no control characters)", command=command)
    if len(reason) > MAX_REASON:
        raise InvalidFieldError("reason", f"is longer than {MAX_REASON} characters", command=command)
    return reason


def _pending_milestones(session: Session, project_id: int, state: str) -> tuple[int, ...]:
    """The tranches whose milestone `state` has reached but that are still pending (for `esms release`)."""
    reached = lifecycle.tranches_reached(state)
    if not reached:
        return ()
    pending = session.execute(
        sa.select(col(Tranche.number)).where(
            col(Tranche.project_id) == project_id,
            col(Tranche.number).in_(reached),
            col(Tranche.released_at).is_(None),
        )
    ).scalars()
    return tuple(sorted(int(n) for n in pending))


def _release_refusal(session: Session, project: Project, number: int, actor: str, approver: str) -> str | None:
    """Why tranche `number` of `project` cannot be released on these two people's word, or None."""
    if actor.casefold() == approver.casefold():
        return f"the approver must be another person than the actor ({actor})"
    if project.state in lifecycle.RECOVERY_STATES:
        return f"project {project.id} is in {project.state}: it owes money back, nothing more is released"
    milestone = lifecycle.TRANCHE_MILESTONES.get(number)
    if milestone is None:
        return f"tranche {number} does not exist (tranches: {', '.join(map(str, lifecycle.TRANCHE_MILESTONES))})"
    if number not in lifecycle.tranches_reached(project.state):
        return f"tranche {number} is released at {milestone}; project {project.id} is in {project.state}"
    tranche = session.execute(
        sa.select(Tranche).where(col(Tranche.project_id) == project.id, col(Tranche.number) == number)
    ).scalar_one()
    if tranche.released_at is not None:
        return f"tranche {number} of project {project.id} was already released on {tranche.released_at.isoformat()}"
    return None


#: States whose events may end a project without looking at released money (see `_forced_money`).
_BEFORE_SELECTION_OUTCOME = (lifecycle.State.APPLICATION, lifecycle.State.SELECTION)


def _forced_money(session: Session, project: Project, campaign: Campaign, dest: lifecycle.State) -> None:
    """Refuse a forced move that would break a money rule: forcing moves states, never the programme's money."""
    funds = funds_of(session, project)

    def refuse(rule: str, message: str) -> None:
        raise ForcedMoveRefusedError(message, rule=rule, event=lifecycle.EventName.FORCE, state=project.state)

    if dest in lifecycle.ENDS_WITHOUT_MONEY and funds.released_cents > 0:
        refuse(
            "released_money_is_recovered",
            f"{format_cents(funds.released_cents)} EUR were released to project {project.id}: "
            f"force it to {lifecycle.State.RECOVERY} instead, so that the money is claimed back",
        )
    # Before the selection's outcome, events end a project without asking about money (`lapse` from application,
    # `select group=C/D`): a project that received money would end there keeping it. So it is never moved back
    # before `needs_statement`; from there on every way out of the main line claims released money back.
    if dest in _BEFORE_SELECTION_OUTCOME and funds.released_cents > 0:
        refuse(
            "released_money_is_recovered",
            f"{format_cents(funds.released_cents)} EUR were released to project {project.id}: it cannot go back to "
            f"{dest}, where it could end without repaying them (force it to {lifecycle.State.RECOVERY} instead)",
        )
    if dest is lifecycle.State.RECOVERY and funds.balance_cents <= 0:
        refuse("recovery_has_a_balance", f"project {project.id} owes nothing back (balance 0.00 EUR)")
    if dest is lifecycle.State.RECOVERED and (funds.released_cents == 0 or funds.balance_cents != 0):
        refuse(
            "recovered_has_no_balance",
            f"project {project.id} is not recovered: balance {format_cents(funds.balance_cents)} EUR",
        )
    leaves_recovery = project.state in lifecycle.RECOVERY_STATES and dest not in lifecycle.RECOVERY_STATES
    if leaves_recovery and (funds.repaid_cents or funds.waived_cents):
        refuse("recovery_is_kept", f"repayments or waivers are recorded on project {project.id}")
    was_live = project.state not in lifecycle.ENDS_WITHOUT_MONEY or funds.released_cents > 0
    if not was_live and dest not in lifecycle.ENDS_WITHOUT_MONEY:
        conflicts = ProgrammeView(session, project).esms_conflicts()
        if conflicts:
            first = conflicts[0]
            refuse(
                "esms_not_funded_elsewhere",
                f"ESMS {first.finess} already belongs to project {first.project_id} of campaign {first.campaign_id}",
            )
    if dest in COMMITTED_STATES and project.state not in COMMITTED_STATES:
        committed = committed_cents(session, campaign.id, excluding=project.id)
        if committed + project.total_cents > campaign.envelope_cents:
            refuse(
                "fits_envelope",
                f"envelope {format_cents(campaign.envelope_cents)} EUR of {campaign.id}: "
                f"{format_cents(committed)} EUR committed, the project's {format_cents(project.total_cents)} EUR "
                "would exceed it",
            )


def append_audit(session: Session, record: AuditRecord, *, key: str | None) -> int:
    """Append `record` to its project's audit log, numbered and chained to the previous row; return its seq.

    The record's `seq` and `money` are ignored: the next number of the project's chain is taken, and the row
    covers the project's money as this transaction left it (call this after writing the money). The row is also
    linked into the chain across projects, under `key` (ESMS_AUDIT_KEY; None: plain SHA-256).
    """
    # Every writer takes the commitments lock before the chain head (PostgreSQL), so that the two locks are
    # always taken in one order: a sweep's batch holding the head never waits for a writer holding the other.
    lock_commitments(session)
    session.flush()  # a registration's tranches are still in the session: the snapshot reads the database
    connection = session.connection()
    previous_seq, previous_hash = last_hash(session, record.project_id)
    row = replace(record, seq=previous_seq + 1, money=money_snapshot(connection, record.project_id))
    values = {**row.values(), "prev_hash": previous_hash, "hash": row.hash(previous_hash)}
    values.update(chain_row(connection, values, key=key, at=row.recorded_at))
    # A Core INSERT built once, on the session's connection: no ORM object for a row never read back here.
    connection.execute(_AUDIT_INSERT, values)
    return row.seq


_AUDIT_INSERT = sa.insert(AuditEntry.__table__)  # type: ignore[attr-defined]


def _load(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise UnknownProjectError(str(project_id))
    return project


def load_grappe(session: Session, project: Project) -> Grappe:
    """Rebuild a project's grappe from its stored organisations and ESMS."""
    organisations = session.exec(
        select(Organisation).where(Organisation.project_id == project.id).order_by(col(Organisation.id))
    ).all()
    esms_rows = session.exec(select(Esms).where(Esms.project_id == project.id).order_by(col(Esms.id))).all()
    by_org: dict[int, list[EsmsRecord]] = {}
    for row in esms_rows:
        by_org.setdefault(row.organisation_id, []).append(
            EsmsRecord(finess=row.finess, name=row.name, category=row.category, small=row.small)
        )
    return Grappe(
        kind=project.kind,
        services_socles=tuple(s for s in project.services_socles.split(",") if s),
        organisations=tuple(
            OrganisationRecord(name=o.name, finess=o.finess, esms=tuple(by_org.get(o.id or 0, ())))
            for o in organisations
        ),
    )
