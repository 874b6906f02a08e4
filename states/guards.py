"""The programme rules that guard events, by name.

Each guard takes the `GuardContext` of the event being fired and raises a `RuleRefusedError` subclass naming
the rule and the value that broke it; returning means the rule is met. A deadline the campaign does not set is
never enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from states.calendar import parse_day_param
from states.errors import (
    DeadlinePassedError,
    EnvelopeExceededError,
    EsmsAlreadyFundedError,
    IneligibleError,
    InvalidArgumentError,
    NotYetOpenError,
    RecoveryAmountError,
    UsageCriteriaNotMetError,
)
from states.grappe import EligibilityRules, Grappe, eligibility_problems
from states.lifecycle import DEADLINE_BY_STATE
from states.money import format_cents, parse_amount_param, parse_plain_decimal


class CriterionUnit(StrEnum):
    """What a usage criterion measures: a share of people (0 to 100) or a number of things (0 or more)."""

    PERCENT = "percent"
    COUNT = "count"


class Criterion(Protocol):
    """A usage criterion: its id, its unit and the least value that meets it."""

    @property
    def unit(self) -> CriterionUnit:
        """What it measures."""

    @property
    def id(self) -> str:
        """The criterion's id, the parameter name of `verify_usage`."""

    @property
    def min(self) -> Decimal:
        """The least measured value that meets it."""


class CampaignRules(Protocol):
    """What the rules read of a campaign (`workflow.campaigns.Campaign` is one): its calendar, minima, envelope."""

    @property
    def id(self) -> str:
        """The campaign's id."""

    @property
    def envelope_cents(self) -> int:
        """What its selections may commit at most."""

    @property
    def timezone(self) -> ZoneInfo:
        """The time zone its dates are whole days in."""

    @property
    def calendar(self) -> Mapping[str, date]:
        """Its dated steps, by key."""

    @property
    def eligibility(self) -> EligibilityRules:
        """The minima a grappe must meet."""

    @property
    def usage_criteria(self) -> Sequence[Criterion]:
        """The criteria checked at the usage evaluation."""

    def deadline_end(self, key: str) -> datetime | None:
        """The first instant after the whole day of deadline `key`, or None when not set."""

    def opening(self, key: str) -> datetime | None:
        """The first instant of the day `key`, or None when not set."""


@dataclass(frozen=True, kw_only=True)
class Funds:
    """A project's money as the rules see it, in cents."""

    total_cents: int = 0
    released_cents: int = 0
    repaid_cents: int = 0
    waived_cents: int = 0

    @property
    def balance_cents(self) -> int:
        """What the project still owes back, once in recovery: released less repaid and waived."""
        return self.released_cents - self.repaid_cents - self.waived_cents


@dataclass(frozen=True, kw_only=True)
class EsmsConflict:
    """An ESMS of this grappe that another live project already holds."""

    finess: str
    project_id: int
    campaign_id: str


class Programme(Protocol):
    """What the rules read across projects; the engine answers from the database, in the event's transaction."""

    def committed_cents(self, campaign_id: str) -> int:
        """What the campaign's other projects commit of its envelope."""

    def esms_conflicts(self) -> Sequence[EsmsConflict]:
        """The ESMS of this project's grappe that another live project holds."""


class _NoProgramme:
    """A programme with no other project (unit tests of guards that do not look across projects)."""

    def committed_cents(self, campaign_id: str) -> int:
        return 0

    def esms_conflicts(self) -> Sequence[EsmsConflict]:
        return ()


@dataclass(frozen=True, kw_only=True)
class GuardContext:
    """What a guard may look at: the event, the project's state, grappe and money, its campaign, the instant.

    `grappe`, `funds` and `programme` are read only by the guards that need them.
    """

    event: str
    state: str
    campaign: CampaignRules
    grappe: Callable[[], Grappe]
    now: datetime
    params: dict[str, str]
    funds: Callable[[], Funds] = Funds
    programme: Programme = field(default_factory=_NoProgramme)

    def local(self, moment: datetime) -> str:
        """Format an instant in the campaign's time zone, for messages."""
        return moment.astimezone(self.campaign.timezone).strftime("%Y-%m-%d %H:%M:%S %Z")


Guard = Callable[[GuardContext], None]


def on_or_before(deadline: str) -> Guard:
    """Build the guard "on or before the whole day of `deadline`" (inclusive, in the campaign's time zone)."""

    def guard(ctx: GuardContext) -> None:
        end = ctx.campaign.deadline_end(deadline)
        if end is not None and ctx.now >= end:
            day = ctx.campaign.calendar[deadline].isoformat()
            raise DeadlinePassedError(
                f"{deadline} {day} has passed (now {ctx.local(ctx.now)})",
                rule=f"on_or_before_{deadline}",
                event=ctx.event,
                state=ctx.state,
            )

    return guard


def not_before(opening: str, rule: str) -> Guard:
    """Build the guard "not before the day `opening`" (from 00:00 in the campaign's time zone)."""

    def guard(ctx: GuardContext) -> None:
        start = ctx.campaign.opening(opening)
        if start is not None and ctx.now < start:
            day = ctx.campaign.calendar[opening].isoformat()
            raise NotYetOpenError(
                f"{opening} is {day} (now {ctx.local(ctx.now)})", rule=rule, event=ctx.event, state=ctx.state
            )

    return guard


def deadline_passed(deadline: str) -> Guard:
    """Build the guard "the whole day of `deadline` is over" (for lapsing; never true when the date is not set)."""

    def guard(ctx: GuardContext) -> None:
        end = ctx.campaign.deadline_end(deadline)
        if end is None or ctx.now < end:
            when = ctx.campaign.calendar[deadline].isoformat() if end else "not set by the campaign"
            raise NotYetOpenError(
                f"{deadline} ({when}) has not passed (now {ctx.local(ctx.now)})",
                rule=f"{deadline}_passed",
                event=ctx.event,
                state=ctx.state,
            )

    return guard


def applications_closed(ctx: GuardContext) -> None:
    """Selection only starts once the application deadline has passed."""
    end = ctx.campaign.deadline_end("application_deadline")
    if end is not None and ctx.now < end:
        day = ctx.campaign.calendar["application_deadline"].isoformat()
        raise NotYetOpenError(
            f"applications are open until {day} included (now {ctx.local(ctx.now)})",
            rule="applications_closed",
            event=ctx.event,
            state=ctx.state,
        )


def eligible(ctx: GuardContext) -> None:
    """The grappe meets the campaign's minima, FINESS rules and services socles."""
    problems = eligibility_problems(ctx.grappe(), ctx.campaign.eligibility)
    if problems:
        raise IneligibleError("not eligible: " + "; ".join(problems), rule="eligible", event=ctx.event, state=ctx.state)


def usage_criteria_met(ctx: GuardContext) -> None:
    """Every usage criterion of the campaign is measured at or above its minimum."""
    known = {c.id for c in ctx.campaign.usage_criteria}
    unknown = sorted(set(ctx.params) - known)
    if unknown:
        raise InvalidArgumentError(
            f"verify_usage: unknown criterion {unknown[0]!r} (criteria of {ctx.campaign.id}: "
            f"{', '.join(sorted(known)) or 'none'})"
        )
    unmet = []
    for criterion in ctx.campaign.usage_criteria:
        raw = ctx.params.get(criterion.id)
        if raw is None:
            unmet.append(f"{criterion.id} not measured (min {criterion.min})")
            continue
        value = measured_value(criterion.id, raw, criterion.unit)
        if value < criterion.min:
            unmet.append(f"{criterion.id} = {value} < {criterion.min}")
    if unmet:
        raise UsageCriteriaNotMetError(
            "usage criteria not met: " + "; ".join(unmet),
            rule="usage_criteria_met",
            event=ctx.event,
            state=ctx.state,
        )


def measured_value(criterion: str, raw: str, unit: CriterionUnit = CriterionUnit.PERCENT) -> Decimal:
    """Read a measured usage value: a plain ASCII decimal within its unit's range; anything else is bad input.

    `850`, `1e3`, `٨٦` and `-1` are typing errors, not values under the threshold: they are refused as such.
    """
    value = parse_plain_decimal(raw)
    if value is None:
        raise InvalidArgumentError(f"verify_usage: {criterion}={raw!r} is not a number such as 86 or 62.5")
    if value < 0 or (unit is CriterionUnit.PERCENT and value > 100):
        limits = "from 0 to 100" if unit is CriterionUnit.PERCENT else "0 or more"
        raise InvalidArgumentError(f"verify_usage: {criterion}={raw!r} is out of range ({unit}: {limits})")
    return value


def esms_not_funded_elsewhere(ctx: GuardContext) -> None:
    """One ESMS, one funding: no ESMS of the grappe belongs to another live project, in any campaign."""
    conflicts = ctx.programme.esms_conflicts()
    if conflicts:
        first = conflicts[0]
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise EsmsAlreadyFundedError(
            f"ESMS {first.finess} already belongs to project {first.project_id} of campaign {first.campaign_id}{more}",
            rule="esms_not_funded_elsewhere",
            event=ctx.event,
            state=ctx.state,
        )


def fits_envelope(ctx: GuardContext) -> None:
    """The envelope is a limit: what the campaign commits, with this project, stays within it."""
    committed = ctx.programme.committed_cents(ctx.campaign.id)
    total = ctx.funds().total_cents
    if committed + total > ctx.campaign.envelope_cents:
        raise EnvelopeExceededError(
            f"envelope {format_cents(ctx.campaign.envelope_cents)} EUR of {ctx.campaign.id}: "
            f"{format_cents(committed)} EUR committed, the project's {format_cents(total)} EUR would exceed it",
            rule="fits_envelope",
            event=ctx.event,
            state=ctx.state,
        )


def amount_within_balance(ctx: GuardContext) -> None:
    """A repayment or a waiver is more than zero and at most what is still owed."""
    amount = parse_amount_param(ctx.event, "amount", ctx.params["amount"])
    balance = ctx.funds().balance_cents
    if not 0 < amount <= balance:
        raise RecoveryAmountError(
            f"amount {format_cents(amount)} EUR is not within the balance owed ({format_cents(balance)} EUR)",
            rule="amount_within_balance",
            event=ctx.event,
            state=ctx.state,
        )


def _amount(ctx: GuardContext) -> int:
    return parse_amount_param(ctx.event, "amount", ctx.params.get("amount", ""))


def extends_deadline(ctx: GuardContext) -> None:
    """An extension gives a later date than the one in force for the deadline the project's state waits on."""
    key = DEADLINE_BY_STATE[ctx.state]
    until = parse_day_param(ctx.event, "until", ctx.params["until"])
    current = ctx.campaign.calendar.get(key)
    if current is not None and until <= current:
        raise DeadlinePassedError(
            f"until={until.isoformat()} is not later than the {key} in force ({current.isoformat()})",
            rule="extends_deadline",
            event=ctx.event,
            state=ctx.state,
        )


Selector = Callable[[GuardContext], bool]

#: Facts that choose among the arrows of one event, without refusing anything.
SELECTORS: Final[dict[str, Selector]] = {
    "money_released": lambda ctx: ctx.funds().released_cents > 0,
    "nothing_released": lambda ctx: ctx.funds().released_cents == 0,
    "settles_balance": lambda ctx: _amount(ctx) == ctx.funds().balance_cents,
    "leaves_balance": lambda ctx: _amount(ctx) < ctx.funds().balance_cents,
}


GUARDS: Final[dict[str, Guard]] = {
    "call_is_open": not_before("opens", "call_is_open"),
    "on_or_before_application_deadline": on_or_before("application_deadline"),
    "applications_closed": applications_closed,
    "on_or_before_selection_deadline": on_or_before("selection_deadline"),
    "on_or_before_agreement_deadline": on_or_before("agreement_deadline"),
    "needs_statement_open": not_before("needs_statement_opens", "needs_statement_open"),
    "application_deadline_passed": deadline_passed("application_deadline"),
    "agreement_deadline_passed": deadline_passed("agreement_deadline"),
    "completion_deadline_passed": deadline_passed("completion_deadline"),
    "extends_deadline": extends_deadline,
    "eligible": eligible,
    "usage_criteria_met": usage_criteria_met,
    "esms_not_funded_elsewhere": esms_not_funded_elsewhere,
    "fits_envelope": fits_envelope,
    "amount_within_balance": amount_within_balance,
}
