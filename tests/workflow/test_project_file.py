"""load_project_file: the sample grappe, and every malformed project file reported with path and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from states.errors import MalformedFileError
from workflow.project_file import load_project_file

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "config" / "projects" / "grappe-hainaut.toml"
SAMPLE_TEXT = SAMPLE_PATH.read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    """Return the sample grappe-hainaut text with exactly one occurrence of `old` replaced by `new`."""
    assert SAMPLE_TEXT.count(old) == 1, f"{old!r} must occur exactly once in grappe-hainaut.toml"
    return SAMPLE_TEXT.replace(old, new)


def write_project(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "project.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> tuple[MalformedFileError, Path]:
    path = write_project(tmp_path, text)
    with pytest.raises(MalformedFileError) as caught:
        load_project_file(path)
    return caught.value, path


def assert_names(error: MalformedFileError, path: Path, key: str) -> None:
    assert error.path == str(path)
    assert error.key == key
    assert f"{path}: {key}: " in str(error)


# --- the sample ---------------------------------------------------------------------------------------------


def test_sample_grappe_has_3_organisations_20_esms_4_small() -> None:
    spec = load_project_file(SAMPLE_PATH)
    assert len(spec.grappe.organisations) == 3
    assert spec.grappe.esms_count == 20
    assert spec.grappe.small_esms_count == 4
    assert [len(o.esms) for o in spec.grappe.organisations] == [8, 7, 5]


def test_sample_grappe_header_fields_are_read() -> None:
    spec = load_project_file(SAMPLE_PATH)
    assert spec.name == "Grappe du Hainaut"
    assert spec.campaign == "hdf-2021"
    assert spec.owner_name == "Association Les Tilleuls"
    assert spec.owner_email == "dui@tilleuls.example"
    assert spec.grappe.kind == "acquisition"
    assert spec.grappe.services_socles == ("mssante", "dmp")


def test_sample_grappe_organisations_and_esms_keep_their_details() -> None:
    grappe = load_project_file(SAMPLE_PATH).grappe
    assert [o.finess for o in grappe.organisations] == ["590000001", "590000019", "590000035"]
    first = grappe.organisations[0].esms[0]
    assert (first.finess, first.name, first.category) == ("590100002", "EHPAD site 1", "EHPAD")
    assert first.small is True
    third = grappe.organisations[0].esms[2]
    assert third.small is False


# --- FINESS -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "finess",
    ["59010000", "5901000023", "59010000A", "ABCDEFGHI", "2C0000001", "2a0000001", "59 100002", ""],
)
def test_malformed_esms_finess_is_refused_naming_the_key(tmp_path: Path, finess: str) -> None:
    error, path = refusal(tmp_path, edited('finess = "590100004"', f'finess = "{finess}"'))
    assert_names(error, path, "organisations[0].esms[2].finess")


def test_eight_character_finess_message_gives_the_length(tmp_path: Path) -> None:
    error, _ = refusal(tmp_path, edited('finess = "590100004"', 'finess = "59010000"'))
    assert "9 characters" in error.problem
    assert "not 8" in error.problem


def test_malformed_organisation_finess_is_refused_naming_the_key(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('finess = "590000019"', 'finess = "2C0000019"'))
    assert_names(error, path, "organisations[1].finess")
    assert "2A or 2B" in error.problem


def test_finess_given_as_integer_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('finess = "590100004"', "finess = 590100004"))
    assert_names(error, path, "organisations[0].esms[2].finess")
    assert "string" in error.problem


@pytest.mark.parametrize("finess", ["2A0100004", "2B0100004"])
def test_corsican_finess_is_accepted(tmp_path: Path, finess: str) -> None:
    spec = load_project_file(write_project(tmp_path, edited('finess = "590100004"', f'finess = "{finess}"')))
    assert spec.grappe.organisations[0].esms[2].finess == finess


def test_corsican_organisation_finess_is_accepted(tmp_path: Path) -> None:
    spec = load_project_file(write_project(tmp_path, edited('finess = "590000035"', 'finess = "2B0000035"')))
    assert spec.grappe.organisations[2].finess == "2B0000035"


@pytest.mark.parametrize("finess", ["５９０１００００４", "٥٩0100004"])
def test_finess_with_non_ascii_digits_is_refused(tmp_path: Path, finess: str) -> None:
    error, path = refusal(tmp_path, edited('finess = "590100004"', f'finess = "{finess}"'))
    assert_names(error, path, "organisations[0].esms[2].finess")


def test_duplicate_esms_finess_is_refused_naming_both_places(tmp_path: Path) -> None:
    # The first ESMS of the third organisation repeats the third ESMS of the first.
    error, path = refusal(tmp_path, edited('finess = "590300006"', 'finess = "590100004"'))
    assert_names(error, path, "organisations[2].esms[0].finess")
    assert "590100004" in error.problem
    assert "organisations[0].esms[2].finess" in error.problem


def test_duplicate_esms_finess_within_one_organisation_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('finess = "590100009"', 'finess = "590100002"'))
    assert_names(error, path, "organisations[0].esms[7].finess")
    assert "organisations[0].esms[0].finess" in error.problem


def test_duplicate_organisation_finess_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('finess = "590000035"', 'finess = "590000001"'))
    assert_names(error, path, "organisations[2].finess")


# --- kind and services socles -------------------------------------------------------------------------------


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('kind = "acquisition"', 'kind = "purchase"'))
    assert_names(error, path, "kind")
    assert "acquisition" in error.problem
    assert "compliance" in error.problem


def test_compliance_kind_is_accepted(tmp_path: Path) -> None:
    spec = load_project_file(write_project(tmp_path, edited('kind = "acquisition"', 'kind = "compliance"')))
    assert spec.grappe.kind == "compliance"


def test_unknown_service_socle_is_refused_naming_its_index(tmp_path: Path) -> None:
    error, path = refusal(
        tmp_path, edited('services_socles = ["mssante", "dmp"]', 'services_socles = ["mssante", "dossier"]')
    )
    assert_names(error, path, "services_socles[1]")
    assert "'dossier'" in error.problem


def test_ins_is_accepted_as_a_service_socle(tmp_path: Path) -> None:
    text = edited('services_socles = ["mssante", "dmp"]', 'services_socles = ["ins", "dmp"]')
    spec = load_project_file(write_project(tmp_path, text))
    assert spec.grappe.services_socles == ("ins", "dmp")


def test_service_socle_listed_twice_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('services_socles = ["mssante", "dmp"]', 'services_socles = ["dmp", "dmp"]'))
    assert_names(error, path, "services_socles")


def test_missing_services_socles_means_none(tmp_path: Path) -> None:
    spec = load_project_file(write_project(tmp_path, edited('services_socles = ["mssante", "dmp"]\n', "")))
    assert spec.grappe.services_socles == ()


# --- structure and types ------------------------------------------------------------------------------------


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('kind = "acquisition"', 'kind = "acquisition"\nbudget = 580000'))
    assert_names(error, path, "budget")
    assert error.problem == "unknown key"


def test_unknown_esms_key_is_refused_naming_its_place(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('finess = "590200008"', 'finess = "590200008"\nsmal = true'))
    assert_names(error, path, "organisations[1].esms[4].smal")
    assert error.problem == "unknown key"


def test_misspelt_owner_key_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('email = "dui@tilleuls.example"', 'mail = "dui@tilleuls.example"'))
    # The required key is reported missing before the unknown one is noticed.
    assert_names(error, path, "owner.email")


def test_missing_owner_email_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('email = "dui@tilleuls.example"\n', ""))
    assert_names(error, path, "owner.email")
    assert error.problem == "missing"


@pytest.mark.parametrize(
    "email",
    [
        "dui@tilleuls.example\\nBcc: victim@example.org",
        "dui@tilleuls.example\\r\\nBcc: victim@example.org",
        "dui.tilleuls.example",
        "dui@@tilleuls.example",
        "dui@tilleuls",
        "Dui <dui@tilleuls.example>",
        "dui tilleuls@example.org",
    ],
)
def test_malformed_owner_email_is_refused(tmp_path: Path, email: str) -> None:
    error, path = refusal(tmp_path, edited('email = "dui@tilleuls.example"', f'email = "{email}"'))
    assert_names(error, path, "owner.email")
    assert "not an e-mail address" in error.problem


def test_small_given_as_string_is_refused(tmp_path: Path) -> None:
    error, path = refusal(
        tmp_path,
        edited('category = "IME"\nsmall = true', 'category = "IME"\nsmall = "yes"'),
    )
    assert_names(error, path, "organisations[0].esms[1].small")
    assert "true or false" in error.problem


def test_name_given_as_integer_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('name = "Grappe du Hainaut"', "name = 42"))
    assert_names(error, path, "name")
    assert "integer" in error.problem


def test_services_socles_given_as_string_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('services_socles = ["mssante", "dmp"]', 'services_socles = "dmp"'))
    assert_names(error, path, "services_socles")


def test_owner_given_as_string_is_refused(tmp_path: Path) -> None:
    text = 'owner = "Association"\n' + edited(
        '[owner]\nname = "Association Les Tilleuls"\nemail = "dui@tilleuls.example"\n', ""
    )
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "owner")


def test_missing_organisations_are_refused(tmp_path: Path) -> None:
    header = SAMPLE_TEXT.split("[[organisations]]")[0]
    error, path = refusal(tmp_path, header)
    assert_names(error, path, "organisations")
    assert error.problem == "missing"


def test_empty_organisations_are_refused(tmp_path: Path) -> None:
    header = SAMPLE_TEXT.split("[[organisations]]")[0]
    text = header.replace('kind = "acquisition"', 'kind = "acquisition"\norganisations = []')
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "organisations")


def test_empty_name_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('name = "Grappe du Hainaut"', 'name = "   "'))
    assert_names(error, path, "name")
    assert "empty" in error.problem


def test_non_utf8_project_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "project.toml"
    path.write_bytes(SAMPLE_TEXT.replace("Mutualité", "Mutualit\udce9").encode("utf-8", "surrogateescape"))
    with pytest.raises(MalformedFileError) as caught:
        load_project_file(path)
    assert str(path) in str(caught.value)
    assert "UTF-8" in caught.value.problem


def test_organisation_that_is_not_a_table_is_refused_in_words(tmp_path: Path) -> None:
    header = SAMPLE_TEXT.split("[[organisations]]")[0]
    text = header.replace('kind = "acquisition"', 'kind = "acquisition"\norganisations = ["Les Tilleuls"]')
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "organisations")
    assert error.problem == "must be an array of tables ([[organisations]])"


def test_esms_that_are_not_tables_are_refused_naming_the_organisation(tmp_path: Path) -> None:
    header = SAMPLE_TEXT.split("[[organisations]]")[0]
    text = header + '[[organisations]]\nname = "Les Tilleuls"\nfiness = "590000001"\nesms = 3\n'
    error, path = refusal(tmp_path, text)
    assert_names(error, path, "organisations[0].esms")
    assert error.problem == "must be an array of tables ([[organisations[0].esms]])"


def test_missing_esms_name_is_refused_naming_its_place(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('finess = "590100002"\nname = "EHPAD site 1"\n', 'finess = "590100002"\n'))
    assert_names(error, path, "organisations[0].esms[0].name")
    assert error.problem == "missing"


def test_category_longer_than_64_characters_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('category = "IME"\nsmall = true', f'category = "{"I" * 65}"\nsmall = true'))
    assert_names(error, path, "organisations[0].esms[1].category")
    assert error.problem == "longer than 64 characters"


def test_owner_email_given_as_integer_is_refused(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('email = "dui@tilleuls.example"', "email = 42"))
    assert_names(error, path, "owner.email")
    assert error.problem == "must be a string"


def test_service_socle_given_as_integer_names_its_index(tmp_path: Path) -> None:
    error, path = refusal(tmp_path, edited('services_socles = ["mssante", "dmp"]', 'services_socles = ["dmp", 3]'))
    assert_names(error, path, "services_socles[1]")
    assert error.problem == "must be str, not an integer"
