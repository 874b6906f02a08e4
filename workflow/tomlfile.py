"""Strict reading of the TOML files users write (campaigns, projects, settings).

A `Section` reads typed keys from one table and reports any problem as a `MalformedFileError` naming the file
and the dotted key at fault. Unknown keys are refused: a misspelt deadline would otherwise be silently
never enforced.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from states.errors import MalformedFileError
from states.money import parse_euros

#: Larger files are refused before parsing: no legitimate campaign or project file comes near it.
MAX_FILE_BYTES = 1_000_000


def load_toml(path: Path) -> dict[str, Any]:
    """Read and parse a TOML file, turning every failure into a one-line `MalformedFileError`."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MalformedFileError(str(path), None, f"file too large ({size} bytes, at most {MAX_FILE_BYTES})")
        raw = path.read_bytes()
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


def has_control_characters(text: str) -> bool:
    """Tell whether `text` holds a control, format or separator character (NUL, line breaks, escapes)."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so that a message stays on one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class Section:
    """One TOML table being read; every key read is ticked off so that `finish` can refuse the others."""

    def __init__(self, path: str, data: dict[str, Any], prefix: str = "") -> None:
        self.path = path
        self._data = data
        self._prefix = prefix
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        """Return the dotted name of `name` in this section, for messages."""
        return f"{self._prefix}{name}"

    def fail(self, name: str | None, problem: str) -> MalformedFileError:
        """Build the error for key `name` (or for the section itself)."""
        where = self.key(name) if name else (self._prefix.rstrip(".") or None)
        return MalformedFileError(self.path, printable(where) if where else None, problem)

    def has(self, name: str) -> bool:
        """Tell whether the key is present."""
        return name in self._data

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        if name not in self._data:
            if required:
                raise self.fail(name, "missing")
            return None
        return self._data[name]

    def text(self, name: str, *, required: bool = True, max_length: int = 500) -> str | None:
        """Read a non-empty string of at most `max_length` characters."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {_kind(value)}")
        value = value.strip()
        if not value:
            raise self.fail(name, "must not be empty")
        if has_control_characters(value):
            raise self.fail(name, "must not contain control characters (line breaks, NUL, escapes)")
        if len(value) > max_length:
            raise self.fail(name, f"longer than {max_length} characters")
        return value

    def req_text(self, name: str, *, max_length: int = 500) -> str:
        """Read a required non-empty string."""
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None
        return value

    def integer(self, name: str, *, required: bool = True, minimum: int = 0, maximum: int = 10**9) -> int | None:
        """Read an integer within [minimum, maximum]."""
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, not {_kind(value)}")
        if not minimum <= value <= maximum:
            raise self.fail(name, f"{value} is out of range ({minimum} to {maximum})")
        return value

    def req_integer(self, name: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
        """Read a required integer within [minimum, maximum]."""
        value = self.integer(name, required=True, minimum=minimum, maximum=maximum)
        assert value is not None
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        """Read a boolean, `default` when absent."""
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {_kind(value)}")
        return value

    def amount(self, name: str, *, required: bool = True, maximum: Decimal | None = None) -> Decimal | None:
        """Read a non-negative decimal (integer or decimal string; TOML floats are refused)."""
        value = self._get(name, required)
        if value is None:
            return None
        try:
            amount = parse_euros(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None
        if amount < 0:
            raise self.fail(name, f"{amount} is negative")
        if maximum is not None and amount > maximum:
            raise self.fail(name, f"{amount} is larger than {maximum}")
        return amount

    def date(self, name: str, *, required: bool = True) -> date | None:
        """Read a TOML local date (2021-03-31)."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, date) or hasattr(value, "hour"):
            raise self.fail(name, f"must be a date written 2021-03-31 (no quotes, no time), not {_kind(value)}")
        return value

    def list_of(self, name: str, kind: type, *, required: bool = True) -> list[Any] | None:
        """Read an array whose items are all of `kind` (bool never passes for int)."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.fail(name, f"must be an array, not {_kind(value)}")
        for index, item in enumerate(value):
            if (isinstance(item, bool) and kind is not bool) or not isinstance(item, kind):
                raise self.fail(f"{name}[{index}]", f"must be {kind.__name__}, not {_kind(item)}")
        return value

    def raw(self, name: str, *, required: bool = True) -> Any:
        """Read a value of any type (the caller checks it)."""
        return self._get(name, required)

    def table(self, name: str, *, required: bool = True) -> Section | None:
        """Read a sub-table as a `Section`."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table, not {_kind(value)}")
        return Section(self.path, value, f"{self.key(name)}.")

    def req_table(self, name: str) -> Section:
        """Read a required sub-table."""
        section = self.table(name, required=True)
        assert section is not None
        return section

    def tables(self, name: str, *, required: bool = True) -> Iterator[Section]:
        """Read an array of tables (`[[name]]`) as `Section`s named `name[i]`."""
        value = self._get(name, required)
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.fail(name, f"must be an array of tables ([[{self.key(name)}]])")
        for index, item in enumerate(value):
            yield Section(self.path, item, f"{self.key(name)}[{index}].")

    def finish(self) -> None:
        """Refuse any key that was not read."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def _kind(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    for kind, label in names.items():
        if type(value) is kind:
            return label
    return type(value).__name__
