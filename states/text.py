"""Text as the programme stores it: one maximum length per field, and no character that hides or breaks a line.

The limits are the columns' sizes in both databases and the checks of every front end: one number per field, so
that what a command accepts is what the database holds (a longer value is bad input, never a driver error).
"""

from __future__ import annotations

import unicodedata
from typing import Final

#: Maximum lengths, in characters, of the text a project and its history keep.
FIELD_LIMITS: Final[dict[str, int]] = {
    "name": 200,  # a project's, an organisation's or an ESMS's name
    "owner_name": 200,
    "owner_email": 254,  # RFC 5321's longest path
    "category": 64,
    "needs_reference": 200,
    "vendor": 200,
    "configuration_invoice": 200,
    "rollout_invoice": 200,
    "withdrawal_reason": 1000,
    "actor": 200,  # a person named in the audit: the actor, an approver
    "reason": 2000,  # the reason of a change, in the audit
}
#: An event parameter kept only in the audit log (a repayment reference, a usage value).
PARAM_LIMIT: Final = 1000

#: Unicode categories refused in any text a user gives: controls (NUL, line breaks, escapes such as U+009B),
#: formats (RTL overrides such as U+202E, zero-width characters) and line or paragraph separators (U+2028).
REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def has_control_characters(text: str) -> bool:
    """Tell whether `text` holds a control, format or separator character (NUL, line breaks, RTL overrides…)."""
    return any(unicodedata.category(c) in REFUSED_CATEGORIES for c in text)


def plural(count: int, one: str, many: str) -> str:
    """`count` and the word that goes with it, in French (0 and 1 take the singular)."""
    return f"{count} {one if count <= 1 else many}"
