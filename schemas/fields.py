"""The type of every known field of each kind, as msgspec structs (FORMATS.md §2–§3).

They accept what any version writes: a legacy record (``name`` for ``description``, ``alert``
0/1, digit identifiers as numbers, legacy timestamps) as well as a canonical one. They only
check; ``schemas.parse`` converts what the versions write differently. Unknown fields are not
theirs to judge (msgspec skips them), and the record itself is kept, not replaced by a struct:
its unknown fields and its key order are part of it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta, Struct

from schemas.kinds import Kind

__all__ = ["FIELDS", "in_field_order"]

Id64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
"""An id the log stores as a number (the record's, its organisation's, its event type's)."""
Digits = str | Annotated[int, Meta(ge=0)] | None
"""A digit identifier (``iccid``, ``imsi``, ``msisdn``, ``imei``): a string, or a number."""
Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A finite number (NaN fails both bounds)."""
Number = int | Finite | None
Stamp = datetime | None
"""A timestamp: msgspec checks it is one (RFC 3339, digits and calendar); its layout is
checked (and made canonical) by ``schemas.timestamps``."""


class _Fields(Struct, gc=False):  # never in a cycle: spare the collector
    """Fields in the order the checks name the first one at fault (see ``in_field_order``)."""


class Identified(_Fields):
    id: int | None = None


class Described(_Fields):
    id: int
    description: str | None = None


class EventType(_Fields):
    id: Id64
    description: str | None = None


class Renamed(_Fields):
    """``{id, description}``, or ``{id, name}`` as old/migrated write it (``name`` is checked
    where it becomes the description)."""

    id: int
    description: str | None = None


class Organisation(_Fields):
    id: Id64


class Sim(_Fields):
    id: int | None = None
    iccid: Digits = None
    msisdn: Digits = None
    production_date: Stamp = None


class EventEndpoint(_Fields):
    """An event's endpoint: anything beyond ``id`` and ``imei`` is free-form."""

    id: int | None = None
    imei: Digits = None


class Imsi(_Fields):
    id: int | None = None
    imsi: Digits = None
    import_date: Stamp = None


class Event(_Fields, kw_only=True):
    id: Id64
    timestamp: datetime
    event_type: EventType
    event_severity: Described | None = None
    event_source: Renamed | None = None
    organisation: Organisation
    alert: bool | Literal[0, 1] | None = None
    description: str | None = None
    endpoint: EventEndpoint | None = None
    sim: Sim | None = None
    imsi: Imsi | None = None
    user: Identified | None = None


class Volume(_Fields):
    total: Number = None
    rx: Number = None
    tx: Number = None


class Operator(_Fields):
    id: int | None = None
    country: Identified | None = None


class Tariff(_Fields):
    id: int | None = None
    ratezone: Identified | None = None


class Balance(_Fields):
    amount: Number = None
    last_updated: Stamp = None
    expiry_date: Stamp = None
    currency: Identified | None = None


class UsageEndpoint(_Fields):
    id: int | None = None
    imei: Digits = None
    balance: Balance | None = None


class Usage(_Fields, kw_only=True):
    id: Id64
    start_timestamp: datetime
    end_timestamp: datetime
    cost: Number = None
    volume: Volume
    traffic_type: Renamed
    organisation: Organisation
    currency: Identified | None = None
    operator: Operator | None = None
    tariff: Tariff | None = None
    endpoint: UsageEndpoint | None = None
    sim: Sim | None = None
    imsi: Digits = None
    imsi_id: int | None = None


FIELDS: dict[Kind, Any] = {Kind.EVENT: Event, Kind.USAGE: Usage}
"""The struct each kind's records are checked against."""


def in_field_order(value: Any, fields: Any) -> Any:
    """``value`` with the keys ``fields`` (a struct) knows first, in the struct's order, a
    required one that is absent as null (both are "required" to the reader), and so in every
    object below: msgspec names the first field at fault in the order it meets them, which is
    then the same whatever order the producer wrote them in."""
    if type(value) is not dict:
        return value
    ordered = {}
    for name, (inner, required) in _INNER[fields].items():
        if name in value:
            ordered[name] = in_field_order(value[name], inner)
        elif required:
            ordered[name] = None
    for name, inner_value in value.items():  # the others after them
        ordered.setdefault(name, inner_value)
    return ordered


def _inner(fields: Any) -> dict[str, tuple[Any, bool]]:
    """The fields of a struct, each with the struct its value is checked against (if any) and
    whether it is required."""
    found = {}
    for field in msgspec.structs.fields(fields):
        kinds = [field.type, *get_args(field.type)]
        inner = next((k for k in kinds if isinstance(k, type) and issubclass(k, Struct)), None)
        found[field.name] = (inner, field.required)
    return found


_STRUCTS = (Identified, Described, EventType, Renamed, Organisation, Sim, EventEndpoint, Imsi)
_INNER: dict[Any, dict[str, tuple[Any, bool]]] = {
    fields: _inner(fields)
    for fields in (*_STRUCTS, Event, Volume, Operator, Tariff, Balance, UsageEndpoint, Usage)
}
_INNER[None] = {}
