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


class FundingRates(Protocol):
    """A campaign's rates (`workflow.campaigns.Funding` is one)."""

    def total_cents(self, kind: str, esms: int, small_esms: int) -> int:
        """The single financing of a grappe of this kind and size."""


#: 9 characters, the département first: two digits, or 2A/2B for Corsica.
FINESS_PATTERN = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{7}")


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
    if grappe.kind == "compliance":
        # The INS is mandatory for everyone, so it never counts as one of the optional services socles.
        socles = {s for s in grappe.services_socles if s in SERVICES_SOCLES}
        if len(socles) < rules.min_services_socles:
            problems.append(
                f"compliance project targets {len(socles)} services socles "
                f"({', '.join(sorted(socles)) or 'none'}), at least {rules.min_services_socles} required"
            )
    return problems
