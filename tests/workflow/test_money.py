"""Money: exact parsing, cents, French formatting and tranches that add up to the cent."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.formatting import format_euros_fr
from states.money import format_cents, parse_euros, split_tranches, to_cents

NNBSP = "\u202f"
NBSP = "\u00a0"

FIXED_PERCENTS = [
    [Decimal(40), Decimal(40), Decimal(20)],
    [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")],
    [Decimal(100)],
    [Decimal("12.5"), Decimal("37.5"), Decimal(50)],
    [Decimal("0.01"), Decimal("99.98"), Decimal("0.01")],
]


@st.composite
def percentages(draw: st.DrawFn) -> list[Decimal]:
    """Percentages to the hundredth adding up to exactly 100 (the shipped ones, or random cuts of 100.00)."""
    if draw(st.booleans()):
        return draw(st.sampled_from(FIXED_PERCENTS))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=9_999), max_size=5)))
    bounds = [0, *cuts, 10_000]
    return [Decimal(b - a) / 100 for a, b in pairwise(bounds)]


# --- split_tranches -----------------------------------------------------------------------------------------


@given(total_cents=st.integers(min_value=0, max_value=10**12), percents=percentages())
def test_tranches_add_up_exactly_to_the_total(total_cents: int, percents: list[Decimal]) -> None:
    amounts = split_tranches(total_cents, percents)
    assert len(amounts) == len(percents)
    assert sum(amounts) == total_cents
    assert all(isinstance(a, int) and a >= 0 for a in amounts)


@given(total_cents=st.integers(min_value=0, max_value=10**12), percents=percentages())
def test_tranches_before_the_last_are_rounded_down_and_the_last_takes_the_remainder(
    total_cents: int, percents: list[Decimal]
) -> None:
    amounts = split_tranches(total_cents, percents)
    for amount, percent in zip(amounts[:-1], percents[:-1], strict=True):
        exact = Decimal(total_cents) * percent / 100
        assert amount <= exact < amount + 1
    assert amounts[-1] == total_cents - sum(amounts[:-1])
    assert amounts[-1] >= Decimal(total_cents) * percents[-1] / 100


def test_580000_euros_split_40_40_20() -> None:
    assert split_tranches(58_000_000, [Decimal(40), Decimal(40), Decimal(20)]) == [
        23_200_000,
        23_200_000,
        11_600_000,
    ]


def test_last_tranche_takes_the_rounding_remainder() -> None:
    # 40 % of 1.01 € is 40.4 cents: the first two tranches get 40 cents, the last 21.
    assert split_tranches(101, [Decimal(40), Decimal(40), Decimal(20)]) == [40, 40, 21]


def test_thirds_leave_the_extra_cent_to_the_last_tranche() -> None:
    assert split_tranches(100, [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]) == [33, 33, 34]
    assert split_tranches(1, [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]) == [0, 0, 1]


def test_percentages_not_adding_to_100_are_refused() -> None:
    with pytest.raises(ValueError, match="99"):
        split_tranches(100_000, [Decimal(40), Decimal(40), Decimal(19)])


# --- parse_euros --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [25000.5, 25000.0, 0.0, float("nan")])
def test_parse_euros_refuses_floats(value: float) -> None:
    with pytest.raises(ValueError, match="float"):
        parse_euros(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_euros_refuses_booleans(value: bool) -> None:
    with pytest.raises(ValueError):
        parse_euros(value)


@pytest.mark.parametrize("value", ["abc", "", "12,50", "1.2.3", "12 €"])
def test_parse_euros_refuses_non_numbers(value: str) -> None:
    with pytest.raises(ValueError, match="not a decimal number"):
        parse_euros(value)


@pytest.mark.parametrize("value", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf"])
def test_parse_euros_refuses_non_finite_strings(value: str) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        parse_euros(value)


@pytest.mark.parametrize("value", [None, [1], {"euros": 1}, Decimal(1)])
def test_parse_euros_refuses_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_euros(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(25000, Decimal(25000)), (0, Decimal(0)), ("3333.33", Decimal("3333.33")), (" 12.50 ", Decimal("12.5"))],
)
def test_parse_euros_accepts_integers_and_decimal_strings(value: object, expected: Decimal) -> None:
    parsed = parse_euros(value)
    assert type(parsed) is Decimal
    assert parsed == expected


def test_parse_euros_keeps_decimal_strings_exact() -> None:
    assert parse_euros("0.1") + parse_euros("0.2") == Decimal("0.3")


# --- to_cents -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("euros", "cents"),
    [("3333.33", 333_333), ("25000", 2_500_000), ("0.01", 1), ("0", 0), ("580000.00", 58_000_000)],
)
def test_to_cents_converts_whole_cents(euros: str, cents: int) -> None:
    assert to_cents(Decimal(euros)) == cents


@pytest.mark.parametrize("euros", ["3333.333", "0.001", "0.005"])
def test_to_cents_refuses_a_fraction_of_a_cent(euros: str) -> None:
    with pytest.raises(ValueError, match="fraction of a cent"):
        to_cents(Decimal(euros))


def test_to_cents_refuses_a_fraction_of_a_cent_in_a_very_long_amount() -> None:
    with pytest.raises(ValueError):
        to_cents(Decimal("123456789012345678901234567.891"))


# --- formatting ---------------------------------------------------------------------------------------------


def test_format_euros_fr_groups_thousands_with_narrow_no_break_spaces() -> None:
    assert format_euros_fr(23_200_000) == "232\u202f000,00\u00a0€"


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, f"0,00{NBSP}€"),
        (5, f"0,05{NBSP}€"),
        (99_999, f"999,99{NBSP}€"),
        (100_000, f"1{NNBSP}000,00{NBSP}€"),
        (58_000_000, f"580{NNBSP}000,00{NBSP}€"),
        (3_000_000_000, f"30{NNBSP}000{NNBSP}000,00{NBSP}€"),
        (-123_456_789, f"-1{NNBSP}234{NNBSP}567,89{NBSP}€"),
    ],
)
def test_format_euros_fr(cents: int, text: str) -> None:
    assert format_euros_fr(cents) == text


@pytest.mark.parametrize(
    ("cents", "text"),
    [(23_200_000, "232000.00"), (0, "0.00"), (5, "0.05"), (150, "1.50"), (-150, "-1.50"), (-5, "-0.05")],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_cents_reads_back_to_the_same_cents(cents: int) -> None:
    assert to_cents(parse_euros(format_cents(cents))) == cents
