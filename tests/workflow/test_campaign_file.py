"""Loading campaign files: the shipped ones, and each kind of malformed file reported with path and key."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from states.errors import BadInputError, MalformedFileError
from workflow.campaigns import load_campaign, load_campaigns
from workflow.tomlfile import MAX_FILE_BYTES

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
HDF_PATH = CONFIG_DIR / "campaigns" / "hdf-2021.toml"
ARA_PATH = CONFIG_DIR / "campaigns" / "ara-2021.toml"
HDF_TEXT = HDF_PATH.read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    """Return the shipped hdf-2021 text with exactly one occurrence of `old` replaced by `new`."""
    assert HDF_TEXT.count(old) == 1, f"{old!r} must occur exactly once in hdf-2021.toml"
    return HDF_TEXT.replace(old, new)


def write_campaign(tmp_path: Path, text: str | bytes, name: str = "hdf-2021") -> Path:
    folder = tmp_path / "campaigns"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_edited(tmp_path: Path, old: str, new: str):
    return load_campaign(write_campaign(tmp_path, edited(old, new)))


def refusal(tmp_path: Path, text: str | bytes, name: str = "hdf-2021") -> tuple[MalformedFileError, Path]:
    path = write_campaign(tmp_path, text, name)
    with pytest.raises(MalformedFileError) as caught:
        load_campaign(path)
    return caught.value, path


def assert_names(error: MalformedFileError, path: Path, key: str | None) -> None:
    message = str(error)
    assert str(path) in message
    assert error.path == str(path)
    assert error.key == key
    if key is not None:
        assert f"{path}: {key}: " in message


# --- the shipped campaigns ----------------------------------------------------------------------------------


def test_shipped_hdf_2021_loads_with_its_values_in_cents() -> None:
    campaign = load_campaign(HDF_PATH)
    assert campaign.id == "hdf-2021"
    assert campaign.region == "Hauts-de-France"
    assert campaign.timezone.key == "Europe/Paris"
    assert campaign.envelope_cents == 200_000_000
    assert campaign.funding.acquisition_per_esms_cents == 2_500_000
    assert campaign.funding.compliance_per_esms_cents == 1_000_000
    assert campaign.funding.equipment_per_small_esms_cents == 2_000_000
    assert campaign.funding.max_funded_esms == 30
    assert campaign.eligibility.min_organisations == 3
    assert campaign.eligibility.min_esms == 15
    assert campaign.eligibility.min_services_socles == 2
    assert campaign.reminder_days == (14, 7, 1)
    assert campaign.path == str(HDF_PATH)


def test_shipped_hdf_2021_tranches_are_decimals() -> None:
    tranches = load_campaign(HDF_PATH).funding.tranches
    assert tranches == (Decimal(40), Decimal(40), Decimal(20))
    assert all(type(t) is Decimal for t in tranches)


def test_shipped_hdf_2021_calendar_holds_dates() -> None:
    campaign = load_campaign(HDF_PATH)
    assert campaign.calendar == {
        "opens": date(2021, 2, 15),
        "application_deadline": date(2021, 3, 31),
        "selection_deadline": date(2021, 5, 31),
        "agreement_deadline": date(2021, 6, 30),
        "needs_statement_opens": date(2021, 3, 15),
    }


def test_shipped_hdf_2021_deadline_ends_at_midnight_paris_time() -> None:
    campaign = load_campaign(HDF_PATH)
    # 2021-03-31 is in summer time (UTC+2): the day ends at 22:00 UTC.
    assert campaign.deadline_end("application_deadline") == datetime(2021, 3, 31, 22, 0, tzinfo=UTC)
    # 2021-02-15 is in winter time (UTC+1): the day opens at 23:00 UTC the day before.
    assert campaign.opening("opens") == datetime(2021, 2, 14, 23, 0, tzinfo=UTC)


def test_shipped_hdf_2021_usage_criteria_are_read_in_order() -> None:
    criteria = load_campaign(HDF_PATH).usage_criteria
    assert [(c.id, c.min) for c in criteria] == [("dui_actifs", Decimal(80)), ("ins_qualifiees", Decimal(50))]
    assert criteria[0].label == "Part des usagers disposant d'un DUI actif (%)"


def test_shipped_ara_2021_loads_with_its_values() -> None:
    campaign = load_campaign(ARA_PATH)
    assert campaign.id == "ara-2021"
    assert campaign.region == "Auvergne-Rhône-Alpes"
    assert campaign.envelope_cents == 200_000_000
    assert campaign.funding.tranches == (Decimal(40), Decimal(40), Decimal(20))
    assert campaign.calendar == {
        "opens": date(2021, 2, 1),
        "application_deadline": date(2021, 4, 15),
        "selection_deadline": date(2021, 5, 15),
        "agreement_deadline": date(2021, 5, 15),
    }
    assert campaign.completion_months == 24
    assert [c.id for c in campaign.usage_criteria] == ["dui_actifs"]


def test_ara_2021_closes_selection_and_contractualisation_the_same_day_without_a_resah_date() -> None:
    campaign = load_campaign(ARA_PATH)
    assert campaign.deadline_end("agreement_deadline") == datetime(2021, 5, 15, 22, 0, tzinfo=UTC)
    assert campaign.opening("needs_statement_opens") is None
    assert campaign.deadline_end("selection_deadline") == datetime(2021, 5, 15, 22, 0, tzinfo=UTC)


def test_load_campaigns_reads_every_file_of_the_folder_by_id(tmp_path: Path) -> None:
    write_campaign(tmp_path, HDF_TEXT)
    write_campaign(tmp_path, ARA_PATH.read_text(encoding="utf-8"), name="ara-2021")
    campaigns = load_campaigns(tmp_path)
    assert sorted(campaigns) == ["ara-2021", "hdf-2021"]
    assert campaigns["ara-2021"].calendar["opens"] == date(2021, 2, 1)


def test_load_campaigns_without_a_campaign_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MalformedFileError) as caught:
        load_campaigns(tmp_path)
    assert str(tmp_path / "campaigns") in str(caught.value)


# --- amounts ------------------------------------------------------------------------------------------------


def test_float_amount_is_refused_naming_the_key(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("acquisition_per_esms = 25000", "acquisition_per_esms = 25000.5"))
    assert_names(error, path, "funding.acquisition_per_esms")
    assert "float" in error.problem
    assert isinstance(error, BadInputError)
    assert error.exit_code == 2


def test_float_envelope_is_refused_even_when_whole(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("envelope = 2000000 ", "envelope = 30000000.0 "))
    assert_names(error, path, "envelope")


def test_negative_amount_is_refused_naming_the_key(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("compliance_per_esms = 10000", "compliance_per_esms = -10000"))
    assert_names(error, path, "funding.compliance_per_esms")
    assert "negative" in error.problem


def test_negative_decimal_string_envelope_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("envelope = 2000000 ", 'envelope = "-0.01" '))
    assert_names(error, path, "envelope")
    assert "negative" in error.problem


def test_decimal_string_amount_is_accepted_in_cents(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, "compliance_per_esms = 10000", 'compliance_per_esms = "3333.33"')
    assert campaign.funding.compliance_per_esms_cents == 333_333


def test_fraction_of_a_cent_is_refused_naming_the_key(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("compliance_per_esms = 10000", 'compliance_per_esms = "3333.333"'))
    assert_names(error, path, "funding.compliance_per_esms")
    assert "fraction of a cent" in error.problem


def test_non_numeric_amount_string_is_refused(tmp_path: Path) -> None:
    text = edited("equipment_per_small_esms = 20000", 'equipment_per_small_esms = "20k"')
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "funding.equipment_per_small_esms")


def test_rate_above_ten_million_euros_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("acquisition_per_esms = 25000", 'acquisition_per_esms = "10000000.01"'))
    assert_names(error, path, "funding.acquisition_per_esms")


def test_absurdly_large_envelope_is_reported_as_malformed(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("envelope = 2000000 ", 'envelope = "1e999999" '))
    assert_names(error, path, "envelope")


def test_fraction_of_a_cent_in_a_very_long_envelope_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("envelope = 2000000 ", 'envelope = "123456789012345678901234567.891" '))
    assert_names(error, path, "envelope")


# --- tranches -----------------------------------------------------------------------------------------------


def test_tranches_not_adding_to_100_are_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("tranches = [40, 40, 20]", "tranches = [40, 40, 30]"))
    assert_names(error, path, "funding.tranches")
    assert "110" in error.problem


def test_wrong_number_of_tranches_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("tranches = [40, 40, 20]", "tranches = [50, 50]"))
    assert_names(error, path, "funding.tranches")
    assert "2 tranches" in error.problem


def test_empty_tranches_are_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("tranches = [40, 40, 20]", "tranches = []"))
    assert_names(error, path, "funding.tranches")


@pytest.mark.parametrize(
    ("tranches", "key"),
    [
        ("[0, 80, 20]", "funding.tranches[0]"),
        ("[40, 150, -90]", "funding.tranches[1]"),
        ("[40, 40, -20]", "funding.tranches[2]"),
    ],
)
def test_absurd_tranche_percentage_is_refused_naming_its_index(tmp_path: Path, tranches: str, key: str) -> None:
    error, path = refusal(tmp_path, edited("tranches = [40, 40, 20]", f"tranches = {tranches}"))
    assert_names(error, path, key)


def test_float_tranche_is_refused_naming_its_index(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("tranches = [40, 40, 20]", "tranches = [40, 40.0, 20]"))
    assert_names(error, path, "funding.tranches[1]")


def test_decimal_string_tranches_are_accepted(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, "tranches = [40, 40, 20]", 'tranches = ["33.33", "33.33", "33.34"]')
    assert campaign.funding.tranches == (Decimal("33.33"), Decimal("33.33"), Decimal("33.34"))


# --- structure ----------------------------------------------------------------------------------------------


def test_misspelt_calendar_key_is_refused_as_unknown(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("application_deadline = 2021-03-31", "aplication_deadline = 2021-03-31"))
    assert_names(error, path, "calendar.aplication_deadline")
    assert error.problem == "unknown key"


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    text = edited('region = "Hauts-de-France"', 'region = "Hauts-de-France"\nbudget = 1')
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "budget")


def test_unknown_key_in_usage_criterion_is_refused_naming_its_index(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("min = 50", "min = 50\nmax = 100"))
    assert_names(error, path, "usage_criteria[1].max")


def test_missing_funding_table_is_refused(tmp_path: Path) -> None:
    text = edited("[funding]", "[financement]")
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "funding")
    assert error.problem == "missing"


def test_id_differing_from_file_name_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, HDF_TEXT, name="hdf-2022")
    assert_names(error, path, "id")
    assert "hdf-2022" in error.problem


def test_unknown_timezone_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('timezone = "Europe/Paris"', 'timezone = "Europe/Lille"'))
    assert_names(error, path, "timezone")
    assert "Europe/Lille" in error.problem


def test_timezone_that_is_a_file_path_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('timezone = "Europe/Paris"', 'timezone = "../../etc/passwd"'))
    assert_names(error, path, "timezone")


def test_other_known_timezone_moves_the_deadline(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, 'timezone = "Europe/Paris"', 'timezone = "America/Cayenne"')
    assert campaign.deadline_end("application_deadline") == datetime(2021, 4, 1, 3, 0, tzinfo=UTC)


# --- dates --------------------------------------------------------------------------------------------------


def test_date_given_as_string_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("opens = 2021-02-15", 'opens = "2021-02-15"'))
    assert_names(error, path, "calendar.opens")
    assert "string" in error.problem


def test_date_with_a_time_is_refused(tmp_path: Path) -> None:
    error, path = refusal(
        tmp_path, edited("selection_deadline = 2021-05-31", "selection_deadline = 2021-05-31T12:00:00")
    )
    assert_names(error, path, "calendar.selection_deadline")


def test_dates_out_of_order_are_refused_naming_the_later_key(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("selection_deadline = 2021-05-31", "selection_deadline = 2021-03-30"))
    assert_names(error, path, "calendar.selection_deadline")
    assert "application_deadline" in error.problem


def test_needs_statement_opening_before_the_campaign_opens_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("needs_statement_opens = 2021-03-15", "needs_statement_opens = 2021-02-14"))
    assert_names(error, path, "calendar.needs_statement_opens")


def test_needs_statement_may_open_after_applications_close(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, "needs_statement_opens = 2021-03-15", "needs_statement_opens = 2021-04-15")
    assert campaign.calendar["needs_statement_opens"] == date(2021, 4, 15)


def test_same_day_deadlines_are_accepted(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, "selection_deadline = 2021-05-31", "selection_deadline = 2021-03-31")
    assert campaign.calendar["selection_deadline"] == campaign.calendar["application_deadline"]


def test_missing_opening_date_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("opens = 2021-02-15\n", ""))
    assert_names(error, path, "calendar.opens")
    assert error.problem == "missing"


def test_date_out_of_range_is_refused(tmp_path: Path) -> None:
    text = edited("agreement_deadline = 2021-06-30", "agreement_deadline = 2121-06-30")
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "calendar.agreement_deadline")


# --- usage criteria, eligibility, reminders -----------------------------------------------------------------


def test_duplicate_usage_criterion_id_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('id = "ins_qualifiees"', 'id = "dui_actifs"'))
    assert_names(error, path, "usage_criteria[1].id")
    assert "twice" in error.problem


def test_usage_criterion_id_with_punctuation_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('id = "ins_qualifiees"', 'id = "ins-qualifiées"'))
    assert_names(error, path, "usage_criteria[1].id")


def test_eligibility_minimum_of_zero_organisations_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("min_organisations = 3", "min_organisations = 0"))
    assert_names(error, path, "eligibility.min_organisations")


def test_more_required_socles_than_exist_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("min_services_socles = 2", "min_services_socles = 5"))
    assert_names(error, path, "eligibility.min_services_socles")


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("max_funded_esms = 30", "max_funded_esms = true"))
    assert_names(error, path, "funding.max_funded_esms")
    assert "boolean" in error.problem


def test_reminder_day_listed_twice_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("days_before = [14, 7, 1]", "days_before = [14, 7, 7]"))
    assert_names(error, path, "reminders.days_before")


def test_reminder_day_zero_is_refused_naming_its_index(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("days_before = [14, 7, 1]", "days_before = [14, 0]"))
    assert_names(error, path, "reminders.days_before[1]")


def test_reminders_are_sorted_furthest_first(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, "days_before = [14, 7, 1]", "days_before = [1, 30, 7]")
    assert campaign.reminder_days == (30, 7, 1)


# --- the file itself ----------------------------------------------------------------------------------------


def test_non_utf8_bytes_are_refused_naming_the_file(tmp_path: Path) -> None:
    raw = edited('name = "ESMS numérique', 'name = "ESMS num\udce9rique').encode("utf-8", "surrogateescape")
    error, path = refusal(tmp_path, raw)
    assert_names(error, path, None)
    assert "UTF-8" in error.problem


def test_invalid_toml_is_refused_naming_the_file(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("min_esms = 15", "min_esms = = 15"))
    assert_names(error, path, None)
    assert "not valid TOML" in error.problem


def test_key_defined_twice_is_invalid_toml(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("min_esms = 15", "min_esms = 15\nmin_esms = 16"))
    assert_names(error, path, None)


def test_oversize_file_is_refused_before_parsing(tmp_path: Path) -> None:
    padding = "# " + "x" * MAX_FILE_BYTES + "\n"
    error, path = refusal(tmp_path, HDF_TEXT + padding)
    assert_names(error, path, None)
    assert "too large" in error.problem


def test_file_just_under_the_size_limit_loads(tmp_path: Path) -> None:
    size = len(HDF_TEXT.encode("utf-8"))
    padding = "#" + "x" * (MAX_FILE_BYTES - size - 2) + "\n"
    path = write_campaign(tmp_path, HDF_TEXT + padding)
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_campaign(path).id == "hdf-2021"


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "campaigns" / "nowhere.toml"
    with pytest.raises(MalformedFileError) as caught:
        load_campaign(path)
    assert_names(caught.value, path, None)


# --- which fault is named first -----------------------------------------------------------------------------


def test_of_several_unknown_keys_the_first_in_sorted_order_is_named(tmp_path: Path) -> None:
    text = edited('region = "Hauts-de-France"', 'region = "Hauts-de-France"\nzone = 1\nbudget = 1')
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "budget")


def test_a_fault_of_a_known_key_is_named_before_an_unknown_key(tmp_path: Path) -> None:
    text = edited('region = "Hauts-de-France"', 'region = "Hauts-de-France"\nbudget = 1')
    error, path = refusal(tmp_path, text.replace("min_esms = 15", "min_esms = 0"))
    assert_names(error, path, "eligibility.min_esms")
    assert error.problem == "0 is out of range (1 to 100000)"


def test_faults_are_named_in_reading_order(tmp_path: Path) -> None:
    text = edited("min_esms = 15", "min_esms = 0").replace("opens = 2021-02-15", 'opens = "2021-02-15"')
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "calendar.opens")


# --- the exact words ----------------------------------------------------------------------------------------


def test_usage_criteria_that_are_not_tables_are_refused_in_words(tmp_path: Path) -> None:
    text = HDF_TEXT.split("[[usage_criteria]]")[0].replace(
        'region = "Hauts-de-France"', 'region = "Hauts-de-France"\nusage_criteria = [1]'
    )
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "usage_criteria")
    assert error.problem == "must be an array of tables ([[usage_criteria]])"


def test_calendar_given_as_a_string_is_refused_in_words(tmp_path: Path) -> None:
    # The [calendar] table and its keys, up to the next table, become one top-level string.
    text = re.sub(r"\[calendar\][^\[]*", 'calendar = "2021"\n', HDF_TEXT)
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "calendar")
    assert error.problem == "must be a table, not a string"


def test_reminder_day_given_as_string_names_its_index(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("days_before = [14, 7, 1]", 'days_before = [14, "7"]'))
    assert_names(error, path, "reminders.days_before[1]")
    assert error.problem == "must be int, not a string"


def test_reminder_time_that_is_not_a_time_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited("days_before = [14, 7, 1]", 'days_before = [14, 7, 1]\nsend_at = "8h"'))
    assert_names(error, path, "reminders.send_at")
    assert error.problem == "'8h' is not a time of day such as \"08:00\""


def test_reminder_time_is_read_in_local_time(tmp_path: Path) -> None:
    campaign = load_edited(tmp_path, "days_before = [14, 7, 1]", 'days_before = [14, 7, 1]\nsend_at = "09:30"')
    assert campaign.reminder_at("application_deadline", 1) == datetime(2021, 3, 30, 7, 30, tzinfo=UTC)


def test_text_with_a_line_break_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('region = "Hauts-de-France"', 'region = "Hauts-de-\\nFrance"'))
    assert_names(error, path, "region")
    assert error.problem == "must not contain control characters (line breaks, NUL, escapes)"
