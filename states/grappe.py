"""A grappe as registered: its organisations and ESMS, with the FINESS rules and the eligibility check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol


class ProjectKind(StrEnum):
    """What a project funds: a new DUI, or bringing an existing one into compliance."""

    ACQUISITION = "acquisition"
    COMPLIANCE = "compliance"


PROJECT_KINDS: Final[tuple[str, ...]] = tuple(ProjectKind)
#: The optional national services a DUI may integrate. The INS is mandatory for everyone, so it is not one of them.
SERVICES_SOCLES: Final[tuple[str, ...]] = ("mssante", "dmp", "e-prescription", "e-parcours")


class EligibilityRules(Protocol):
    """The minima a campaign sets for a grappe (`workflow.campaigns.Eligibility` is one)."""

    @property
    def min_organisations(self) -> int:
        """Least number of organismes gestionnaires."""

    @property
    def min_esms(self) -> int:
        """Least number of ESMS."""

    @property
    def min_services_socles(self) -> int:
        """Least number of services socles a compliance project targets."""

    @property
    def max_esms(self) -> int | None:
        """Most ESMS a grappe of this call may group (larger ones apply to the national call)."""

    @property
    def min_services_socles_acquisition(self) -> int:
        """Least number of services socles an acquisition project targets."""

    @property
    def categories(self) -> tuple[str, ...] | None:
        """The categories of establishment the call accepts (None: any)."""

    @property
    def departements(self) -> tuple[str, ...] | None:
        """The départements where most of a grappe's ESMS must be (None: anywhere)."""


class FundingRates(Protocol):
    """A campaign's rates (`workflow.campaigns.Funding` is one)."""

    def total_cents(self, kind: str, esms: int, small_esms: int) -> int:
        """The single financing of a grappe of this kind and size."""


#: 9 characters, the département first: two digits, or 2A/2B for Corsica.
FINESS_PATTERN = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{7}")
#: A département as campaigns name them: 2 digits, 2A/2B, or 3 digits overseas (971…976).
DEPARTEMENT_PATTERN = re.compile(r"[0-9]{2}|2A|2B|97[1-6]")


def finess_problem(finess: str) -> str | None:
    """Say what is wrong with a FINESS number, or None when it is well formed."""
    if len(finess) != 9:
        return f"FINESS {finess!r} must have 9 characters, not {len(finess)}"
    if not FINESS_PATTERN.fullmatch(finess):
        return f"FINESS {finess!r} must be a département (2 digits, 2A or 2B) then 7 digits"
    return None


@dataclass(frozen=True, kw_only=True)
class EsmsRecord:
    """One establishment or service of the grappe."""

    finess: str
    name: str
    category: str
    small: bool


@dataclass(frozen=True, kw_only=True)
class OrganisationRecord:
    """One organisme gestionnaire and the ESMS it runs within the project."""

    name: str
    finess: str
    esms: tuple[EsmsRecord, ...]


@dataclass(frozen=True, kw_only=True)
class Grappe:
    """What eligibility and funding depend on: kind, services socles and the organisations with their ESMS."""

    kind: str
    services_socles: tuple[str, ...]
    organisations: tuple[OrganisationRecord, ...]

    @property
    def esms(self) -> tuple[EsmsRecord, ...]:
        """Every ESMS of every organisation."""
        return tuple(e for o in self.organisations for e in o.esms)

    @property
    def esms_count(self) -> int:
        """How many ESMS the grappe groups."""
        return len(self.esms)

    @property
    def small_esms_count(self) -> int:
        """How many of them are small (eligible for equipment)."""
        return sum(1 for e in self.esms if e.small)

    def funding_total_cents(self, funding: FundingRates) -> int:
        """Return the single financing this grappe asks for at a campaign's rates."""
        return funding.total_cents(self.kind, self.esms_count, self.small_esms_count)


def eligibility_problems(grappe: Grappe, rules: EligibilityRules) -> list[str]:
    """List every eligibility rule of a campaign that `grappe` breaks (empty when eligible)."""
    problems = []
    if len(grappe.organisations) < rules.min_organisations:
        problems.append(f"{len(grappe.organisations)} organisations, at least {rules.min_organisations} required")
    if grappe.esms_count < rules.min_esms:
        problems.append(f"{grappe.esms_count} ESMS, at least {rules.min_esms} required")
    numbers = [o.finess for o in grappe.organisations] + [e.finess for e in grappe.esms]
    problems.extend(p for p in (finess_problem(n) for n in numbers) if p)
    seen: set[str] = set()
    for esms in grappe.esms:
        if esms.finess in seen:
            problems.append(f"ESMS {esms.finess} listed twice")
        seen.add(esms.finess)
    socles = {s for s in grappe.services_socles if s in SERVICES_SOCLES}  # the INS never counts
    least = rules.min_services_socles if grappe.kind == "compliance" else rules.min_services_socles_acquisition
    if len(socles) < least:
        problems.append(
            f"{grappe.kind} project targets {len(socles)} services socles "
            f"({', '.join(sorted(socles)) or 'none'}), at least {least} required"
        )
    if rules.max_esms is not None and grappe.esms_count > rules.max_esms:
        problems.append(
            f"{grappe.esms_count} ESMS, at most {rules.max_esms} in this call: "
            "a grappe of this size applies to the national call"
        )
    if rules.categories is not None:
        accepted = set(rules.categories)
        problems.extend(
            f"ESMS {e.finess}: category {e.category!r} is not accepted by this call ({', '.join(rules.categories)})"
            for e in grappe.esms
            if e.category not in accepted
        )
    if rules.departements is not None and grappe.esms:
        inside = sum(1 for e in grappe.esms if _departement_of(e.finess) in rules.departements)
        if inside * 2 <= grappe.esms_count:
            problems.append(
                f"{inside} of {grappe.esms_count} ESMS in this call's départements "
                f"({', '.join(rules.departements)}): more than half are required"
            )
    return problems


def _departement_of(finess: str) -> str:
    # Overseas FINESS numbers start with 97 then the third digit of the département (971…976 → "97" + "1"…).
    return finess[:3] if finess.startswith("97") else finess[:2]
