"""Money: euros parsed exactly, held as integer cents, split into tranches that add up to the cent."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from states.errors import InvalidArgumentError

CENTS_PER_EURO = 100
#: No public envelope comes near this; it keeps every amount within a 64-bit column once in cents.
MAX_EUROS = Decimal(10) ** 15


def parse_euros(value: object) -> Decimal:
    """Parse an amount of euros from an integer or a decimal string; floats are refused (they are inexact).

    Raises ValueError with a short explanation.
    """
    if isinstance(value, bool | float):
        raise ValueError(f'{value!r} is a float; write an integer or a decimal string such as "3333.33"')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not amount.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return amount
    raise ValueError(f"{value!r} is not an amount (integer or decimal string)")


def decimal_places(value: Decimal) -> int:
    """How many decimals `value` really has (trailing zeros aside), computed without any rounding context."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite number")
    while exponent < 0 and digits and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return max(-exponent, 0)


def to_cents(euros: Decimal) -> int:
    """Convert euros to cents, refusing fractions of a cent and amounts beyond any budget."""
    # `adjusted()` reads the exponent without arithmetic: `abs()` of 1e999999999 would overflow the context.
    if not euros.is_finite() or euros.adjusted() >= MAX_EUROS.adjusted() or abs(euros) >= MAX_EUROS:
        raise ValueError(f"{euros} is out of range (less than {MAX_EUROS} euros)")
    if decimal_places(euros) > 2:  # checked exactly, before any arithmetic that could round or underflow
        raise ValueError(f"{euros} has a fraction of a cent")
    # Exact arithmetic: the default 28-digit context would round a long amount before the check below.
    cents = euros.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"{euros} has a fraction of a cent")
    return int(cents)


def format_cents(cents: int) -> str:
    """Format cents as a plain euro string with two decimals: 232000.00 (JSON, logs)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), CENTS_PER_EURO)
    return f"{sign}{whole}.{part:02d}"


def split_tranches(total_cents: int, percents: list[Decimal]) -> list[int]:
    """Split `total_cents` by `percents` (adding up to 100); the last tranche takes the rounding remainder.

    Each tranche but the last is rounded down to the cent, so no tranche is ever overpaid before the last.
    """
    if sum(percents, Decimal(0)) != 100:
        raise ValueError(f"tranche percentages add up to {sum(percents, Decimal(0))}, not 100")
    amounts = [int((Decimal(total_cents) * p / 100).to_integral_value(rounding=ROUND_DOWN)) for p in percents[:-1]]
    amounts.append(total_cents - sum(amounts))
    return amounts


#: A number as people type it in a parameter: ASCII digits, one optional decimal point (or French comma), an
#: optional minus sign. No exponent, no other script's digits, no "1_000": what is read is what was meant.
PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,18})?")


def parse_plain_decimal(text: str) -> Decimal | None:
    """Read a plain ASCII decimal (`86`, `62.5`, the French `62,5`, `-1`), or None when `text` is anything else."""
    text = text.strip().replace(",", ".")
    if not PLAIN_DECIMAL.fullmatch(text):
        return None
    return Decimal(text)


def parse_amount_param(event: str, name: str, text: str) -> int:
    """Read an amount of euros given as an event parameter (`amount=1500.50`) into cents; malformed is bad input.

    The sign is read, so that `-5` is refused by the rule on amounts (more than zero), not as a typing error.
    """
    value = parse_plain_decimal(text)
    if value is None or decimal_places(value) > 2:
        raise InvalidArgumentError(f"{event}: {name}={text!r} is not an amount in euros such as 1500 or 1500.50")
    return to_cents(value)
