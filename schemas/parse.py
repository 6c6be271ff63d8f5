"""Read a record of any version into the canonical form (the ``new`` shape, FORMATS.md §3).

msgspec checks the type of every known field, in C, against ``schemas.fields``; a record it
refuses is refused here naming the field at fault and the reason. What is left is done here:
normalising what the versions write differently (FORMATS.md §2.2): timestamps to canonical ISO
form, ``alert`` 0/1 to a boolean, ``name`` to ``description`` in ``event_source`` and
``traffic_type``, digit identifiers (``iccid``, ``imsi``, ``msisdn``, ``imei``) to strings, and
absent null root entities and unset balance values to ``null``. Severity descriptions are kept
exactly as given (``Info``, ``WARN``, …: the platform writes both). Unknown fields are kept as
they are. KeenIO's own ``keen`` object is dropped: it only repeats ``start_timestamp``.

It works in place on the object it is given (the caller hands over ownership) and returns it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.errors import (
    InvalidValue,
    MalformedRecord,
    MissingField,
    RecordError,
    WrongType,
    json_type,
)
from schemas.fields import FIELDS, in_field_order
from schemas.kinds import NULLABLE_ROOTS, Kind, Record, Version, detect_kind, detect_version
from schemas.timestamps import canonical_timestamp, invalid_timestamp, read_timestamp

__all__ = ["parse_record"]

_convert = msgspec.convert


def parse_record(
    record: object, kind: Kind | None = None, version: Version | None = None
) -> Record:
    """Validate ``record`` and turn it into the canonical form, in place.

    ``kind`` and ``version``, when given, are what the caller expects; a record of the other
    kind, or in ``new`` form when a legacy version was asked for (or the reverse), is refused.
    """
    if type(record) is not dict:
        raise MalformedRecord(f"must be a JSON object, not {json_type(record)}")
    found = _kind(record, kind)
    if version is not None:
        seen = detect_version(record, found)
        if (seen is Version.NEW) != (version is Version.NEW):
            field = "timestamp" if found is Kind.EVENT else "start_timestamp"
            raise InvalidValue(field, f"is written in the {seen} format, not {version}")
    try:
        _convert(record, FIELDS[found])
    except msgspec.ValidationError:
        raise _refusal(record, found) from None
    if found is Kind.EVENT:
        _event(record)
    else:
        _usage(record)
    for name in NULLABLE_ROOTS[found]:
        if name not in record:
            record[name] = None
    return record


def _kind(record: Record, expected: Kind | None) -> Kind:
    """The kind of ``record``, which must be ``expected`` when that is given."""
    try:
        found = detect_kind(record)
    except InvalidValue:
        if expected is None:
            raise
        raise MissingField("event_type" if expected is Kind.EVENT else "traffic_type") from None
    if expected is not None and found is not expected:
        raise InvalidValue("$", f"is {found.article} record, not {expected.article} record")
    return found


def _event(r: Record) -> None:
    r["timestamp"] = read_timestamp(r["timestamp"], "timestamp")
    source = r.get("event_source")
    if source is not None and "name" in source:
        _renamed(source, "event_source.")
    alert = r.get("alert")
    if type(alert) is int:
        r["alert"] = alert == 1
    endpoint = r.get("endpoint")
    if endpoint is not None and type(endpoint.get("imei")) is int:
        endpoint["imei"] = str(endpoint["imei"])
    sim = r.get("sim")
    if sim is not None:
        _sim(sim)
    imsi = r.get("imsi")
    if imsi is not None:
        if type(imsi.get("imsi")) is int:
            imsi["imsi"] = str(imsi["imsi"])
        if imsi.get("import_date") is not None:
            imsi["import_date"] = read_timestamp(imsi["import_date"], "imsi.import_date")


def _usage(r: Record) -> None:
    r.pop("keen", None)
    r["start_timestamp"] = read_timestamp(r["start_timestamp"], "start_timestamp")
    r["end_timestamp"] = read_timestamp(r["end_timestamp"], "end_timestamp")
    if "name" in r["traffic_type"]:
        _renamed(r["traffic_type"], "traffic_type.")
    endpoint = r.get("endpoint")
    if endpoint is not None:
        if type(endpoint.get("imei")) is int:
            endpoint["imei"] = str(endpoint["imei"])
        balance = endpoint.get("balance")
        if balance is None:
            endpoint["balance"] = None
        else:
            _balance(balance)
    sim = r.get("sim")
    if sim is not None:
        _sim(sim)
    if type(r.get("imsi")) is int:
        r["imsi"] = str(r["imsi"])


def _balance(balance: Record) -> None:
    if balance.get("last_updated") is not None:
        stamp = balance["last_updated"]
        balance["last_updated"] = read_timestamp(stamp, "endpoint.balance.last_updated")
    if balance.get("expiry_date") is not None:
        stamp = balance["expiry_date"]
        balance["expiry_date"] = read_timestamp(stamp, "endpoint.balance.expiry_date")
    elif "expiry_date" not in balance:
        balance["expiry_date"] = None


def _sim(sim: Record) -> None:
    """Digit identifiers are strings everywhere; numbers of any length become their digits."""
    if type(sim.get("iccid")) is int:
        sim["iccid"] = str(sim["iccid"])
    if type(sim.get("msisdn")) is int:
        sim["msisdn"] = str(sim["msisdn"])
    if sim.get("production_date") is not None:
        sim["production_date"] = read_timestamp(sim["production_date"], "sim.production_date")


def _renamed(obj: Record, prefix: str) -> None:
    """``{id, name}`` (old/migrated) or ``{id, description}`` (new) → ``{id, description}``;
    a record holding both keeps ``description``."""
    name = obj.pop("name")
    if "description" in obj:
        return
    if name is not None and type(name) is not str:
        raise WrongType(prefix + "description", "a string", name)
    obj["description"] = name


_PHRASES = {
    "int": "an integer",
    "int | null": "an integer",
    "datetime": "a timestamp string",
    "datetime | null": "a timestamp string",
    "str | null": "a string",
    "object": "an object",
    "object | null": "an object",
    "bool | int | null": "a boolean or 0/1",
    "int | str | null": "a string of digits or a non-negative integer",
    "int | float | null": "a number",
}
"""What each of msgspec's type names means for a field, in the words of our errors."""
_MISSING = "Object missing required field `"


def _refusal(record: Record, kind: Kind) -> RecordError:
    """Why msgspec refused ``record``, naming the first field at fault in the order of
    ``schemas.fields`` (not the order the producer wrote the fields in)."""
    ordered = in_field_order(record, FIELDS[kind])
    try:
        _convert(ordered, FIELDS[kind])
    except msgspec.ValidationError as exc:
        return _explained(str(exc), ordered)
    raise AssertionError("msgspec accepted the record it refused")  # pragma: no cover


def _explained(message: str, record: Record) -> RecordError:
    """msgspec's refusal (``Expected `int`, got `str` - at `$.sim.id```) as a record error."""
    message, _, where = message.partition(" - at `$")
    path = [key for key in where.rstrip("`").split(".") if key]
    if message.startswith(_MISSING):
        return MissingField(".".join([*path, message[len(_MISSING) : -1]]))
    field = ".".join(path)
    value: Any = record
    for key in path:
        value = value[key]
    if value is None:
        return MissingField(field)
    if message.startswith("Invalid RFC3339"):  # what canonical_timestamp says, if it refuses
        canonical_timestamp(value, field)  # (it does, unless msgspec is the stricter)
        return invalid_timestamp(field, value)
    if message.startswith("Invalid enum value"):  # alert: an integer other than 0 and 1
        return WrongType(field, _PHRASES["bool | int | null"], value)
    expected, _, got = message.removeprefix("Expected `").partition("`")
    if got.startswith(", got"):
        return WrongType(field, _PHRASES.get(expected, f"of type {expected}"), value)
    if expected == "float":
        return InvalidValue(field, f"{value} is not a finite number")
    if type(value) is int and value < 0 and got == " >= 0":  # a digit identifier
        return WrongType(field, _PHRASES["int | str | null"], value)
    return InvalidValue(field, f"is {value}, which does not fit in 64 bits")
