"""Record kinds, format versions and output shapes, and how a record tells which it is."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from schemas.errors import InvalidValue, MalformedRecord, json_type

__all__ = ["NULLABLE_ROOTS", "Kind", "Shape", "Version", "detect_kind", "detect_version"]

Record = dict[str, Any]
"""A record as a JSON object. The canonical form is the ``new`` shape (FORMATS.md §3)."""


class Kind(StrEnum):
    EVENT = "event"
    USAGE = "usage"

    @property
    def article(self) -> str:
        """The kind with its article, for messages: "an event", "a usage"."""
        return f"an {self}" if self is Kind.EVENT else f"a {self}"


class Version(StrEnum):
    """Format versions: ``old`` (the old system), ``migrated`` ("Deprecated Format"), ``new``."""

    OLD = "old"
    MIGRATED = "migrated"
    NEW = "new"


class Shape(StrEnum):
    """``full`` for Webhook and Kinesis; ``keen`` for KeenIO's reduced old/migrated shape."""

    FULL = "full"
    KEEN = "keen"


NULLABLE_ROOTS: Mapping[Kind, tuple[str, ...]] = {
    Kind.EVENT: ("endpoint", "sim", "imsi", "user", "detail"),
    Kind.USAGE: ("endpoint", "sim", "imsi", "imsi_id"),
}
"""Root entities that ``old`` omits when null and ``migrated``/``new`` write as ``null``."""

_MAIN_TIMESTAMP = {Kind.EVENT: "timestamp", Kind.USAGE: "start_timestamp"}


def detect_kind(record: object) -> Kind:
    """Tell an event (``event_type``) from a usage record (``traffic_type`` and ``volume``).

    A record with only one of ``traffic_type`` and ``volume`` is usage that lacks the other
    (the parser names it); a record with none of the three is refused as a whole.
    """
    if not isinstance(record, dict):
        raise MalformedRecord(f"must be a JSON object, not {json_type(record)}")
    if "event_type" in record:
        return Kind.EVENT
    if "traffic_type" in record or "volume" in record:
        return Kind.USAGE
    raise InvalidValue(
        "$", "is neither an event (no 'event_type') nor usage (no 'traffic_type' and 'volume')"
    )


def detect_version(record: Mapping[str, Any], kind: Kind) -> Version:
    """Tell the version a record was written in, from its main timestamp.

    ISO timestamps (``T``) mean ``new``. The space-separated form means ``old`` or ``migrated``,
    which read the same; a record is called ``old`` when it omits a null root entity or carries
    KeenIO's ``keen`` object, and ``migrated`` otherwise.
    """
    stamp = record.get(_MAIN_TIMESTAMP[kind])
    if not isinstance(stamp, str) or len(stamp) < 11 or stamp[10] != " ":
        return Version.NEW
    if "keen" in record or any(name not in record for name in NULLABLE_ROOTS[kind]):
        return Version.OLD
    return Version.MIGRATED
