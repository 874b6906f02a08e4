"""Usage figures are measured values: plain ASCII decimals within their unit's range (issue "Money…")."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from states.errors import InvalidArgumentError, MalformedFileError
from states.guards import CriterionUnit, measured_value
from tests.conftest import CONFIG_DIR
from workflow.campaigns import load_campaign


@pytest.mark.parametrize(
    ("raw", "expected"), [("86", "86"), ("62.5", "62.5"), ("62,5", "62.5"), (" 0 ", "0"), ("100", "100")]
)
def test_a_percentage_is_a_plain_decimal_from_0_to_100(raw: str, expected: str) -> None:
    assert measured_value("dui_actifs", raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["850", "100.01", "1e3", "٨٦", "-1", "1e999999", "86%", "1,000.5", "", "NaN", "1_000"])
def test_a_percentage_out_of_range_or_not_plain_is_bad_input(raw: str) -> None:
    with pytest.raises(InvalidArgumentError, match="dui_actifs"):
        measured_value("dui_actifs", raw)


def test_a_count_has_no_upper_bound_but_is_never_negative() -> None:
    assert measured_value("documents_dmp", "850", CriterionUnit.COUNT) == 850
    with pytest.raises(InvalidArgumentError, match="out of range"):
        measured_value("documents_dmp", "-1", CriterionUnit.COUNT)


def criterion_file(tmp_path: Path, lines: str) -> Path:
    text = (CONFIG_DIR / "campaigns" / "hdf-2021.toml").read_text(encoding="utf-8")
    path = tmp_path / "hdf-2021.toml"
    path.write_text(text + '\n[[usage_criteria]]\nid = "documents_dmp"\nlabel = "Documents"\n' + lines)
    return path


def test_a_campaign_criterion_takes_a_unit_and_defaults_to_percent(tmp_path: Path) -> None:
    campaign = load_campaign(criterion_file(tmp_path, 'min = 500\nunit = "count"\n'))
    units = {c.id: c.unit for c in campaign.usage_criteria}
    assert units["documents_dmp"] is CriterionUnit.COUNT
    assert units["dui_actifs"] is CriterionUnit.PERCENT


def test_a_percentage_threshold_above_100_or_an_unknown_unit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MalformedFileError, match="not a percentage"):
        load_campaign(criterion_file(tmp_path, "min = 500\n"))
    with pytest.raises(MalformedFileError, match="unit"):
        load_campaign(criterion_file(tmp_path, 'min = 5\nunit = "kg"\n'))


def test_an_envelope_far_beyond_any_budget_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    text = (CONFIG_DIR / "campaigns" / "hdf-2021.toml").read_text(encoding="utf-8")
    path = tmp_path / "hdf-2021.toml"
    path.write_text(text.replace("envelope = 2000000 ", 'envelope = "1e999999999" '), encoding="utf-8")
    with pytest.raises(MalformedFileError, match=r"envelope: 1E\+999999999 is out of range"):
        load_campaign(path)
