"""Calendar files (RFC 5545) attached to reminders, so an owner can put a deadline in their diary in one click.

A deadline is a whole day in the campaign's time zone, so it is written as an all-day event (``VALUE=DATE``,
floating: every calendar shows it on that day wherever it is), with a display alarm the day before.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

PRODID = "-//ESMS numerique//workflow//FR"
#: RFC 5545 §3.1: a content line should not be longer than 75 octets, excluding the line break.
MAX_LINE_OCTETS = 75
CRLF = "\r\n"


def escape_text(value: str) -> str:
    r"""Escape a TEXT value (RFC 5545 §3.3.11): ``\`` ``;`` ``,`` are backslashed, any line break becomes ``\n``.

    Other control characters, which TEXT does not allow (only HTAB is), become spaces.
    """
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(" " if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F else ch for ch in escaped)


def fold_line(line: str) -> str:
    """Fold a content line into physical lines of at most 75 octets (RFC 5545 §3.1), joined by CRLF + space.

    The split is made between characters, never inside the UTF-8 sequence of one character; each continuation
    line starts with one space, which counts towards its 75 octets. Unfolding (removing every CRLF followed by a
    space) gives the line back.
    """
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for character in line:
        octets = len(character.encode("utf-8"))
        if size + octets > MAX_LINE_OCTETS:
            pieces.append("".join(current))
            current, size = [], 1  # the leading space of the continuation line
        current.append(character)
        size += octets
    pieces.append("".join(current))
    return (CRLF + " ").join(pieces)


def _date_value(day: date) -> str:
    """Write a DATE value, YYYYMMDD (strftime's %Y does not pad years before 1000 on every platform)."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def deadline_event(uid: str, day: date, summary: str, description: str, stamp: datetime) -> str:
    """Return a VCALENDAR holding one all-day event on `day`, with a display reminder one day before.

    `uid` must be globally unique and stable for the same deadline of the same project (so a second reminder
    updates the event rather than adding one); `stamp` is the timezone-aware instant the file is made, written
    in UTC. Lines end with CRLF and are folded at 75 octets.
    """
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise ValueError(f"stamp must be timezone-aware, not naive {stamp.isoformat()}")
    if isinstance(day, datetime):
        raise TypeError("day must be a date, not a datetime: a deadline is a whole day")
    utc = stamp.astimezone(UTC)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid)}",
        f"DTSTAMP:{_date_value(utc)}T{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z",
        f"DTSTART;VALUE=DATE:{_date_value(day)}",
        f"DTEND;VALUE=DATE:{_date_value(day + timedelta(days=1))}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
        "TRANSP:TRANSPARENT",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        f"DESCRIPTION:{escape_text(summary)}",
        "TRIGGER:-P1D",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold_line(line) + CRLF for line in lines)
