"""Database tables (SQLModel): projects, their organisations and ESMS, tranches and the append-only audit log.

Times are stored as UTC and come back timezone-aware (`UTCDateTime`); money is integer cents. The `version`
column of a project guards against lost updates between processes.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from notifications.models import OutboxMessage
from notifications.storage import utc_column
from states.text import FIELD_LIMITS

# The outbox table belongs to `notifications`; it is named here so that the schema's metadata holds every table.
__all__ = ["AuditChainHead", "AuditEntry", "Esms", "Lease", "Organisation", "OutboxMessage", "Project", "Tranche"]


class Project(SQLModel, table=True):
    """A funded (or applying) project of one grappe, and where it stands in the life cycle."""

    __tablename__ = "project"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=FIELD_LIMITS["name"])
    kind: str = Field(max_length=32)
    state: str = Field(index=True, max_length=32)
    selection_group: str | None = Field(default=None, max_length=1)
    services_socles: str = Field(default="", max_length=200)  # comma-separated
    owner_name: str = Field(max_length=FIELD_LIMITS["owner_name"])
    owner_email: str = Field(max_length=FIELD_LIMITS["owner_email"])
    esms_count: int
    small_esms_count: int
    total_cents: int = Field(sa_type=sa.BigInteger)
    needs_reference: str | None = Field(default=None, max_length=FIELD_LIMITS["needs_reference"])
    vendor: str | None = Field(default=None, max_length=FIELD_LIMITS["vendor"])
    configuration_invoice: str | None = Field(default=None, max_length=FIELD_LIMITS["configuration_invoice"])
    rollout_invoice: str | None = Field(default=None, max_length=FIELD_LIMITS["rollout_invoice"])
    withdrawal_reason: str | None = Field(default=None, max_length=FIELD_LIMITS["withdrawal_reason"])
    # Money owed back once in recovery: what the owner repaid and what the programme waived, out of what was
    # released (the tranches). The balance is released − repaid − waived.
    repaid_cents: int = Field(default=0, sa_type=sa.BigInteger)
    waived_cents: int = Field(default=0, sa_type=sa.BigInteger)
    # The project's own dates for deadlines, as a JSON object {"completion_deadline": "2023-06-30", …}: set by
    # its events (agreement signed, promotion, extension), they take precedence over the campaign's calendar.
    own_deadlines: str = Field(default="{}", max_length=2000)
    # The last failure of the deadline sweep on this project (cleared when it is swept again): the digest lists it.
    sweep_error: str | None = Field(default=None, max_length=300)
    sweep_error_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # When the owner's personal data were pseudonymised (RGPD, `esms purge`); None: not purged.
    purged_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())
    version: int = Field(default=1)
    # When the sweep next has work on this project (a reminder or a deadline); NULL: never. Indexed, so that a
    # sweep costs what is due, not what is stored.
    next_due_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True, index=True))


class Organisation(SQLModel, table=True):
    """An organisme gestionnaire of a project's grappe."""

    __tablename__ = "organisation"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=FIELD_LIMITS["name"])
    finess: str = Field(max_length=9)


class Esms(SQLModel, table=True):
    """An establishment or service run by an organisation of the grappe."""

    __tablename__ = "esms"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    finess: str = Field(max_length=9, index=True)  # one ESMS, one funding: looked up across projects
    name: str = Field(max_length=FIELD_LIMITS["name"])
    category: str = Field(max_length=FIELD_LIMITS["category"])
    small: bool = False


class Tranche(SQLModel, table=True):
    """One of a project's payments; `released_at` is set once, when its milestone is reached, and never undone."""

    __tablename__ = "tranche"
    __table_args__ = (sa.UniqueConstraint("project_id", "number", name="uq_tranche_project_number"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    number: int
    percent: str = Field(max_length=16)  # decimal string, exact
    amount_cents: int = Field(sa_type=sa.BigInteger)
    released_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True, index=True))


class AuditEntry(SQLModel, table=True):
    """One change of a project, appended and never rewritten: who, when (effective and wall clock) and why."""

    __tablename__ = "audit_entry"
    __table_args__ = (sa.UniqueConstraint("project_id", "seq", name="uq_audit_project_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    seq: int  # 1, 2, … within the project
    at: datetime = Field(sa_column=utc_column())
    recorded_at: datetime = Field(sa_column=utc_column())
    event: str = Field(max_length=64)
    source: str | None = Field(default=None, max_length=32)
    dest: str = Field(max_length=32)
    actor: str = Field(max_length=FIELD_LIMITS["actor"])
    reason: str | None = Field(default=None, max_length=FIELD_LIMITS["reason"])
    forced: bool = False
    approved_by: str | None = Field(
        default=None, max_length=FIELD_LIMITS["actor"]
    )  # the second person of a release (four eyes)
    params: str = Field(default="{}")  # JSON object of the event's key=value arguments
    prev_hash: str = Field(default="", max_length=64)  # the previous row's hash (zeros for the first row)
    hash: str = Field(default="", max_length=64)  # SHA-256 of this row's content and prev_hash (workflow.audit)
    # The project's money after the change (canonical JSON, covered by `hash`); NULL on rows older than 0005.
    money: str | None = Field(default=None)
    # The chain across projects (workflow.audit): this row's place among all rows, the link to the row appended
    # before it (its hash, project and seq) and its own link, HMAC-SHA256 under ESMS_AUDIT_KEY when one is set.
    global_seq: int | None = Field(default=None, index=True, unique=True)
    global_prev_hash: str | None = Field(default=None, max_length=64)
    global_prev_project_id: int | None = Field(default=None)
    global_prev_seq: int | None = Field(default=None)
    global_hash: str | None = Field(default=None, max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The one row (id 1) naming the last link of the audit chain across projects: its seal.

    A history cut at its end leaves this row pointing past the last audit row (`esms audit verify`).
    """

    __tablename__ = "audit_chain_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    row_count: int  # how many rows the chain holds
    hash: str = Field(max_length=64)  # the last row's global_hash
    project_id: int | None = Field(default=None)  # the last row's project and seq (no foreign key: kept if deleted)
    seq: int | None = Field(default=None)
    at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))  # the last row's recorded_at


class Lease(SQLModel, table=True):
    """Who runs the scheduler on this database, until when: one active daemon, the others stand by."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    expires_at: datetime = Field(sa_column=utc_column())
    renewed_at: datetime = Field(sa_column=utc_column())
