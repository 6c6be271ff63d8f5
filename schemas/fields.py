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
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from schemas.kinds import Kind

__all__ = ["FIELDS"]

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
    pass


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


class Event(_Fields):
    id: Id64
    timestamp: datetime
    event_type: EventType
    organisation: Organisation
    event_severity: Described | None = None
    event_source: Renamed | None = None
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


class Usage(_Fields):
    id: Id64
    start_timestamp: datetime
    end_timestamp: datetime
    volume: Volume
    traffic_type: Renamed
    organisation: Organisation
    cost: Number = None
    currency: Identified | None = None
    operator: Operator | None = None
    tariff: Tariff | None = None
    endpoint: UsageEndpoint | None = None
    sim: Sim | None = None
    imsi: Digits = None
    imsi_id: int | None = None


FIELDS: dict[Kind, Any] = {Kind.EVENT: Event, Kind.USAGE: Usage}
"""The struct each kind's records are checked against."""
