"""Strict reading of the TOML files users write (campaigns, projects, settings).

`load_toml` reads and parses a file. Each file's schema is a pydantic model (`StrictModel`: unknown keys are
refused, since a misspelt deadline would otherwise be silently never enforced) whose fields use the readers
below (`text`, `integer`, `cents`…): they refuse what a hand-written file gets wrong in our own words, floats
for money included. `malformed` turns the `ValidationError` into a one-line `MalformedFileError` naming the
file and the dotted key at fault (`funding.tranches[1]`).
"""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from states.errors import MalformedFileError
from states.money import parse_euros, to_cents
from states.text import has_control_characters

#: Larger files are refused before parsing: no legitimate campaign or project file comes near it.
MAX_FILE_BYTES = 1_000_000
#: The type of the validation errors our readers raise: the problem is said in `ctx["problem"]`.
PROBLEM = "esms_problem"
#: Raised by `tables`: the message names the full key, which only `malformed` knows.
ARRAY_OF_TABLES = "esms_array_of_tables"

Location = tuple[str | int, ...]


def load_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file, turning every failure into a one-line `MalformedFileError`."""
    try:
        status = path.stat()
        # A device (/dev/zero) or a FIFO would be read forever: only regular files are opened.
        if not stat.S_ISREG(status.st_mode):
            kind = "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file"
            raise MalformedFileError(str(path), None, f"is {kind}, not a file")
        if status.st_size > MAX_FILE_BYTES:
            raise MalformedFileError(
                str(path), None, f"file too large ({status.st_size} bytes, at most {MAX_FILE_BYTES})"
            )
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows between stat and read
        if len(raw) > MAX_FILE_BYTES:
            raise MalformedFileError(str(path), None, f"file too large (more than {MAX_FILE_BYTES} bytes)")
    except FileNotFoundError:
        raise MalformedFileError(str(path), None, "no such file") from None
    except IsADirectoryError:
        raise MalformedFileError(str(path), None, "is a directory, not a file") from None
    except OSError as exc:
        raise MalformedFileError(str(path), None, f"cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFileError(str(path), None, f"not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MalformedFileError(str(path), None, f"not valid TOML ({exc})") from None
    except RecursionError:
        raise MalformedFileError(str(path), None, "not valid TOML (arrays or tables nested too deeply)") from None


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so that a message stays on one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# --- the schema ----------------------------------------------------------------------------------------------


class StrictModel(BaseModel):
    """One table of a file: unknown keys refused, no type coercion (`"3"` is not 3, `true` is not 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def problem(text: str, *at: str | int) -> PydanticCustomError:
    """The error a reader or validator raises: `text` is the problem; `at`, a key below the field's own."""
    return PydanticCustomError(PROBLEM, "{problem}", {"problem": text, "at": at})


def kind_of(value: object) -> str:
    """Name the TOML type of `value` for a message: `a string`, `an array`…."""
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def read_text(value: object, max_length: int = 500) -> str:
    """Read a non-empty string of at most `max_length` characters, without control characters."""
    if not isinstance(value, str):
        raise problem(f"must be a string, not {kind_of(value)}")
    value = value.strip()
    if not value:
        raise problem("must not be empty")
    if has_control_characters(value):
        raise problem("must not contain control characters (line breaks, NUL, escapes)")
    if len(value) > max_length:
        raise problem(f"longer than {max_length} characters")
    return value


def read_integer(value: object, minimum: int, maximum: int) -> int:
    """Read an integer within [minimum, maximum] (a boolean is not one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise problem(f"must be an integer, not {kind_of(value)}")
    if not minimum <= value <= maximum:
        raise problem(f"{value} is out of range ({minimum} to {maximum})")
    return value


def read_boolean(value: object) -> bool:
    """Read true or false."""
    if not isinstance(value, bool):
        raise problem(f"must be true or false, not {kind_of(value)}")
    return value


def read_amount(value: object, maximum: Decimal | None = None) -> Decimal:
    """Read a non-negative decimal: an integer or a decimal string; TOML floats are refused (they are inexact)."""
    try:
        amount = parse_euros(value)
    except ValueError as exc:
        raise problem(str(exc)) from None
    if amount < 0:
        raise problem(f"{amount} is negative")
    if maximum is not None and amount > maximum:
        raise problem(f"{amount} is larger than {maximum}")
    return amount


def read_cents(value: object, maximum: Decimal | None = None) -> int:
    """Read an amount of euros as integer cents, refusing fractions of a cent."""
    try:
        return to_cents(read_amount(value, maximum))
    except ValueError as exc:
        raise problem(str(exc)) from None


def read_date(value: object) -> date:
    """Read a TOML local date (2021-03-31): not a string, not a date with a time."""
    if not isinstance(value, date) or hasattr(value, "hour"):
        raise problem(f"must be a date written 2021-03-31 (no quotes, no time), not {kind_of(value)}")
    return value


def text(max_length: int = 500) -> PlainValidator:
    """The validator of a string field of at most `max_length` characters (see `read_text`)."""
    return PlainValidator(lambda value: read_text(value, max_length))


def integer(minimum: int, maximum: int) -> PlainValidator:
    """The validator of an integer field within [minimum, maximum]."""
    return PlainValidator(lambda value: read_integer(value, minimum, maximum))


def amount(maximum: Decimal | None = None) -> PlainValidator:
    """The validator of a non-negative decimal field (a `Decimal`)."""
    return PlainValidator(lambda value: read_amount(value, maximum))


def cents(maximum: Decimal | None = None) -> PlainValidator:
    """The validator of an amount of euros held as integer cents."""
    return PlainValidator(lambda value: read_cents(value, maximum))


def item(kind: type[Any]) -> PlainValidator:
    """The validator of one item of an array of `kind` (a boolean never passes for an integer)."""

    def check(value: object) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise problem(f"must be {kind.__name__}, not {kind_of(value)}")
        return value

    return PlainValidator(check)


def array(value: object) -> object:
    """Before validator of an array field: anything but an array is refused in our words."""
    if not isinstance(value, list):
        raise problem(f"must be an array, not {kind_of(value)}")
    return value


def tables(value: object) -> object:
    """Before validator of an array of tables (`[[organisations]]`)."""
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise PydanticCustomError(ARRAY_OF_TABLES, "must be an array of tables")
    return value


# --- the messages --------------------------------------------------------------------------------------------


def dotted(location: Location) -> str:
    """Write a location as our messages do: `organisations[0].esms[2].finess`."""
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else part
    return key


def malformed(path: Path | str, error: ValidationError) -> MalformedFileError:
    """Turn a file's `ValidationError` into the one-line `MalformedFileError` of its first fault.

    Faults come in reading order, the unknown keys of a table after its known ones (as the hand-written readers
    did); of several unknown keys in one table, the first in sorted order is named.
    """
    details = error.errors(include_url=False)
    first = details[0]
    if first["type"] == "extra_forbidden":
        parent = first["loc"][:-1]
        first = min(
            (d for d in details if d["type"] == "extra_forbidden" and d["loc"][:-1] == parent),
            key=lambda d: str(d["loc"][-1]),
        )
    location: Location = (*first["loc"], *first.get("ctx", {}).get("at", ()))
    key = dotted(location)
    return MalformedFileError(str(path), printable(key) if key else None, _problem(first, key))


def _problem(detail: ErrorDetails, key: str) -> str:
    kind = detail["type"]
    if kind == PROBLEM:
        return str(detail.get("ctx", {})["problem"])
    messages: dict[str, Callable[[], str]] = {
        "missing": lambda: "missing",
        "extra_forbidden": lambda: "unknown key",
        "model_type": lambda: f"must be a table, not {kind_of(detail['input'])}",
        ARRAY_OF_TABLES: lambda: f"must be an array of tables ([[{printable(key)}]])",
    }
    # Every field has one of our readers: pydantic's own wording would only show for a mistake in a schema.
    return messages.get(kind, lambda: detail["msg"])()
