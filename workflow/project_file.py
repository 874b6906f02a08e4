"""Project files (`esms project add FILE.toml`): one grappe's application, validated by a pydantic schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Self

from pydantic import BeforeValidator, Field, PlainValidator, ValidationError, field_validator, model_validator

from notifications.addresses import AddressError, mail_address
from states.grappe import PROJECT_KINDS, SERVICES_SOCLES, EsmsRecord, Grappe, OrganisationRecord, finess_problem
from states.text import FIELD_LIMITS
from workflow.tomlfile import (
    StrictModel,
    array,
    item,
    load_toml,
    malformed,
    problem,
    read_boolean,
    read_text,
    tables,
    text,
)

MAX_ORGANISATIONS = 1_000
MAX_ESMS = 10_000
#: The INS is mandatory for everyone: a file may list it, though it never counts as an optional socle.
ACCEPTED_SOCLES = (*SERVICES_SOCLES, "ins")


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
    data = load_toml(path)
    try:
        file = _ProjectFile.model_validate(data)
    except ValidationError as error:
        raise malformed(path, error) from None
    organisations = tuple(
        OrganisationRecord(
            name=organisation.name,
            finess=organisation.finess,
            esms=tuple(
                EsmsRecord(finess=esms.finess, name=esms.name, category=esms.category, small=esms.small)
                for esms in organisation.esms
            ),
        )
        for organisation in file.organisations
    )
    grappe = Grappe(kind=file.kind, services_socles=tuple(file.services_socles), organisations=organisations)
    return ProjectSpec(
        name=file.name, campaign=file.campaign, owner_name=file.owner.name, owner_email=file.owner.email, grappe=grappe
    )


# --- the file's schema: read in this order, and the first fault met is the one reported ------------------------


def _finess(value: object) -> str:
    finess = read_text(value, 32)
    fault = finess_problem(finess)
    if fault:
        raise problem(fault)
    return finess


def _kind(value: object) -> str:
    kind = read_text(value, 32)
    if kind not in PROJECT_KINDS:
        raise problem(f"{kind!r} is not one of {', '.join(PROJECT_KINDS)}")
    return kind


def _email(value: object) -> str:
    if not isinstance(value, str):
        raise problem("must be a string")
    email = value.strip()
    # email-validator: a plain addr-spec, no comment, group, display name, control or format character; stored
    # normalised, since what is stored is exactly what the relay puts in RCPT TO and To.
    try:
        return mail_address(email)
    except AddressError as error:
        raise problem(f"{email!r} is not an e-mail address ({error})") from None


Finess = Annotated[str, PlainValidator(_finess)]
Name = Annotated[str, text(FIELD_LIMITS["name"])]


class _EsmsFile(StrictModel):
    finess: Finess
    name: Name
    category: Annotated[str, text(FIELD_LIMITS["category"])]
    small: Annotated[bool, PlainValidator(read_boolean)] = False


class _OrganisationFile(StrictModel):
    name: Name
    finess: Finess
    esms: Annotated[list[_EsmsFile], BeforeValidator(tables)]


class _OwnerFile(StrictModel):
    name: Name
    email: Annotated[str, PlainValidator(_email)]


class _ProjectFile(StrictModel):
    name: Name
    campaign: Annotated[str, text(64)]
    kind: Annotated[str, PlainValidator(_kind)]
    services_socles: Annotated[list[Annotated[str, item(str)]], BeforeValidator(array)] = Field(default_factory=list)
    owner: _OwnerFile
    organisations: Annotated[list[_OrganisationFile], BeforeValidator(tables)]

    @field_validator("services_socles")
    @classmethod
    def _known_socles_once_each(cls, socles: list[str]) -> list[str]:
        for index, socle in enumerate(socles):
            if socle not in ACCEPTED_SOCLES:
                raise problem(f"{socle!r} is not one of {', '.join(ACCEPTED_SOCLES)}", index)
        if len(set(socles)) != len(socles):
            raise problem("lists a service twice")
        return socles

    @field_validator("organisations")
    @classmethod
    def _some_organisations(cls, organisations: list[_OrganisationFile]) -> list[_OrganisationFile]:
        if not organisations:
            raise problem("at least one [[organisations]] is required")
        if len(organisations) > MAX_ORGANISATIONS:
            raise problem(f"more than {MAX_ORGANISATIONS} organisations")
        return organisations

    @model_validator(mode="after")
    def _each_finess_once(self) -> Self:
        # Checked once the whole file is well formed, unknown keys included, as the grappe's own rules.
        if sum(len(organisation.esms) for organisation in self.organisations) > MAX_ESMS:
            raise problem(f"more than {MAX_ESMS} ESMS", "organisations")
        seen: dict[str, str] = {}
        for o_index, organisation in enumerate(self.organisations):
            for e_index, esms in enumerate(organisation.esms):
                where = f"organisations[{o_index}].esms[{e_index}].finess"
                if esms.finess in seen:
                    place = ("organisations", o_index, "esms", e_index, "finess")
                    raise problem(f"ESMS {esms.finess} is already listed at {seen[esms.finess]}", *place)
                seen[esms.finess] = where
        org_seen: set[str] = set()
        for o_index, organisation in enumerate(self.organisations):
            if organisation.finess in org_seen:
                raise problem(f"organisation {organisation.finess} listed twice", "organisations", o_index, "finess")
            org_seen.add(organisation.finess)
        return self
