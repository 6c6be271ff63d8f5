"""Every way a record can be refused, as one small tree.

    RecordError              a record cannot be read; names the field and the reason
     ├── MalformedRecord     not JSON, not UTF-8, truncated, or not a JSON object (field "$")
     ├── MissingField        a required field is absent or null
     ├── WrongType           a field holds the wrong JSON type
     └── InvalidValue        the type is right but the value is not (a bad timestamp, ...)

``field`` is a dotted path into the record (``sim.iccid``, ``event_type.id``), or ``$`` for the
record as a whole. ``reason`` reads as a predicate of the field ("is required", "must be an
integer, not a string") or, for ``$``, of the record. ``index`` is the record's position in
its input (0-based) when the caller knows it; readers of many records set it.
"""

from __future__ import annotations

__all__ = ["InvalidValue", "MalformedRecord", "MissingField", "RecordError", "WrongType"]


class RecordError(ValueError):
    """A record that cannot be read, with the field at fault and the reason."""

    def __init__(self, field: str, reason: str, index: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.index = index
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = "" if self.index is None else f"record {self.index}: "
        what = self.reason if self.field == "$" else f"field {self.field!r} {self.reason}"
        return where + what

    def at(self, index: int) -> RecordError:
        """Return this error placed at position ``index`` of its input."""
        self.index = index
        self.args = (self.message,)  # str(error) names the position too
        return self


class MalformedRecord(RecordError):
    """The input is not a readable JSON object (invalid JSON or UTF-8, truncated, an array...)."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__("$", reason, index)


class MissingField(RecordError):
    """A required field is absent or null."""

    def __init__(self, field: str, index: int | None = None) -> None:
        super().__init__(field, "is required", index)


class WrongType(RecordError):
    """A field holds a JSON type it may not hold."""

    def __init__(self, field: str, expected: str, got: object, index: int | None = None) -> None:
        super().__init__(field, f"must be {expected}, not {json_type(got)}", index)


class InvalidValue(RecordError):
    """A field has the right type but a value that cannot be accepted."""


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
