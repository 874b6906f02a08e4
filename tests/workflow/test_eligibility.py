"""Eligibility of a grappe under a campaign, on both sides of each minimum, and the funding it asks for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from states.grappe import EsmsRecord, Grappe, OrganisationRecord, eligibility_problems
from workflow.campaigns import Campaign, load_campaign
from workflow.project_file import load_project_file

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
# hdf-2021: at least 3 organisations, 15 ESMS and (compliance) 2 services socles; 25 000 € per ESMS acquired,
# 10 000 € per ESMS brought into compliance, 20 000 € of equipment per small ESMS, at most 30 ESMS funded.
HDF = load_campaign(CONFIG_DIR / "campaigns" / "hdf-2021.toml")


def make_grappe(
    *,
    organisations: int = 3,
    esms: int = 15,
    small: int = 0,
    kind: str = "acquisition",
    socles: tuple[str, ...] = (),
) -> Grappe:
    """Spread `esms` ESMS (the first `small` small) over `organisations`, all with valid distinct FINESS."""
    records = [
        EsmsRecord(finess=f"59{1_000_000 + n:07d}", name=f"ESMS {n}", category="EHPAD", small=n < small)
        for n in range(esms)
    ]
    orgs = tuple(
        OrganisationRecord(name=f"Organisation {o}", finess=f"59{o:07d}", esms=tuple(records[o::organisations]))
        for o in range(organisations)
    )
    grappe = Grappe(kind=kind, services_socles=socles, organisations=orgs)
    assert grappe.esms_count == esms
    assert grappe.small_esms_count == small
    return grappe


def with_minima(campaign: Campaign, **minima: int) -> Campaign:
    return replace(campaign, eligibility=replace(campaign.eligibility, **minima))


# --- minima -------------------------------------------------------------------------------------------------


def test_grappe_at_every_minimum_is_eligible() -> None:
    assert eligibility_problems(make_grappe(organisations=3, esms=15), HDF.eligibility) == []


def test_two_organisations_are_one_too_few() -> None:
    problems = eligibility_problems(make_grappe(organisations=2, esms=15), HDF.eligibility)
    assert problems == ["2 organisations, at least 3 required"]


def test_fourteen_esms_are_one_too_few() -> None:
    problems = eligibility_problems(make_grappe(organisations=3, esms=14), HDF.eligibility)
    assert problems == ["14 ESMS, at least 15 required"]


def test_every_broken_minimum_is_listed() -> None:
    grappe = make_grappe(organisations=2, esms=14, kind="compliance", socles=("dmp",))
    problems = eligibility_problems(grappe, HDF.eligibility)
    assert len(problems) == 3
    assert problems[0] == "2 organisations, at least 3 required"
    assert problems[1] == "14 ESMS, at least 15 required"
    assert "1 services socles" in problems[2]


def test_minima_come_from_the_campaign_not_from_constants() -> None:
    lenient = with_minima(HDF, min_organisations=1, min_esms=2)
    assert eligibility_problems(make_grappe(organisations=1, esms=2), lenient.eligibility) == []
    strict = with_minima(HDF, min_organisations=4)
    assert eligibility_problems(make_grappe(organisations=3, esms=15), strict.eligibility) == [
        "3 organisations, at least 4 required"
    ]


def test_compliance_project_with_two_services_socles_is_eligible() -> None:
    grappe = make_grappe(kind="compliance", socles=("mssante", "dmp"))
    assert eligibility_problems(grappe, HDF.eligibility) == []


def test_compliance_project_with_one_service_socle_is_refused() -> None:
    grappe = make_grappe(kind="compliance", socles=("e-prescription",))
    problems = eligibility_problems(grappe, HDF.eligibility)
    assert len(problems) == 1
    assert "1 services socles (e-prescription), at least 2 required" in problems[0]


def test_ins_never_counts_as_a_service_socle() -> None:
    grappe = make_grappe(kind="compliance", socles=("ins", "dmp"))
    problems = eligibility_problems(grappe, HDF.eligibility)
    assert len(problems) == 1
    assert "1 services socles (dmp)" in problems[0]


def test_ins_alongside_two_services_socles_is_eligible() -> None:
    grappe = make_grappe(kind="compliance", socles=("ins", "dmp", "e-parcours"))
    assert eligibility_problems(grappe, HDF.eligibility) == []


def test_compliance_project_without_socles_says_none() -> None:
    problems = eligibility_problems(make_grappe(kind="compliance", socles=()), HDF.eligibility)
    assert len(problems) == 1
    assert "0 services socles (none)" in problems[0]


@pytest.mark.parametrize("socles", [(), ("ins",), ("dmp",)])
def test_acquisition_project_needs_no_service_socle(socles: tuple[str, ...]) -> None:
    assert eligibility_problems(make_grappe(kind="acquisition", socles=socles), HDF.eligibility) == []


def test_malformed_and_repeated_finess_built_in_code_are_reported() -> None:
    grappe = make_grappe()
    first, second = grappe.organisations[0], grappe.organisations[1]
    bad = replace(first, finess="2C0000000", esms=(*first.esms, second.esms[0]))
    problems = eligibility_problems(replace(grappe, organisations=(bad, *grappe.organisations[1:])), HDF.eligibility)
    assert any("2C0000000" in p for p in problems)
    assert f"ESMS {second.esms[0].finess} listed twice" in problems


def test_sample_grappe_is_eligible_for_hdf_2021() -> None:
    spec = load_project_file(CONFIG_DIR / "projects" / "grappe-hainaut.toml")
    assert eligibility_problems(spec.grappe, HDF.eligibility) == []


# --- funding ------------------------------------------------------------------------------------------------


def test_twenty_esms_with_four_small_acquisition_asks_580000_euros() -> None:
    assert make_grappe(esms=20, small=4).funding_total_cents(HDF.funding) == 58_000_000


def test_sample_grappe_asks_580000_euros() -> None:
    spec = load_project_file(CONFIG_DIR / "projects" / "grappe-hainaut.toml")
    assert spec.grappe.funding_total_cents(HDF.funding) == 58_000_000


def test_funding_caps_the_esms_at_max_funded() -> None:
    # 35 ESMS, 30 funded at 25 000 €.
    assert make_grappe(esms=35).funding_total_cents(HDF.funding) == 30 * 2_500_000


def test_funding_caps_the_small_esms_at_max_funded_too() -> None:
    # 35 ESMS of which 32 small: 30 funded at 25 000 € plus 30 equipments at 20 000 €.
    assert make_grappe(esms=35, small=32).funding_total_cents(HDF.funding) == 30 * 2_500_000 + 30 * 2_000_000


def test_thirty_esms_are_all_funded_and_thirty_one_are_not() -> None:
    assert make_grappe(esms=30).funding_total_cents(HDF.funding) == 75_000_000
    assert make_grappe(esms=31).funding_total_cents(HDF.funding) == 75_000_000
    assert make_grappe(esms=29).funding_total_cents(HDF.funding) == 72_500_000


def test_compliance_rate_is_10000_euros_per_esms() -> None:
    assert HDF.funding.rate_cents("compliance") == 1_000_000
    grappe = make_grappe(esms=20, kind="compliance", socles=("mssante", "dmp"))
    assert grappe.funding_total_cents(HDF.funding) == 20_000_000


def test_acquisition_rate_is_25000_euros_per_esms() -> None:
    assert HDF.funding.rate_cents("acquisition") == 2_500_000
    assert make_grappe(esms=15).funding_total_cents(HDF.funding) == 37_500_000


def test_cap_comes_from_the_campaign() -> None:
    campaign = replace(HDF, funding=replace(HDF.funding, max_funded_esms=16))
    assert make_grappe(esms=20, small=20).funding_total_cents(campaign.funding) == 16 * 2_500_000 + 16 * 2_000_000
