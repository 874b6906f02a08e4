"""Project files (`esms project add FILE.toml`): one grappe's application, read strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from states.grappe import PROJECT_KINDS, SERVICES_SOCLES, EsmsRecord, Grappe, OrganisationRecord, finess_problem
from workflow.tomlfile import Section, load_toml

# Deliberately plain: one @, no spaces or control characters (which could inject mail headers).
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f<>,;\"]+@[^@\s\x00-\x1f\x7f<>,;\"]+\.[A-Za-z]{2,}")
MAX_ORGANISATIONS = 1_000
MAX_ESMS = 10_000


@dataclass(frozen=True, kw_only=True)
class ProjectSpec:
    """A project as its file describes it."""

    name: str
    campaign: str
    owner_name: str
    owner_email: str
    grappe: Grappe


def load_project_file(path: Path) -> ProjectSpec:
    """Read a project file; structural faults, malformed or repeated FINESS numbers are bad input."""
    top = Section(str(path), load_toml(path))
    name = top.req_text("name", max_length=200)
    campaign = top.req_text("campaign", max_length=64)
    kind = top.req_text("kind", max_length=32)
    if kind not in PROJECT_KINDS:
        raise top.fail("kind", f"{kind!r} is not one of {', '.join(PROJECT_KINDS)}")
    socles = top.list_of("services_socles", str, required=False) or []
    for index, socle in enumerate(socles):
        if socle not in (*SERVICES_SOCLES, "ins"):
            raise top.fail(
                f"services_socles[{index}]", f"{socle!r} is not one of {', '.join((*SERVICES_SOCLES, 'ins'))}"
            )
    if len(set(socles)) != len(socles):
        raise top.fail("services_socles", "lists a service twice")
    owner = top.req_table("owner")
    owner_name = owner.req_text("name", max_length=200)
    raw_email = owner.raw("email")
    if not isinstance(raw_email, str):
        raise owner.fail("email", "must be a string")
    owner_email = raw_email.strip()
    # The pattern itself refuses spaces and control characters: a header cannot be smuggled in.
    if len(owner_email) > 254 or not EMAIL_PATTERN.fullmatch(owner_email):
        raise owner.fail("email", f"{owner_email!r} is not an e-mail address")
    owner.finish()
    organisations = tuple(_read_organisation(section) for section in top.tables("organisations"))
    if not organisations:
        raise top.fail("organisations", "at least one [[organisations]] is required")
    if len(organisations) > MAX_ORGANISATIONS:
        raise top.fail("organisations", f"more than {MAX_ORGANISATIONS} organisations")
    top.finish()
    grappe = Grappe(kind=kind, services_socles=tuple(socles), organisations=organisations)
    if grappe.esms_count > MAX_ESMS:
        raise top.fail("organisations", f"more than {MAX_ESMS} ESMS")
    _refuse_repeated_finess(top, grappe)
    return ProjectSpec(name=name, campaign=campaign, owner_name=owner_name, owner_email=owner_email, grappe=grappe)


def _read_finess(section: Section) -> str:
    finess = section.req_text("finess", max_length=32)
    problem = finess_problem(finess)
    if problem:
        raise section.fail("finess", problem)
    return finess


def _read_organisation(section: Section) -> OrganisationRecord:
    name = section.req_text("name", max_length=200)
    finess = _read_finess(section)
    esms = []
    for sub in section.tables("esms"):
        esms.append(
            EsmsRecord(
                finess=_read_finess(sub),
                name=sub.req_text("name", max_length=200),
                category=sub.req_text("category", max_length=64),
                small=sub.boolean("small", default=False),
            )
        )
        sub.finish()
    section.finish()
    return OrganisationRecord(name=name, finess=finess, esms=tuple(esms))


def _refuse_repeated_finess(top: Section, grappe: Grappe) -> None:
    seen: dict[str, str] = {}
    for o_index, organisation in enumerate(grappe.organisations):
        for e_index, esms in enumerate(organisation.esms):
            where = f"organisations[{o_index}].esms[{e_index}].finess"
            if esms.finess in seen:
                raise top.fail(where, f"ESMS {esms.finess} is already listed at {seen[esms.finess]}")
            seen[esms.finess] = where
    org_seen: set[str] = set()
    for o_index, organisation in enumerate(grappe.organisations):
        if organisation.finess in org_seen:
            raise top.fail(f"organisations[{o_index}].finess", f"organisation {organisation.finess} listed twice")
        org_seen.add(organisation.finess)
