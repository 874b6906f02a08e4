"""Campaigns: one TOML file each under `<config dir>/campaigns/`, read strictly into frozen records.

A campaign is a call for projects with its own calendar, rates, minima, tranches and usage criteria; nothing of
it is a constant in code. Calendar dates become instants here and only here, in the campaign's time zone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from states.errors import MalformedFileError, UnknownCampaignError
from states.grappe import SERVICES_SOCLES
from states.lifecycle import TRANCHE_MILESTONES
from states.money import decimal_places, parse_euros, to_cents
from workflow.tomlfile import Section, load_toml

#: Calendar keys, in the order they must fall (when present).
CALENDAR_KEYS = ("opens", "application_deadline", "selection_deadline", "agreement_deadline")
#: The RESAH platform's opening, which is not ordered against the others (it may open before applications close).
OPENING_KEYS = ("opens", "needs_statement_opens")
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
    """The minima a grappe must meet to submit."""

    min_organisations: int
    min_esms: int
    min_services_socles: int


@dataclass(frozen=True, kw_only=True)
class UsageCriterion:
    """A usage indicator checked at the usage evaluation; met when the measured value is at least `min`."""

    id: str
    label: str
    min: Decimal


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
    """Read one campaign file."""
    top = Section(str(path), load_toml(path))
    campaign_id = top.req_text("id", max_length=64)
    if campaign_id != path.stem:
        raise top.fail("id", f"{campaign_id!r} differs from the file name {path.stem!r}")
    name = top.req_text("name")
    region = top.req_text("region")
    zone_name = top.req_text("timezone", max_length=64)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder of the time-zone database
        raise top.fail("timezone", f"{zone_name!r} is not a known time zone (e.g. Europe/Paris)") from None
    envelope = top.amount("envelope")
    assert envelope is not None
    calendar = _read_calendar(top.req_table("calendar"))
    funding = _read_funding(top.req_table("funding"))
    eligibility = _read_eligibility(top.req_table("eligibility"))
    reminder_days, reminder_time = _read_reminders(top.table("reminders", required=False))
    criteria = _read_usage_criteria(top)
    top.finish()
    return Campaign(
        id=campaign_id,
        name=name,
        region=region,
        timezone=zone,
        envelope_cents=_cents(top, "envelope", envelope),
        calendar=calendar,
        funding=funding,
        eligibility=eligibility,
        reminder_days=reminder_days,
        reminder_time=reminder_time,
        usage_criteria=criteria,
        path=str(path),
    )


def _cents(section: Section, key: str, euros: Decimal) -> int:
    try:
        return to_cents(euros)
    except ValueError as exc:
        raise section.fail(key, str(exc)) from None


def _read_calendar(section: Section) -> dict[str, date]:
    calendar: dict[str, date] = {}
    for key in (*CALENDAR_KEYS, "needs_statement_opens"):
        day = section.date(key, required=key == "opens")
        if day is not None:
            if not 2000 <= day.year <= 2100:
                raise section.fail(key, f"{day.isoformat()} is out of range (years 2000 to 2100)")
            calendar[key] = day
    section.finish()
    ordered = [key for key in CALENDAR_KEYS if key in calendar]
    for before, after in itertools.pairwise(ordered):
        if calendar[after] < calendar[before]:
            raise section.fail(
                after, f"{calendar[after].isoformat()} falls before {before} ({calendar[before].isoformat()})"
            )
    if "needs_statement_opens" in calendar and calendar["needs_statement_opens"] < calendar["opens"]:
        raise section.fail("needs_statement_opens", "falls before the campaign opens")
    return calendar


def _read_funding(section: Section) -> Funding:
    rates = {}
    for key in ("acquisition_per_esms", "compliance_per_esms", "equipment_per_small_esms"):
        euros = section.amount(key, maximum=Decimal(10_000_000))
        assert euros is not None
        rates[key] = _cents(section, key, euros)
    max_funded = section.req_integer("max_funded_esms", minimum=1, maximum=100_000)
    raw = section.raw("tranches")
    if not isinstance(raw, list) or not raw:
        raise section.fail("tranches", "must be a non-empty array of percentages, e.g. [40, 40, 20]")
    percents = []
    for index, item in enumerate(raw):
        key = f"tranches[{index}]"
        try:
            percent = parse_euros(item)
        except ValueError as exc:
            raise section.fail(key, f"not a percentage: {exc}") from None
        if decimal_places(percent) > 4:  # so that the sum below is exact, never rounded to 100 at 28 digits
            raise section.fail(key, f"{percent} has more than 4 decimals")
        if not 0 < percent <= 100:
            raise section.fail(key, f"{percent} is not a percentage between 0 (excluded) and 100")
        percents.append(percent)
    if len(percents) != len(TRANCHE_MILESTONES):
        raise section.fail(
            "tranches", f"has {len(percents)} tranches; the life cycle releases {len(TRANCHE_MILESTONES)}"
        )
    if sum(percents, Decimal(0)) != 100:
        raise section.fail("tranches", f"add up to {sum(percents, Decimal(0))} %, not 100 %")
    section.finish()
    return Funding(
        acquisition_per_esms_cents=rates["acquisition_per_esms"],
        compliance_per_esms_cents=rates["compliance_per_esms"],
        equipment_per_small_esms_cents=rates["equipment_per_small_esms"],
        max_funded_esms=max_funded,
        tranches=tuple(percents),
    )


def _read_eligibility(section: Section) -> Eligibility:
    eligibility = Eligibility(
        min_organisations=section.req_integer("min_organisations", minimum=1, maximum=10_000),
        min_esms=section.req_integer("min_esms", minimum=1, maximum=100_000),
        min_services_socles=section.req_integer("min_services_socles", minimum=0, maximum=len(SERVICES_SOCLES)),
    )
    section.finish()
    return eligibility


def _read_reminders(section: Section | None) -> tuple[tuple[int, ...], time]:
    if section is None:
        return (), DEFAULT_REMINDER_TIME
    days = section.list_of("days_before", int)
    assert days is not None
    for index, day in enumerate(days):
        if not 1 <= day <= 366:
            raise section.fail(f"days_before[{index}]", f"{day} is not between 1 and 366 days")
    if len(set(days)) != len(days):
        raise section.fail("days_before", "lists a day twice")
    send_at = section.text("send_at", required=False, max_length=5)
    at = DEFAULT_REMINDER_TIME
    if send_at is not None:
        try:
            at = time.fromisoformat(send_at)
        except ValueError:
            raise section.fail("send_at", f'{send_at!r} is not a time of day such as "08:00"') from None
    section.finish()
    return tuple(sorted(days, reverse=True)), at


def _read_usage_criteria(top: Section) -> tuple[UsageCriterion, ...]:
    criteria: list[UsageCriterion] = []
    for section in top.tables("usage_criteria", required=False):
        criterion_id = section.req_text("id", max_length=64)
        if not criterion_id.replace("_", "").isalnum() or not criterion_id.isascii():
            raise section.fail("id", f"{criterion_id!r} must be letters, digits and underscores")
        if any(c.id == criterion_id for c in criteria):
            raise section.fail("id", f"{criterion_id!r} is declared twice")
        minimum = section.amount("min", maximum=Decimal(1_000_000_000))
        assert minimum is not None
        criteria.append(UsageCriterion(id=criterion_id, label=section.req_text("label"), min=minimum))
        section.finish()
    return tuple(criteria)
