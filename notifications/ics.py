"""Calendar files (RFC 5545) attached to reminders, so an owner can put a deadline in their diary in one click.

A deadline is a whole day in the campaign's time zone, so it is written as an all-day event (``VALUE=DATE``,
floating: every calendar shows it on that day wherever it is), with a display alarm the day before. The
`icalendar` library writes the file (components, value types, CRLF line ends, folding at 75 octets); only the
escaping of TEXT values is ours (see `escape_text`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

from icalendar import Alarm, Calendar, Event, vText
from icalendar.parser import Contentline

PRODID: Final = "-//ESMS numerique//workflow//FR"


def escape_text(value: str) -> str:
    r"""Escape a TEXT value (RFC 5545 §3.3.11): ``\`` ``;`` ``,`` are backslashed, any line break becomes ``\n``.

    Other control characters, which TEXT does not allow (only HTAB is), become spaces. Written here rather than
    left to `icalendar`'s `vText`, which also reads a literal backslash-N in the text as a line break.
    """
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(" " if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F else ch for ch in escaped)


class _Text(vText):
    """A TEXT value that `icalendar` writes with `escape_text`."""

    def to_ical(self) -> bytes:
        """The escaped value, UTF-8."""
        return escape_text(str(self)).encode("utf-8")


def fold_line(line: str) -> str:
    """Fold a content line into physical lines of at most 75 octets (RFC 5545 §3.1), joined by CRLF + space.

    The split is made between characters, never inside the UTF-8 sequence of one character; unfolding (removing
    every CRLF followed by a space) gives the line back. This is the folding `icalendar` applies to the file.
    """
    # Contentline has no annotations in icalendar 7; it is the public way to its folding (`foldline` is deprecated).
    folded: bytes = Contentline(line).to_ical()  # type: ignore[no-untyped-call]
    return folded.decode("utf-8")


def deadline_event(uid: str, day: date, summary: str, description: str, stamp: datetime, *, sequence: int = 0) -> str:
    """Return a VCALENDAR holding one all-day event on `day`, with a display reminder one day before.

    `uid` must be globally unique and stable for the same deadline of the same project, and `sequence` grow with
    each new version of it (RFC 5546): a calendar then updates the one event instead of adding a copy per
    reminder. `stamp` is the timezone-aware instant the file is made, written in UTC. Lines end with CRLF and are
    folded at 75 octets.
    """
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise ValueError(f"stamp must be timezone-aware, not naive {stamp.isoformat()}")
    if isinstance(day, datetime):
        raise TypeError("day must be a date, not a datetime: a deadline is a whole day")
    calendar = Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", _Text(uid))
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("summary", _Text(summary))
    event.add("description", _Text(description))
    event.add("transp", "TRANSPARENT")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", _Text(summary))
    alarm.add("trigger", timedelta(days=-1))
    event.add_component(alarm)
    calendar.add_component(event)
    # Insertion order, as written above: VERSION and PRODID first, as some readers expect.
    return str(calendar.to_ical(sorted=False).decode("utf-8"))
