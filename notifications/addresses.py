"""E-mail addresses: checked once where they are read, stored normalised, and used verbatim for `RCPT TO` and `To`.

`email-validator` does the checking: a plain addr-spec only (no comment such as `root(x@evil.com`, no group or
display name such as `anything:victim@evil.com`, no quoted local part, no IP literal), no control or format
character (RTL overrides, zero-width spaces). No network: deliverability is the mail server's business.
"""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

#: RFC 5321's longest path.
MAX_ADDRESS = 254
#: A top-level domain of letters (or an IDNA one): `a@b`, `a@b.c` and `a@b.c1` are typos, not addresses.
_TOP_LEVEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
#: What a display name may not hold: what would end it or start another address in a header.
_NAME_BREAKERS = frozenset('<>,;:"@()[]\\')


class AddressError(ValueError):
    """A value that is not an address we send to; the message says why, in one line."""


def mail_address(value: str) -> str:
    """The normalised addr-spec for `value` (domain lower-cased, in ASCII when the local part is), or AddressError.

    The result is what is stored and what goes, unchanged, into `RCPT TO` and `To`.
    """
    if len(value) > MAX_ADDRESS:
        raise AddressError(f"longer than {MAX_ADDRESS} characters")
    try:
        checked = validate_email(
            value,
            check_deliverability=False,
            # `.example`, `.invalid` and `.test` are how the programme's documents and tests name addresses.
            globally_deliverable=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_empty_local=False,
        )
    except EmailNotValidError as error:
        raise AddressError(" ".join(str(error).split())) from None
    if not _TOP_LEVEL.fullmatch(checked.ascii_domain.rsplit(".", 1)[-1]) or "." not in checked.ascii_domain:
        raise AddressError("the part after the @-sign needs a top-level domain such as .fr")
    return checked.ascii_email or checked.normalized


def is_normalised_address(value: str) -> bool:
    """True when `value` is an address exactly as `mail_address` stores it (the relay sends nothing else)."""
    try:
        return mail_address(value) == value
    except AddressError:
        return False


def mailbox(value: str) -> str:
    """A sender such as `ESMS numérique <no-reply@ars.example>` or a bare address, normalised, or AddressError."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise AddressError(f"holds a control or format character (U+{ord(char):04X})")
    text = value.strip()
    if not text.endswith(">"):
        return mail_address(text)
    name, bracket, address = text[:-1].rpartition("<")
    if not bracket:
        raise AddressError("a '>' without its '<'")
    name = " ".join(name.split())
    if any(char in _NAME_BREAKERS for char in name):
        raise AddressError(f"the name before <…> may not hold any of {''.join(sorted(_NAME_BREAKERS))}")
    normalised = mail_address(address.strip())
    return f"{name} <{normalised}>" if name else normalised


def envelope_sender(value: str) -> str:
    """The addr-spec of a `mailbox` (what goes into `MAIL FROM`)."""
    return value[:-1].rpartition("<")[2] if value.endswith(">") else value
