"""Timestamps: read any accepted form, write the canonical and the legacy form.

Canonical (``new``): ``2020-11-10T08:59:19Z``, or ``2020-11-10T08:59:19.123Z`` when the input
had a fraction; a fraction is kept to milliseconds (the platform's precision), finer digits are
cut. Legacy (``old``/``migrated``): ``2020-11-10 08:59:19``, UTC, no zone, no fraction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from schemas.errors import InvalidValue, WrongType

__all__ = ["canonical_timestamp", "invalid_timestamp", "legacy_timestamp", "read_timestamp"]

_ANY = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", re.ASCII)


def canonical_timestamp(value: object, field: str) -> str:
    """Return ``value`` as a canonical timestamp, or raise naming ``field``.

    Accepts ``T`` or a space between date and time, a fraction of any length, and ``Z``,
    ``+0000`` or ``+00:00`` offsets (converted to UTC); no zone means UTC.
    """
    if not isinstance(value, str):
        raise WrongType(field, "a timestamp string", value)
    # The legacy form, the common case of old input, becomes a canonical candidate.
    text = f"{value[:10]}T{value[11:]}Z" if len(value) == 19 and value[10] == " " else value
    if _canonical_form(text):
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise invalid_timestamp(field, value) from None
        return text
    match = _ANY.fullmatch(value)
    if match is None:
        raise invalid_timestamp(field, value)
    date, time, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{time}{_offset(zone)}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid_timestamp(field, value) from None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction is not None:
        text += "." + fraction[:3].ljust(3, "0")
    return text + "Z"


def read_timestamp(value: object, field: str) -> str:
    """``canonical_timestamp`` of a value msgspec has read as an RFC 3339 timestamp (digits and
    calendar checked): the canonical and the legacy layout need no second look."""
    if type(value) is str:
        if value[10] == "T":
            if len(value) == 20 and value[19] == "Z":
                return value
            if len(value) == 24 and value[19] == "." and value[23] == "Z":
                return value
        elif len(value) == 19 and value[10] == " ":
            return f"{value[:10]}T{value[11:]}Z"
    return canonical_timestamp(value, field)


def _canonical_form(text: str) -> bool:
    """Whether ``text`` is laid out as a canonical timestamp (``fromisoformat`` checks the
    digits and the calendar)."""
    if text[4:17:3] != "--T::" or text[-1:] != "Z" or not text.isascii():
        return False
    return len(text) == 20 or (len(text) == 24 and text[19] == ".")


def legacy_timestamp(canonical: str) -> str:
    """Write a canonical timestamp in the old/migrated form (fraction dropped)."""
    return f"{canonical[:10]} {canonical[11:19]}"


def _offset(zone: str | None) -> str:
    if zone is None or zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def invalid_timestamp(field: str, value: str) -> InvalidValue:
    """The refusal of a text that is not a timestamp."""
    return InvalidValue(
        field, f"is {value!r}, not a timestamp like '2020-11-10T08:59:19Z' or '2020-11-10 08:59:19'"
    )
