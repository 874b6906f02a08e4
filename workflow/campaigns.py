"""Campaigns: one TOML file each under `<config dir>/campaigns/`, validated by pydantic, kept as frozen records.

A campaign is a call for projects with its own calendar, rates, minima, tranches and usage criteria; nothing of
it is a constant in code. Calendar dates become instants here and only here, in the campaign's time zone. The
file's schema is at the end of the module.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from notifications.addresses import AddressError, mail_address
from states.errors import MalformedFileError, UnknownCampaignError
from states.grappe import DEPARTEMENT_PATTERN, SERVICES_SOCLES
from states.guards import CriterionUnit
from states.lifecycle import TRANCHE_MILESTONES
from states.money import decimal_places, parse_euros
from states.text import FIELD_LIMITS
from workflow.tomlfile import (
    StrictModel,
    amount,
    array,
    cents,
    integer,
    item,
    load_toml,
    malformed,
    problem,
    read_date,
    read_text,
    tables,
    text,
)

#: Calendar keys, in the order they must fall (when present).
CALENDAR_KEYS = ("opens", "application_deadline", "selection_deadline", "agreement_deadline")
#: Reminders go out at this local time of day unless the campaign says otherwise (`[reminders] send_at`).
DEFAULT_REMINDER_TIME = time(8, 0)


@dataclass(frozen=True, kw_only=True)
class Funding:
    """Rates in cents, the cap on funded ESMS, and the tranche percentages."""

    acquisition_per_esms_cents: int
    compliance_per_esms_cents: int
    equipment_per_small_esms_cents: int
    max_funded_esms: int
    tranches: tuple[Decimal, ...]

    def rate_cents(self, kind: str) -> int:
        """Return the per-ESMS rate for a project kind."""
        return self.acquisition_per_esms_cents if kind == "acquisition" else self.compliance_per_esms_cents

    def total_cents(self, kind: str, esms: int, small_esms: int) -> int:
        """Return the single financing: rate × funded ESMS + equipment × funded small ESMS."""
        return self.rate_cents(kind) * min(esms, self.max_funded_esms) + (
            self.equipment_per_small_esms_cents * min(small_esms, self.max_funded_esms)
        )


@dataclass(frozen=True, kw_only=True)
class Eligibility:
    """The rules a grappe must meet to submit: minima, and the later calls' limits (None: not enforced)."""

    min_organisations: int
    min_esms: int
    min_services_socles: int
    max_esms: int | None = None
    min_services_socles_acquisition: int = 0
    categories: tuple[str, ...] | None = None
    departements: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class UsageCriterion:
    """A usage indicator checked at the usage evaluation; met when the measured value is at least `min`."""

    id: str
    label: str
    min: Decimal
    unit: CriterionUnit = CriterionUnit.PERCENT


@dataclass(frozen=True, kw_only=True)
class Contact:
    """The ARS's contact for a campaign's owners."""

    name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True, kw_only=True)
class Campaign:
    """One call for projects, as read from its file."""

    id: str
    name: str
    region: str
    timezone: ZoneInfo
    envelope_cents: int
    calendar: dict[str, date]
    funding: Funding
    eligibility: Eligibility
    reminder_days: tuple[int, ...]
    reminder_time: time
    usage_criteria: tuple[UsageCriterion, ...]
    path: str
    completion_months: int | None = None  # the completion deadline: agreement signature + this many months
    promotion_grace_days: int = 0  # a promoted project's agreement deadline: at least promotion day + this
    retention_months: int | None = None  # personal data are purged this long after a project ends (None: kept)
    contact: Contact | None = None  # who owners write to at the ARS (Reply-To and the messages' closing lines)
    admin_emails: tuple[str, ...] = ()  # the programme team of this campaign: its daily digest goes there

    def deadline_end(self, key: str) -> datetime | None:
        """Return the first instant (UTC) after the deadline `key`, or None when the campaign sets none.

        A deadline covers its whole day in the campaign's time zone: 23:59:59 local time is still in time.
        """
        day = self.calendar.get(key)
        if day is None:
            return None
        return datetime.combine(day + timedelta(days=1), time(0), self.timezone).astimezone(UTC)

    def opening(self, key: str) -> datetime | None:
        """Return the instant (UTC) a dated step opens (00:00 local time that day), or None when not set."""
        day = self.calendar.get(key)
        if day is None:
            return None
        return datetime.combine(day, time(0), self.timezone).astimezone(UTC)

    def reminder_at(self, key: str, days_before: int) -> datetime | None:
        """Return the instant (UTC) of the reminder `days_before` days before deadline `key`, or None."""
        day = self.calendar.get(key)
        if day is None:
            return None
        return datetime.combine(day - timedelta(days=days_before), self.reminder_time, self.timezone).astimezone(UTC)

    def local_date(self, moment: datetime) -> date:
        """Return the calendar day of `moment` in the campaign's time zone."""
        return moment.astimezone(self.timezone).date()


def campaigns_dir(config_dir: Path) -> Path:
    """Return the folder campaign files are read from."""
    return config_dir / "campaigns"


def load_campaigns(config_dir: Path) -> dict[str, Campaign]:
    """Read every `campaigns/*.toml` under `config_dir`; any malformed file stops everything, naming itself."""
    folder = campaigns_dir(config_dir)
    if not folder.is_dir():
        raise MalformedFileError(str(folder), None, "campaign folder not found (set ESMS_CONFIG_DIR)")
    campaigns = {}
    for path in sorted(folder.glob("*.toml")):
        campaign = load_campaign(path)
        campaigns[campaign.id] = campaign
    return campaigns


def get_campaign(campaigns: dict[str, Campaign], campaign_id: str) -> Campaign:
    """Return the campaign `campaign_id` or raise `UnknownCampaignError`."""
    try:
        return campaigns[campaign_id]
    except KeyError:
        raise UnknownCampaignError(campaign_id, sorted(campaigns)) from None


def load_campaign(path: Path) -> Campaign:
    """Read one campaign file; its id must be its file name. Any fault is a one-line `MalformedFileError`."""
    data = load_toml(path)
    try:
        file = _CampaignFile.model_validate(data, context={"file_stem": path.stem})
    except ValidationError as error:
        raise malformed(path, error) from None
    reminders = file.reminders or _RemindersFile(days_before=[])
    return Campaign(
        id=file.id,
        name=file.name,
        region=file.region,
        timezone=ZoneInfo(file.timezone),
        envelope_cents=file.envelope,
        calendar=file.calendar.days(),
        funding=Funding(
            acquisition_per_esms_cents=file.funding.acquisition_per_esms,
            compliance_per_esms_cents=file.funding.compliance_per_esms,
            equipment_per_small_esms_cents=file.funding.equipment_per_small_esms,
            max_funded_esms=file.funding.max_funded_esms,
            tranches=tuple(file.funding.tranches),
        ),
        eligibility=Eligibility(
            min_organisations=file.eligibility.min_organisations,
            min_esms=file.eligibility.min_esms,
            min_services_socles=file.eligibility.min_services_socles,
            max_esms=file.eligibility.max_esms,
            min_services_socles_acquisition=file.eligibility.min_services_socles_acquisition,
            categories=None if file.eligibility.categories is None else tuple(file.eligibility.categories),
            departements=None if file.eligibility.departements is None else tuple(file.eligibility.departements),
        ),
        completion_months=file.calendar.completion_months,
        promotion_grace_days=file.calendar.promotion_grace_days,
        retention_months=file.retention.months_after_end if file.retention else None,
        contact=(
            Contact(name=file.contact.name, email=file.contact.email, phone=file.contact.phone)
            if file.contact
            else None
        ),
        admin_emails=tuple(file.admin_emails),
        reminder_days=tuple(sorted(reminders.days_before, reverse=True)),
        reminder_time=DEFAULT_REMINDER_TIME if reminders.send_at is None else reminders.send_at,
        usage_criteria=tuple(
            UsageCriterion(id=c.id, label=c.label, min=c.min, unit=c.unit) for c in file.usage_criteria
        ),
        path=str(path),
    )


# --- the file's schema: read in this order, and the first fault met is the one reported ------------------------


def _calendar_day(value: object) -> date:
    day = read_date(value)
    if not 2000 <= day.year <= 2100:
        raise problem(f"{day.isoformat()} is out of range (years 2000 to 2100)")
    return day


def _zone_name(value: object) -> str:
    name = read_text(value, 64)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder of the time-zone database
        raise problem(f"{name!r} is not a known time zone (e.g. Europe/Paris)") from None
    return name


def _percent(value: object) -> Decimal:
    try:
        percent = parse_euros(value)
    except ValueError as exc:
        raise problem(f"not a percentage: {exc}") from None
    if decimal_places(percent) > 4:  # so that the sum below is exact, never rounded to 100 at 28 digits
        raise problem(f"{percent} has more than 4 decimals")
    if not 0 < percent <= 100:
        raise problem(f"{percent} is not a percentage between 0 (excluded) and 100")
    return percent


def _non_empty_array(value: object) -> object:
    if not isinstance(value, list) or not value:
        raise problem("must be a non-empty array of percentages, e.g. [40, 40, 20]")
    return value


def _time_of_day(value: object) -> time:
    send_at = read_text(value, 5)
    try:
        return time.fromisoformat(send_at)
    except ValueError:
        raise problem(f'{send_at!r} is not a time of day such as "08:00"') from None


def _criterion_id(value: object) -> str:
    criterion_id = read_text(value, 64)
    if not criterion_id.replace("_", "").isalnum() or not criterion_id.isascii():
        raise problem(f"{criterion_id!r} must be letters, digits and underscores")
    return criterion_id


CalendarDay = Annotated[date, PlainValidator(_calendar_day)]
OptionalDay = Annotated[date | None, PlainValidator(_calendar_day)]
Rate = Annotated[int, cents(Decimal(10_000_000))]


class _CalendarFile(StrictModel):
    opens: CalendarDay
    application_deadline: OptionalDay = None
    selection_deadline: OptionalDay = None
    agreement_deadline: OptionalDay = None
    needs_statement_opens: OptionalDay = None
    # Not dates: how long a project has after its agreement, and after a promotion from the waiting list.
    completion_months: Annotated[int | None, integer(1, 120)] = None
    promotion_grace_days: Annotated[int, integer(0, 366)] = 0

    def days(self) -> dict[str, date]:
        """The dates set, by key."""
        keys = (*CALENDAR_KEYS, "needs_statement_opens")
        return {key: day for key in keys if (day := getattr(self, key)) is not None}

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        calendar = self.days()
        ordered = [key for key in CALENDAR_KEYS if key in calendar]
        for before, after in itertools.pairwise(ordered):
            if calendar[after] < calendar[before]:
                raise problem(
                    f"{calendar[after].isoformat()} falls before {before} ({calendar[before].isoformat()})", after
                )
        # The RESAH platform is not ordered against the deadlines: it may open before applications close.
        if self.needs_statement_opens is not None and self.needs_statement_opens < self.opens:
            raise problem("falls before the campaign opens", "needs_statement_opens")
        return self


class _FundingFile(StrictModel):
    acquisition_per_esms: Rate
    compliance_per_esms: Rate
    equipment_per_small_esms: Rate
    max_funded_esms: Annotated[int, integer(1, 100_000)]
    tranches: Annotated[list[Annotated[Decimal, PlainValidator(_percent)]], BeforeValidator(_non_empty_array)]

    @field_validator("tranches")
    @classmethod
    def _one_per_milestone_adding_up_to_100(cls, percents: list[Decimal]) -> list[Decimal]:
        if len(percents) != len(TRANCHE_MILESTONES):
            raise problem(f"has {len(percents)} tranches; the life cycle releases {len(TRANCHE_MILESTONES)}")
        if sum(percents, Decimal(0)) != 100:
            raise problem(f"add up to {sum(percents, Decimal(0))} %, not 100 %")
        return percents


class _EligibilityFile(StrictModel):
    min_organisations: Annotated[int, integer(1, 10_000)]
    min_esms: Annotated[int, integer(1, 100_000)]
    min_services_socles: Annotated[int, integer(0, len(SERVICES_SOCLES))]
    # The later calls' rules (seed 002): optional, never enforced when absent.
    max_esms: Annotated[int | None, integer(1, 100_000)] = None
    min_services_socles_acquisition: Annotated[int, integer(0, len(SERVICES_SOCLES))] = 0
    categories: Annotated[list[Annotated[str, text(64)]] | None, BeforeValidator(array)] = None
    departements: Annotated[list[Annotated[str, PlainValidator(_departement)]] | None, BeforeValidator(array)] = None

    @model_validator(mode="after")
    def _max_not_below_min(self) -> Self:
        if self.max_esms is not None and self.max_esms < self.min_esms:
            raise problem(f"{self.max_esms} is below min_esms ({self.min_esms})", "max_esms")
        return self


def _departement(value: object) -> str:
    code = read_text(value, 3)
    if not DEPARTEMENT_PATTERN.fullmatch(code):
        raise problem(f"{code!r} is not a département code (2 digits, 2A, 2B, or 3 digits overseas)")
    return code


def _campaign_email(value: object) -> str:
    address = read_text(value, FIELD_LIMITS["owner_email"])
    # The same rule as every address the engine sends to: a plain addr-spec, stored as it will be used.
    try:
        return mail_address(address)
    except AddressError as error:
        raise problem(f"{address!r} is not an e-mail address ({error})") from None


CampaignEmail = Annotated[str, PlainValidator(_campaign_email)]


class _ContactFile(StrictModel):
    name: Annotated[str, text(FIELD_LIMITS["name"])]
    email: CampaignEmail
    phone: Annotated[str | None, text(32)] = None


class _RetentionFile(StrictModel):
    months_after_end: Annotated[int, integer(1, 1200)]


class _RemindersFile(StrictModel):
    days_before: Annotated[list[Annotated[int, item(int)]], BeforeValidator(array)]
    send_at: Annotated[time | None, PlainValidator(_time_of_day)] = None

    @field_validator("days_before")
    @classmethod
    def _distinct_days_within_a_year(cls, days: list[int]) -> list[int]:
        for index, day in enumerate(days):
            if not 1 <= day <= 366:
                raise problem(f"{day} is not between 1 and 366 days", index)
        if len(set(days)) != len(days):
            raise problem("lists a day twice")
        return days


class _CriterionFile(StrictModel):
    id: Annotated[str, PlainValidator(_criterion_id)]
    min: Annotated[Decimal, amount(Decimal(1_000_000_000))]
    label: Annotated[str, text()]
    unit: Annotated[CriterionUnit, PlainValidator(_criterion_unit)] = CriterionUnit.PERCENT

    @model_validator(mode="after")
    def _min_within_unit(self) -> _CriterionFile:
        if self.unit is CriterionUnit.PERCENT and self.min > 100:
            raise ValueError(f'min {self.min} is not a percentage (0 to 100); set unit = "count" for a count')
        return self


def _criterion_unit(value: object) -> CriterionUnit:
    units = ", ".join(f'"{u}"' for u in CriterionUnit)
    if not isinstance(value, str) or value not in tuple(CriterionUnit):
        raise ValueError(f"{value!r} is not one of {units}")
    return CriterionUnit(value)


class _CampaignFile(StrictModel):
    id: Annotated[str, text(64)]
    name: Annotated[str, text()]
    region: Annotated[str, text()]
    timezone: Annotated[str, PlainValidator(_zone_name)]
    envelope: Annotated[int, cents()]
    calendar: _CalendarFile
    funding: _FundingFile
    eligibility: _EligibilityFile
    reminders: _RemindersFile | None = None
    retention: _RetentionFile | None = None
    contact: _ContactFile | None = None
    admin_emails: Annotated[list[CampaignEmail], BeforeValidator(array)] = Field(default_factory=list)
    usage_criteria: Annotated[list[_CriterionFile], BeforeValidator(tables)] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _named_after_its_file(cls, campaign_id: str, info: ValidationInfo) -> str:
        stem = (info.context or {}).get("file_stem")
        if stem is not None and campaign_id != stem:
            raise problem(f"{campaign_id!r} differs from the file name {stem!r}")
        return campaign_id

    @field_validator("usage_criteria")
    @classmethod
    def _distinct_ids(cls, criteria: list[_CriterionFile]) -> list[_CriterionFile]:
        for index, criterion in enumerate(criteria):
            if any(other.id == criterion.id for other in criteria[:index]):
                raise problem(f"{criterion.id!r} is declared twice", index, "id")
        return criteria
