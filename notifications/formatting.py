"""Jinja filters that write amounts, dates and percentages the French way, for the e-mails.

Pure functions, independent of the system locale: a server configured in English (or with no French locale
installed) still writes "1er avril 2021" and "232 000,00 €".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from states.money import CENTS_PER_EURO

#: French month names, lowercase as in running text; index 0 is January.
MONTHS_FR: tuple[str, ...] = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

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
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS_FR[day.month - 1]} {day.year}"


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
    exact = number.to_integral_value() if number == number.to_integral_value() else number.normalize()
    return f"{exact:f}".replace(".", ",") + f"{NBSP}%"


def format_euros_fr(cents: int) -> str:
    """Format cents the French way for people: 232 000,00 € (narrow no-break space between thousands)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), CENTS_PER_EURO)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{part:02d}\u00a0€"
