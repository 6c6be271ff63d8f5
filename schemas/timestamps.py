"""Timestamps: read any accepted form, write the canonical and the legacy form.

Canonical (``new``): ``2020-11-10T08:59:19Z``, or ``2020-11-10T08:59:19.123Z`` when the input
had a fraction; a fraction is kept to milliseconds (the platform's precision), finer digits are
cut. Legacy (``old``/``migrated``): ``2020-11-10 08:59:19``, UTC, no zone, no fraction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from schemas.errors import InvalidValue, WrongType

__all__ = ["canonical_timestamp", "legacy_timestamp"]

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z")
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
    if _CANONICAL.fullmatch(text):
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise _invalid(field, value) from None
        return text
    match = _ANY.fullmatch(value)
    if match is None:
        raise _invalid(field, value)
    date, time, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{time}{_offset(zone)}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid(field, value) from None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction is not None:
        text += "." + fraction[:3].ljust(3, "0")
    return text + "Z"


def legacy_timestamp(canonical: str) -> str:
    """Write a canonical timestamp in the old/migrated form (fraction dropped)."""
    return f"{canonical[:10]} {canonical[11:19]}"


def _offset(zone: str | None) -> str:
    if zone is None or zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def _invalid(field: str, value: str) -> InvalidValue:
    return InvalidValue(
        field, f"is {value!r}, not a timestamp like '2020-11-10T08:59:19Z' or '2020-11-10 08:59:19'"
    )
