"""Amendments (*avenants*): a project's owner, organisations, ESMS and services socles replaced by a project file.

What may change depends on how far the project has come:
- in `application` and `selection`, anything: eligibility is checked again at `submit`;
- from `needs_statement` to `agreement` (and on the waiting list), the grappe must stay eligible now, and a
  larger total must still fit the campaign's envelope;
- from `configuration` on, money has been promised to named ESMS: only ESMS and organisations may leave and the
  owner change; the total may go down, never below what was already released, and the pending tranches are
  recomputed so that released + pending is the new total, to the cent;
- an ended project (or one owing money back) is not amended.
The one-ESMS-one-funding rule holds for every ESMS the file adds. Everything is written in one transaction
under the project's version guard, like any change of `workflow.engine`: the grappe, the project's figures, the
pending tranches, an `amend` audit row and the owners' e-mails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from notifications.outbox import enqueue
from notifications.render import render
from states import lifecycle
from states.errors import (
    AmendmentRefusedError,
    ConflictError,
    EnvelopeExceededError,
    EsmsAlreadyFundedError,
    IneligibleError,
    InvalidArgumentError,
)
from states.grappe import Grappe, eligibility_problems
from states.money import format_cents
from workflow.audit import AuditRecord
from workflow.campaigns import Campaign, get_campaign
from workflow.change import Change
from workflow.db import transaction
from workflow.engine import (
    Workflow,
    _load,
    append_audit,
    checked_actor,
    checked_reason,
    load_grappe,
    refuse_going_back,
)
from workflow.messages import project_context, reply_to
from workflow.models import Esms, Organisation, Project, Tranche
from workflow.programme import COMMITTED_STATES, committed_cents, esms_held, lock_commitments
from workflow.project_file import ProjectSpec

S = lifecycle.State
#: Any change: eligibility is checked at `submit`, as for any application.
FREE_STATES: Final = (S.APPLICATION, S.SELECTION)
#: Selected but no money released yet: eligible now, and a larger total fits the envelope.
CHECKED_STATES: Final = (S.NEEDS_STATEMENT, S.VENDOR_CONTRACT, S.AGREEMENT, S.WAITLISTED)
#: Money was promised to named ESMS: removals and a new owner only.
REMOVAL_STATES: Final = (S.CONFIGURATION, S.ROLLOUT, S.USAGE_EVALUATION)
#: Every other state has ended, or owes money back (`recovery`).
AMENDABLE_STATES: Final = (*FREE_STATES, *CHECKED_STATES, *REMOVAL_STATES)

#: The idempotency keys' template part: the owner told, and the previous owner when the e-mail changed.
OWNER_KEY: Final = lifecycle.Template.PROJECT_AMENDED.value
PREVIOUS_OWNER_KEY: Final = f"{OWNER_KEY}_previous_owner"


def amendment_message_keys(project_id: int, seq: int, params: dict[str, Any]) -> tuple[str, ...]:
    """The outbox keys of the e-mails of the `amend` audit row `seq` (`params`: its recorded parameters)."""
    templates = [OWNER_KEY] + ([PREVIOUS_OWNER_KEY] if params.get("previous_owner_told") == "true" else [])
    return tuple(
        lifecycle.message_key(
            lifecycle.MessageKey.PER_CHANGE_TEMPLATE,
            project_id,
            event=lifecycle.EventName.AMEND,
            seq=seq,
            template=template,
        )
        for template in templates
    )


@dataclass(frozen=True, kw_only=True)
class _Money:
    """The project's money before and after the amendment."""

    old_total_cents: int
    new_total_cents: int
    released_cents: int
    pending: dict[int, int]  # tranche id → its new amount


def amend(workflow: Workflow, project_id: int, spec: ProjectSpec, reason: str, actor: str) -> Change:
    """Replace the owner and grappe of a project with those of `spec`, under the rules of its state."""
    actor = checked_actor(actor)
    reason = checked_reason(reason, command="amend")
    with transaction(workflow.engine) as session:
        lock_commitments(session)
        project = _load(session, project_id)
        refuse_going_back(project, workflow.clock.now())
        campaign = get_campaign(workflow.campaigns, project.campaign_id)
        _check_same_call(project, spec)
        old = load_grappe(session, project)
        _check_allowed(session, project, old, spec)
        money = _money(session, project, campaign, spec.grappe)
        return _write(workflow, session, project, campaign, spec, money, reason, actor, old.esms_count)


def _refuse(project: Project, rule: str, message: str) -> AmendmentRefusedError:
    return AmendmentRefusedError(message, rule=rule, event=lifecycle.EventName.AMEND, state=project.state)


def _check_same_call(project: Project, spec: ProjectSpec) -> None:
    """An amendment changes a grappe, not the call it applied to nor its kind of project (bad input)."""
    if spec.campaign != project.campaign_id:
        raise InvalidArgumentError(
            f"amend: the file's campaign {spec.campaign!r} is not project {project.id}'s ({project.campaign_id})"
        )
    if spec.grappe.kind != project.kind:
        raise InvalidArgumentError(
            f"amend: the file's kind {spec.grappe.kind!r} is not project {project.id}'s ({project.kind})"
        )


def _check_allowed(session: Session, project: Project, old: Grappe, spec: ProjectSpec) -> None:
    """Refuse what the project's state does not allow, an ESMS funded elsewhere, an ineligible grappe."""
    state = project.state
    if state not in AMENDABLE_STATES:
        raise _refuse(project, "amendable_state", f"project {project.id} is in {state}: it can no longer be amended")
    new = spec.grappe
    same_owner = (spec.owner_name, spec.owner_email) == (project.owner_name, project.owner_email)
    if same_owner and _same_grappe(old, new):
        raise InvalidArgumentError(f"amend: the file changes nothing in project {project.id}")
    added_esms = sorted({e.finess for e in new.esms} - {e.finess for e in old.esms})
    if state in REMOVAL_STATES:
        added_organisations = sorted({o.finess for o in new.organisations} - {o.finess for o in old.organisations})
        additions = [f"ESMS {', '.join(added_esms)}"] if added_esms else []
        additions += [f"organisations {', '.join(added_organisations)}"] if added_organisations else []
        if additions:
            raise _refuse(
                project,
                "removals_only",
                f"project {project.id} is in {state}: ESMS and organisations may only leave, "
                f"the file adds {' and '.join(additions)}",
            )
        if set(new.services_socles) != set(old.services_socles):
            raise _refuse(
                project,
                "removals_only",
                f"project {project.id} is in {state}: its services socles cannot change "
                f"({', '.join(old.services_socles) or 'none'} -> {', '.join(new.services_socles) or 'none'})",
            )
    conflicts = esms_held(session, added_esms, excluding=project.id)
    if conflicts:
        first = conflicts[0]
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise EsmsAlreadyFundedError(
            f"ESMS {first.finess} already belongs to project {first.project_id} of campaign {first.campaign_id}{more}",
            rule="esms_not_funded_elsewhere",
            event=lifecycle.EventName.AMEND,
            state=state,
        )


def _same_grappe(old: Grappe, new: Grappe) -> bool:
    return set(old.services_socles) == set(new.services_socles) and old.organisations == new.organisations


def _money(session: Session, project: Project, campaign: Campaign, grappe: Grappe) -> _Money:
    """The new total and pending tranches; refuse an ineligible grappe, a total over the envelope or released."""
    state = project.state
    if state in CHECKED_STATES:
        problems = eligibility_problems(grappe, campaign.eligibility)
        if problems:
            raise IneligibleError(
                "not eligible: " + "; ".join(problems), rule="eligible", event=lifecycle.EventName.AMEND, state=state
            )
    new_total = grappe.funding_total_cents(campaign.funding)
    if state in REMOVAL_STATES and new_total > project.total_cents:
        raise _refuse(
            project,
            "total_may_only_go_down",
            f"project {project.id} is in {state}: its total may only go down, not from "
            f"{format_cents(project.total_cents)} to {format_cents(new_total)} EUR",
        )
    # A smaller total frees part of the envelope: only a larger one must fit what the others commit.
    if state in COMMITTED_STATES and new_total > project.total_cents:
        committed = committed_cents(session, campaign.id, excluding=project.id)
        if committed + new_total > campaign.envelope_cents:
            raise EnvelopeExceededError(
                f"envelope {format_cents(campaign.envelope_cents)} EUR of {campaign.id}: "
                f"{format_cents(committed)} EUR committed, the project's new {format_cents(new_total)} EUR "
                "would exceed it",
                rule="fits_envelope",
                event=lifecycle.EventName.AMEND,
                state=state,
            )
    tranches = session.exec(select(Tranche).where(Tranche.project_id == project.id).order_by(col(Tranche.number))).all()
    released = sum(t.amount_cents for t in tranches if t.released_at is not None)
    if released > new_total:
        raise _refuse(
            project,
            "released_within_total",
            f"{format_cents(released)} EUR were already released to project {project.id}, "
            f"more than its new total of {format_cents(new_total)} EUR",
        )
    pending = [t for t in tranches if t.released_at is None]
    amounts = split_remainder(new_total - released, [Fraction(t.percent) for t in pending])
    return _Money(
        old_total_cents=project.total_cents,
        new_total_cents=new_total,
        released_cents=released,
        pending={t.id or 0: amount for t, amount in zip(pending, amounts, strict=True)},
    )


def split_remainder(cents: int, percents: list[Fraction]) -> list[int]:
    """Split `cents` among pending tranches in proportion to their percentages, as `states.money.split_tranches`.

    Each share but the last is rounded down to the cent and the last takes the remainder, so the shares add up
    to `cents` exactly. Exact fractions: a share of 40 % out of a pending 60 % is two thirds, not 0.6666….
    """
    if not percents:
        if cents:
            raise ValueError(f"{cents} cents to split but no pending tranche")
        return []
    whole = sum(percents, Fraction(0))
    shares = [int(cents * p / whole) for p in percents[:-1]]  # int() rounds down: every share is ≥ 0
    return [*shares, cents - sum(shares)]


def _write(
    workflow: Workflow,
    session: Session,
    project: Project,
    campaign: Campaign,
    spec: ProjectSpec,
    money: _Money,
    reason: str,
    actor: str,
    old_esms_count: int,
) -> Change:
    now, wall = workflow.clock.now(), workflow.clock.wall()
    assert project.id is not None
    grappe = spec.grappe
    # The version guard makes a concurrent change lose cleanly, as in `Workflow._write`.
    updated = session.execute(
        sa.update(Project)
        .execution_options(synchronize_session=False)
        .where(col(Project.id) == project.id, col(Project.version) == project.version)
        .values(
            owner_name=spec.owner_name,
            owner_email=spec.owner_email,
            services_socles=",".join(grappe.services_socles),
            esms_count=grappe.esms_count,
            small_esms_count=grappe.small_esms_count,
            total_cents=money.new_total_cents,
            updated_at=now,
            version=project.version + 1,
        )
    )
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            f"project {project.id} was changed by another process since it was read; nothing was done, retry"
        )
    _replace_grappe(session, project.id, grappe)
    for tranche_id, amount in money.pending.items():
        # `released_at IS NULL`: a released tranche is never changed, whatever happens around it.
        result = session.execute(
            sa.update(Tranche)
            .execution_options(synchronize_session=False)
            .where(col(Tranche.id) == tranche_id, col(Tranche.released_at).is_(None))
            .values(amount_cents=amount)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(f"a tranche of project {project.id} was released concurrently; nothing was done")
    previous_told = spec.owner_email.casefold() != project.owner_email.casefold()
    params = {
        "old_total_eur": format_cents(money.old_total_cents),
        "new_total_eur": format_cents(money.new_total_cents),
        "old_esms_count": str(old_esms_count),
        "new_esms_count": str(grappe.esms_count),
        "previous_owner_told": "true" if previous_told else "false",
    }
    seq = append_audit(
        session,
        AuditRecord(
            project_id=project.id,
            seq=0,
            at=now,
            recorded_at=wall,
            event=lifecycle.EventName.AMEND,
            source=project.state,
            dest=project.state,
            actor=actor,
            reason=reason,
            forced=False,
            params=json.dumps(params, ensure_ascii=False, sort_keys=True),
        ),
        key=workflow.audit_key,
    )
    context = project_context(project, campaign)
    context["project"].update(
        esms_count=grappe.esms_count,
        small_esms_count=grappe.small_esms_count,
        total_cents=money.new_total_cents,
        owner_name=spec.owner_name,
    )
    context["amendment"] = {
        "old_esms_count": old_esms_count,
        "new_esms_count": grappe.esms_count,
        "old_total_cents": money.old_total_cents,
        "new_total_cents": money.new_total_cents,
        "released_cents": money.released_cents,
        "owner_changed": (spec.owner_name, spec.owner_email) != (project.owner_name, project.owner_email),
        "previous_owner_name": project.owner_name,
    }
    recipients = [(spec.owner_email, False)] + ([(project.owner_email, True)] if previous_told else [])
    keys = amendment_message_keys(project.id, seq, params)
    for (email, previous), key in zip(recipients, keys, strict=True):
        enqueue(
            session,
            key=key,
            project_id=project.id,
            template=lifecycle.Template.PROJECT_AMENDED,
            recipients=[email],
            rendered=render(lifecycle.Template.PROJECT_AMENDED, {**context, "previous_owner": previous}),
            now=now,
            reply_to=reply_to(campaign),
        )
    return Change(
        project_id=project.id,
        event=lifecycle.EventName.AMEND,
        source=project.state,
        dest=project.state,
        at=now,
        actor=actor,
        reason=reason,
        seq=seq,
    )


def _replace_grappe(session: Session, project_id: int, grappe: Grappe) -> None:
    """Delete the project's organisations and ESMS and insert the file's, as a registration does."""
    session.execute(sa.delete(Esms).where(col(Esms.project_id) == project_id))
    session.execute(sa.delete(Organisation).where(col(Organisation.project_id) == project_id))
    for org in grappe.organisations:
        organisation = Organisation(project_id=project_id, name=org.name, finess=org.finess)
        session.add(organisation)
        session.flush()
        assert organisation.id is not None
        session.add_all(
            Esms(
                project_id=project_id,
                organisation_id=organisation.id,
                finess=e.finess,
                name=e.name,
                category=e.category,
                small=e.small,
            )
            for e in org.esms
        )
    session.flush()
