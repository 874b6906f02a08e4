"""Jinja filters that write amounts, dates and percentages the French way, for the e-mails.

Pure functions, independent of the system locale: Babel carries its own CLDR data, so a server configured in
English (or with no French locale installed) still writes "1er avril 2021" and "232 000,00 €".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation, localcontext
from typing import Final

from babel.dates import format_date, get_month_names
from babel.numbers import format_currency

from states.money import CENTS_PER_EURO

LOCALE: Final = "fr_FR"

#: French month names, lowercase as in running text; index 0 is January.
MONTHS_FR: tuple[str, ...] = tuple(str(get_month_names("wide", locale=LOCALE)[month]) for month in range(1, 13))

NBSP = "\u00a0"


def euros(cents: int) -> str:
    """Format integer cents as French euros: ``23200000`` → ``232 000,00 €``.

    Thousands are separated by a narrow no-break space (U+202F) and the sign € follows a no-break space (U+00A0),
    so a mail client never wraps an amount. Anything but an integer is refused: money is never a float here.
    """
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"euros expects integer cents, not {type(cents).__name__} {cents!r}")
    return format_euros_fr(cents)


def date_fr(day: date) -> str:
    """Format a date in French running text: ``31 mars 2021``, ``1er avril 2021`` (ordinal for the first)."""
    # CLDR's French patterns write "1 avril": the ordinal of the first of the month is French usage it leaves out.
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {format_date(day, 'MMMM y', locale=LOCALE)}"


def percent(value: str | Decimal | int) -> str:
    """Format a percentage in French: ``40`` → ``40 %``, ``"33.33"`` → ``33,33 %`` (no-break space before %).

    Trailing zeros are dropped (``"40.00"`` → ``40 %``); floats are refused because they are inexact.
    """
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise TypeError(f"percent expects a decimal string, a Decimal or an int, not {type(value).__name__}")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    # Not Babel's `format_percent`: it takes a ratio (0.4), rounds to its pattern's digits and puts a narrow space
    # before %; here the value is already a percentage, written with exactly its own digits.
    exact = number.to_integral_value() if number == number.to_integral_value() else number.normalize()
    return f"{exact:f}".replace(".", ",") + f"{NBSP}%"


def format_euros_fr(cents: int) -> str:
    """Format cents the French way for people: 232 000,00 € (narrow no-break space between thousands)."""
    # Enough digits for any integer, so that neither the division nor Babel's rounding to the cent is inexact.
    with localcontext() as context:
        context.prec = max(context.prec, len(str(abs(cents))) + 2)
        return str(format_currency(Decimal(cents) / CENTS_PER_EURO, "EUR", locale=LOCALE))
