"""Every guard on both sides of its boundary, with deadlines on a summer day (CEST) and a winter day (CET)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from states.errors import (
    DeadlinePassedError,
    EventNotAllowedError,
    IneligibleError,
    InvalidArgumentError,
    NotYetOpenError,
    UnknownEventError,
    UsageCriteriaNotMetError,
)
from states.grappe import Grappe
from states.guards import GuardContext
from states.machine import check_params, fire
from tests.conftest import CONFIG_DIR, write_project
from workflow.campaigns import Campaign, load_campaign
from workflow.project_file import load_project_file

PARIS = ZoneInfo("Europe/Paris")
ONE_SECOND = timedelta(seconds=1)


def hdf() -> Campaign:
    return load_campaign(CONFIG_DIR / "campaigns" / "hdf-2021.toml")


def winter_campaign() -> Campaign:
    """The same rules with every date in winter time (CET, UTC+1)."""
    return dataclasses.replace(
        hdf(),
        calendar={
            "opens": date(2020, 11, 2),
            "application_deadline": date(2020, 12, 15),
            "needs_statement_opens": date(2020, 12, 1),
            "selection_deadline": date(2021, 1, 15),
            "agreement_deadline": date(2021, 2, 26),
        },
    )


CAMPAIGNS = {"summer": hdf, "winter": winter_campaign}


@pytest.fixture(scope="module")
def grappe(tmp_path_factory: pytest.TempPathFactory) -> Grappe:
    return load_project_file(write_project(tmp_path_factory.mktemp("p"), esms=20, small=4)).grappe


def context(campaign: Campaign, grappe: Grappe, event: str, state: str, now: datetime, **params: str) -> GuardContext:
    return GuardContext(
        event=event, state=state, campaign=campaign, grappe=lambda: grappe, now=now, params=dict(params)
    )


def end_of(campaign: Campaign, key: str) -> datetime:
    end = campaign.deadline_end(key)
    assert end is not None
    return end


DEADLINE_CASES = [
    ("submit", "application", "application_deadline", {}, "selection"),
    ("select", "selection", "selection_deadline", {"group": "A"}, "needs_statement"),
    ("promote", "waitlisted", "agreement_deadline", {}, "needs_statement"),
    ("sign_agreement", "agreement", "agreement_deadline", {}, "configuration"),
]


@pytest.mark.parametrize("season", sorted(CAMPAIGNS))
@pytest.mark.parametrize(("event", "state", "deadline", "params", "dest"), DEADLINE_CASES)
def test_deadline_accepts_last_second_of_its_day_and_refuses_the_next(
    season: str, event: str, state: str, deadline: str, params: dict[str, str], dest: str, grappe: Grappe
) -> None:
    campaign = CAMPAIGNS[season]()
    end = end_of(campaign, deadline)
    last_second = end - ONE_SECOND
    local = last_second.astimezone(PARIS)
    assert (local.date(), local.hour, local.minute, local.second) == (campaign.calendar[deadline], 23, 59, 59)
    assert local.utcoffset() == timedelta(hours=2 if season == "summer" else 1)

    assert fire(context(campaign, grappe, event, state, last_second, **params)) == dest
    with pytest.raises(DeadlinePassedError) as refused:
        fire(context(campaign, grappe, event, state, end, **params))
    assert refused.value.rule == f"on_or_before_{deadline}"
    assert campaign.calendar[deadline].isoformat() in str(refused.value)


@pytest.mark.parametrize("season", sorted(CAMPAIGNS))
def test_selection_waits_for_applications_to_close(season: str, grappe: Grappe) -> None:
    campaign = CAMPAIGNS[season]()
    closes = end_of(campaign, "application_deadline")
    with pytest.raises(NotYetOpenError) as refused:
        fire(context(campaign, grappe, "select", "selection", closes - ONE_SECOND, group="A"))
    assert refused.value.rule == "applications_closed"
    assert fire(context(campaign, grappe, "select", "selection", closes, group="A")) == "needs_statement"


@pytest.mark.parametrize("season", sorted(CAMPAIGNS))
@pytest.mark.parametrize(
    ("event", "state", "opening", "params", "dest"),
    [
        ("submit", "application", "opens", {}, "selection"),
        ("file_needs", "needs_statement", "needs_statement_opens", {"reference": "R-1"}, "vendor_contract"),
    ],
)
def test_step_opens_at_midnight_local_time(
    season: str, event: str, state: str, opening: str, params: dict[str, str], dest: str, grappe: Grappe
) -> None:
    campaign = CAMPAIGNS[season]()
    opens = campaign.opening(opening)
    assert opens is not None
    assert opens.astimezone(PARIS).date() == campaign.calendar[opening]
    assert (opens.astimezone(PARIS).hour, opens.astimezone(PARIS).minute) == (0, 0)
    with pytest.raises(NotYetOpenError):
        fire(context(campaign, grappe, event, state, opens - ONE_SECOND, **params))
    assert fire(context(campaign, grappe, event, state, opens, **params)) == dest


@pytest.mark.parametrize(
    ("group", "dest"), [("A", "needs_statement"), ("B", "waitlisted"), ("C", "rework"), ("D", "rejected")]
)
def test_selection_group_decides_the_destination(group: str, dest: str, grappe: Grappe) -> None:
    now = datetime(2021, 4, 15, 10, tzinfo=UTC)
    assert fire(context(hdf(), grappe, "select", "selection", now, group=group)) == dest


def test_a_deadline_the_campaign_does_not_set_is_never_enforced(grappe: Grappe) -> None:
    ara = load_campaign(CONFIG_DIR / "campaigns" / "ara-2021.toml")
    ara = dataclasses.replace(ara, calendar={k: v for k, v in ara.calendar.items() if k != "agreement_deadline"})
    assert ara.deadline_end("agreement_deadline") is None
    years_later = datetime(2030, 1, 1, tzinfo=UTC)
    assert fire(context(ara, grappe, "sign_agreement", "agreement", years_later)) == "configuration"
    assert fire(context(ara, grappe, "promote", "waitlisted", years_later)) == "needs_statement"


def test_submission_of_an_ineligible_grappe_is_refused_naming_each_rule(tmp_path: Path) -> None:
    small = load_project_file(write_project(tmp_path, organisations=2, esms=14, small=0)).grappe
    with pytest.raises(IneligibleError) as refused:
        fire(context(hdf(), small, "submit", "application", datetime(2021, 3, 1, tzinfo=UTC)))
    assert "2 organisations, at least 3" in str(refused.value)
    assert "14 ESMS, at least 15" in str(refused.value)
    assert refused.value.rule == "eligible"


def test_usage_criteria_met_at_the_minimum_and_refused_just_under(grappe: Grappe) -> None:
    now = datetime(2022, 6, 1, tzinfo=UTC)
    campaign = hdf()
    assert (
        fire(
            context(
                campaign,
                grappe,
                "verify_usage",
                "usage_evaluation",
                now,
                dui_actifs="80",
                ins_qualifiees="50",
            )
        )
        == "completed"
    )
    with pytest.raises(UsageCriteriaNotMetError) as refused:
        fire(
            context(
                campaign,
                grappe,
                "verify_usage",
                "usage_evaluation",
                now,
                dui_actifs="79.99",
                ins_qualifiees="49,5",
            )
        )
    assert "dui_actifs = 79.99 < 80" in str(refused.value)
    assert "ins_qualifiees = 49.5 < 50" in str(refused.value)


def test_unmeasured_criterion_is_unmet_and_unknown_or_malformed_ones_are_bad_input(grappe: Grappe) -> None:
    now = datetime(2022, 6, 1, tzinfo=UTC)
    with pytest.raises(UsageCriteriaNotMetError, match="ins_qualifiees not measured"):
        fire(context(hdf(), grappe, "verify_usage", "usage_evaluation", now, dui_actifs="90"))
    with pytest.raises(InvalidArgumentError, match="unknown criterion 'dmp'"):
        fire(context(hdf(), grappe, "verify_usage", "usage_evaluation", now, dui_actifs="90", dmp="3"))
    with pytest.raises(InvalidArgumentError, match="not a number"):
        fire(context(hdf(), grappe, "verify_usage", "usage_evaluation", now, dui_actifs="beaucoup"))


@pytest.mark.parametrize(
    "state",
    [
        "application",
        "selection",
        "needs_statement",
        "vendor_contract",
        "agreement",
        "configuration",
        "rollout",
        "usage_evaluation",
        "waitlisted",
    ],
)
def test_withdrawal_is_allowed_from_every_open_state(state: str, grappe: Grappe) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert fire(context(hdf(), grappe, "withdraw", state, now, reason="fusion")) == "withdrawn"


@pytest.mark.parametrize("state", ["completed", "rework", "rejected", "lapsed", "withdrawn"])
def test_no_event_leaves_a_final_state(state: str, grappe: Grappe) -> None:
    with pytest.raises(EventNotAllowedError, match="final state"):
        fire(context(hdf(), grappe, "withdraw", state, datetime(2021, 3, 1, tzinfo=UTC), reason="x"))


def test_event_from_the_wrong_state_names_the_allowed_events(grappe: Grappe) -> None:
    with pytest.raises(EventNotAllowedError) as refused:
        fire(context(hdf(), grappe, "sign_agreement", "selection", datetime(2021, 4, 2, tzinfo=UTC)))
    assert "select" in str(refused.value) and "withdraw" in str(refused.value)


@pytest.mark.parametrize(
    ("event", "params", "message"),
    [
        ("select", {}, "missing parameter group"),
        ("select", {"group": "E"}, "'E' is not one of A, B, C, D"),
        ("submit", {"group": "A"}, "unknown parameter 'group'"),
        ("file_needs", {"reference": "  "}, "missing parameter reference"),
        ("withdraw", {}, "missing parameter reason"),
    ],
)
def test_malformed_event_parameters_are_bad_input(event: str, params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        check_params(event, params)


def test_unknown_event_is_bad_input() -> None:
    with pytest.raises(UnknownEventError):
        check_params("approve", {})
