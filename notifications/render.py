"""Turn a message name and its context into the subject, text and HTML parts of an e-mail.

Each message is two files in ``templates/``: ``<name>.txt``, whose first line is the subject, then one blank
line, then the text body; and ``<name>.html``, a complete HTML document. The HTML part is autoescaped, the text
part is not. Every variable must be given (``StrictUndefined``): a missing key fails loudly rather than sending
an e-mail with a hole in it.

The subject line is rendered on its own, from the first line of the source, then flattened to one line: a
project or owner name holding a line break can neither inject a mail header nor push part of the subject into
the body.
"""

from __future__ import annotations

import functools
import textwrap
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, Undefined, select_autoescape

from notifications.formatting import date_fr, euros, percent
from states import lifecycle

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"

#: The messages that can be rendered (the life cycle declares them); files whose name starts with "_" are shared
#: parts, not messages.
TEMPLATES: Final[tuple[str, ...]] = tuple(lifecycle.Template)

#: The two kinds of project, as the e-mails name them.
KIND_LABELS: Final[dict[str, str]] = {
    "acquisition": "acquisition d'un DUI",
    "compliance": "mise en conformité d'un DUI",
}

#: Kept by `one_line`: U+00A0 (before € and %), U+2007 (figure space), U+202F (thousands).
NO_BREAK_SPACES: Final = frozenset("\u00a0\u2007\u202f")

#: Given to the HTML part (for its <title>); a context may not use this key itself.
SUBJECT_KEY: Final = "subject"


@dataclass(frozen=True)
class Rendered:
    """One e-mail ready to send: a one-line subject, a plain-text part and an HTML part."""

    subject: str
    text: str
    html: str


_Value = TypeVar("_Value")


def _strict(function: Callable[[_Value], str]) -> Callable[[_Value], str]:
    """Make a filter raise jinja2.UndefinedError, like the rest of the template, when given a missing value."""

    @functools.wraps(function)
    def checked(value: _Value) -> str:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()  # documented hook of jinja2.Undefined
        return function(value)

    return checked


def _fail(message: str) -> None:
    """Stop rendering from a template (``{{ fail("…") }}``) when its data makes no sense."""
    raise ValueError(message)


@functools.cache
def _environment() -> Environment:
    """Build the Jinja environment once, on first use."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the code: no stat() of every file on every render
    )
    environment.filters["euros"] = _strict(euros)
    environment.filters["date_fr"] = _strict(date_fr)
    environment.filters["percent"] = _strict(percent)
    environment.globals["kind_labels"] = KIND_LABELS
    environment.globals["fail"] = _fail
    return environment


@functools.cache
def _text_templates(name: str) -> tuple[Template, Template]:
    """Compile the subject line and the body of ``<name>.txt`` as two templates."""
    environment = _environment()
    file_name = f"{name}.txt"
    assert environment.loader is not None
    source, filename, _ = environment.loader.get_source(environment, file_name)
    subject_source, separator, rest = source.partition("\n")
    if not subject_source.strip() or not separator or not rest.startswith("\n"):
        raise ValueError(f"template {file_name} must start with a subject line, then a blank line, then the body")
    # The comment swallows the subject line and the blank line without output, so errors in the body still
    # report the line numbers of the file.
    body_source = "{#\n\n#}" + rest[1:]
    globals_ = environment.make_globals(None)
    subject = Template.from_code(environment, environment.compile(subject_source, file_name, filename), globals_)
    body = Template.from_code(environment, environment.compile(body_source, file_name, filename), globals_)
    return subject, body


def one_line(text: str) -> str:
    """Collapse every run of whitespace and control characters to one space, and strip the ends.

    No-break spaces are kept: they belong to amounts and French punctuation, and cannot break a header.
    """
    words: list[str] = []
    current: list[str] = []
    for character in text:
        if (character.isspace() and character not in NO_BREAK_SPACES) or unicodedata.category(character) == "Cc":
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(character)
    if current:
        words.append("".join(current))
    return " ".join(words)


def render(template: str, context: Mapping[str, Any]) -> Rendered:
    """Render the message `template` (one of `TEMPLATES`) with `context`.

    The context is passed as is to both parts; the HTML part also receives ``subject`` (for its <title>).
    Raises ValueError for an unknown message name, a context using the reserved key ``subject`` or a value a
    template refuses (a selection group other than A-D, a negative ``days_left``), and jinja2.UndefinedError
    when the context lacks a key the templates use.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template}")
    if SUBJECT_KEY in context:
        raise ValueError(f"the context key {SUBJECT_KEY!r} is reserved: the subject comes from {template}.txt")
    subject_template, body_template = _text_templates(template)
    subject = one_line(subject_template.render(context))
    text = wrap_text(body_template.render(context))
    html = _environment().get_template(f"{template}.html").render({**context, SUBJECT_KEY: subject})
    return Rendered(subject=subject, text=text, html=html)


#: The width of a text part's lines: read comfortably in any mail client, quoted once without reflowing.
TEXT_WIDTH: Final = 72


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap each line longer than `width` at spaces, never inside a word or a URL (a longer one keeps its line).

    A list item (`- …`) or an indented line continues under its own text.
    """
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        stripped = line.lstrip(" ")
        indent = line[: len(line) - len(stripped)]
        hanging = indent + ("  " if stripped.startswith("- ") else "")
        lines.extend(
            textwrap.wrap(
                line,
                width=width,
                initial_indent="",
                subsequent_indent=hanging,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [line]
        )
    return "\n".join(lines)
