"""The programme's money across projects: what a campaign commits of its envelope, and which ESMS are held.

Two rules auditors check are read here, in the transaction of the event they guard:
- *one ESMS, one funding*: an ESMS (its FINESS géographique) belongs to at most one live project; a project is
  live until it ends without money (`ENDS_WITHOUT_MONEY` with nothing released);
- *the envelope is a limit*: a project selected in group A or promoted commits its total; one that ended after
  money was released commits what it kept (released less repaid; a waiver is money spent).

On PostgreSQL the decisions that commit money take one transaction-scoped advisory lock, so that two selections
cannot both fit the last euros of an envelope; SQLite has a single writer anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col

from states import lifecycle
from states.guards import EsmsConflict, Funds
from workflow.models import Esms, Project, Tranche

#: States whose project commits its whole total: selected (group A or promoted) and not ended early.
COMMITTED_STATES = lifecycle.MAIN_LINE[lifecycle.MAIN_LINE.index(lifecycle.State.NEEDS_STATEMENT) :]
#: The key of the advisory lock that serialises commitment decisions (an arbitrary 64-bit constant).
COMMITMENT_LOCK = 0x45534D53  # "ESMS"
#: The longest a writer waits for the commitments lock before it reports a conflict.
LOCK_WAIT = "60s"

_RELEASED = (
    sa.select(col(Tranche.project_id), sa.func.sum(Tranche.amount_cents).label("released"))
    .where(col(Tranche.released_at).is_not(None))
    .group_by(col(Tranche.project_id))
    .subquery("released")
)
_released_cents = sa.func.coalesce(_RELEASED.c.released, 0)

#: What one project commits of its campaign's envelope, as SQL over `project` joined to `_RELEASED`.
committed_cents_sql = sa.case(
    (col(Project.state).in_(COMMITTED_STATES), col(Project.total_cents)),
    else_=_released_cents - col(Project.repaid_cents),
)
#: Whether a project still holds its ESMS.
is_live_sql = sa.or_(col(Project.state).not_in(lifecycle.ENDS_WITHOUT_MONEY), _released_cents > 0)


def lock_commitments(session: Session) -> None:
    """Serialise the decisions that commit money or ESMS, until this transaction ends (PostgreSQL).

    The lock is the schema's own (its data is), and a writer waits for it `LOCK_WAIT` at most: past that it gives
    up with a conflict (exit 3, retry) rather than hang behind a transaction that never ends.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"), {"key": COMMITMENT_LOCK}
        )
        session.execute(sa.text("SET LOCAL lock_timeout = 0"))


def committed_cents(session: Session, campaign_id: str, *, excluding: int | None = None) -> int:
    """What the campaign's projects commit of its envelope (all of them, or all but `excluding`)."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(committed_cents_sql), 0))
        .select_from(Project)
        .outerjoin(_RELEASED, _RELEASED.c.project_id == col(Project.id))
        .where(col(Project.campaign_id) == campaign_id)
    )
    if excluding is not None:
        query = query.where(col(Project.id) != excluding)
    return int(session.execute(query).scalar_one())


def esms_held(session: Session, finess: Iterable[str], *, excluding: int | None = None) -> list[EsmsConflict]:
    """The ESMS among `finess` that a live project (other than `excluding`) holds, in FINESS order."""
    wanted = sorted(set(finess))
    if not wanted:
        return []
    query = (
        sa.select(col(Esms.finess), col(Project.id), col(Project.campaign_id))
        .join(Project, col(Project.id) == col(Esms.project_id))
        .outerjoin(_RELEASED, _RELEASED.c.project_id == col(Project.id))
        .where(col(Esms.finess).in_(wanted), is_live_sql)
        .order_by(col(Esms.finess), col(Project.id))
    )
    if excluding is not None:
        query = query.where(col(Project.id) != excluding)
    return [
        EsmsConflict(finess=str(f), project_id=int(pid), campaign_id=str(cid))
        for f, pid, cid in session.execute(query).all()
    ]


def balance_in_recovery(session: Session, campaign_id: str) -> int:
    """What the campaign's projects in recovery still owe back."""
    owed = (
        sa.select(
            sa.func.coalesce(sa.func.sum(_released_cents - col(Project.repaid_cents) - col(Project.waived_cents)), 0)
        )
        .select_from(Project)
        .outerjoin(_RELEASED, _RELEASED.c.project_id == col(Project.id))
        .where(col(Project.campaign_id) == campaign_id, col(Project.state) == lifecycle.State.RECOVERY)
    )
    return int(session.execute(owed).scalar_one())


def funds_of(session: Session, project: Project) -> Funds:
    """The project's money as the rules see it."""
    released = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Tranche.amount_cents), 0)).where(
            col(Tranche.project_id) == project.id, col(Tranche.released_at).is_not(None)
        )
    ).scalar_one()
    return Funds(
        total_cents=project.total_cents,
        released_cents=int(released),
        repaid_cents=project.repaid_cents,
        waived_cents=project.waived_cents,
    )


class ProgrammeView:
    """What the rules read across projects for one project's event, in that event's transaction."""

    def __init__(self, session: Session, project: Project) -> None:
        self._session = session
        self._project = project

    def committed_cents(self, campaign_id: str) -> int:
        """What the campaign's other projects commit."""
        return committed_cents(self._session, campaign_id, excluding=self._project.id)

    def esms_conflicts(self) -> Sequence[EsmsConflict]:
        """The project's ESMS that another live project holds."""
        finess = self._session.execute(
            sa.select(col(Esms.finess)).where(col(Esms.project_id) == self._project.id)
        ).scalars()
        return esms_held(self._session, finess, excluding=self._project.id)
