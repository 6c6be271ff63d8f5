"""Read a record of any version into the canonical form (the ``new`` shape, FORMATS.md §3).

The parser checks the type of every known field and normalises what the versions write
differently (FORMATS.md §2.2): timestamps to canonical ISO form, ``alert`` 0/1 to a boolean,
``name`` to ``description`` in ``event_source`` and ``traffic_type``, severity descriptions to
upper case, digit identifiers (``iccid``, ``imsi``, ``msisdn``, ``imei``) to strings, and absent
null root entities and unset balance values to ``null``. Unknown fields are kept as they are.
KeenIO's own ``keen`` object is dropped: it only repeats ``start_timestamp``.

It works in place on the object it is given (the caller hands over ownership) and returns it.
"""

from __future__ import annotations

import math
from typing import Any

from schemas.errors import (
    InvalidValue,
    MalformedRecord,
    MissingField,
    RecordError,
    WrongType,
    json_type,
)
from schemas.kinds import NULLABLE_ROOTS, Kind, Record, Version, detect_kind, detect_version
from schemas.timestamps import canonical_timestamp

__all__ = ["parse_record"]

_MAX_ID = 2**63 - 1
_SEVERITIES = {"INFO": "INFO", "WARN": "WARN", "WARNING": "WARN", "CRITICAL": "CRITICAL"}


def parse_record(
    record: object, kind: Kind | None = None, version: Version | None = None
) -> Record:
    """Validate ``record`` and turn it into the canonical form, in place.

    ``kind`` and ``version``, when given, are what the caller expects; a record of the other
    kind, or in ``new`` form when a legacy version was asked for (or the reverse), is refused.
    """
    if type(record) is not dict:
        raise MalformedRecord(f"must be a JSON object, not {json_type(record)}")
    found = detect_kind(record)
    if kind is not None and found is not kind:
        raise RecordError("$", f"is a {found} record, not a {kind} record")
    if version is not None:
        seen = detect_version(record, found)
        if (seen is Version.NEW) != (version is Version.NEW):
            field = "timestamp" if found is Kind.EVENT else "start_timestamp"
            raise InvalidValue(field, f"is written in the {seen} format, not {version}")
    if found is Kind.EVENT:
        _event(record)
    else:
        _usage(record)
    for name in NULLABLE_ROOTS[found]:
        if name not in record:
            record[name] = None
    return record


def _event(r: Record) -> None:
    _id(r, "id", "")
    r["timestamp"] = canonical_timestamp(_required(r, "timestamp", ""), "timestamp")
    _described(_object(r, "event_type", "", required=True), "event_type.")
    severity = _object(r, "event_severity", "")
    if severity is not None:
        _described(severity, "event_severity.")
        text = severity.get("description")
        if text is not None:
            severity["description"] = _SEVERITIES.get(text.upper(), text)
    source = _object(r, "event_source", "")
    if source is not None:
        _renamed(source, "event_source.")
    _organisation(r)
    alert = r.get("alert")
    if alert is not None and type(alert) is not bool:
        if type(alert) is int and alert in (0, 1):
            r["alert"] = alert == 1
        else:
            raise WrongType("alert", "a boolean or 0/1", alert)
    _string(r, "description", "")
    endpoint = _object(r, "endpoint", "")
    if endpoint is not None:
        _endpoint(endpoint)
    _sim(r)
    imsi = _object(r, "imsi", "")
    if imsi is not None:
        _id(imsi, "id", "imsi.", required=False)
        _digits(imsi, "imsi", "imsi.")
        _timestamp(imsi, "import_date", "imsi.")
    user = _object(r, "user", "")
    if user is not None:
        _id(user, "id", "user.", required=False)


def _usage(r: Record) -> None:
    _id(r, "id", "")
    r.pop("keen", None)
    r["start_timestamp"] = canonical_timestamp(
        _required(r, "start_timestamp", ""), "start_timestamp"
    )
    r["end_timestamp"] = canonical_timestamp(_required(r, "end_timestamp", ""), "end_timestamp")
    _number(r, "cost", "")
    volume = _object(r, "volume", "", required=True)
    for key in ("total", "rx", "tx"):
        _number(volume, key, "volume.")
    _renamed(_object(r, "traffic_type", "", required=True), "traffic_type.")
    _organisation(r)
    _currency(r, "")
    operator = _object(r, "operator", "")
    if operator is not None:
        _id(operator, "id", "operator.", required=False)
        country = _object(operator, "country", "operator.")
        if country is not None:
            _id(country, "id", "operator.country.", required=False)
    tariff = _object(r, "tariff", "")
    if tariff is not None:
        _id(tariff, "id", "tariff.", required=False)
        ratezone = _object(tariff, "ratezone", "tariff.")
        if ratezone is not None:
            _id(ratezone, "id", "tariff.ratezone.", required=False)
    endpoint = _object(r, "endpoint", "")
    if endpoint is not None:
        _endpoint(endpoint)
        balance = _object(endpoint, "balance", "endpoint.")
        if balance is None:
            endpoint["balance"] = None
        else:
            _number(balance, "amount", "endpoint.balance.")
            _timestamp(balance, "last_updated", "endpoint.balance.")
            _timestamp(balance, "expiry_date", "endpoint.balance.")
            balance.setdefault("expiry_date", None)
            _currency(balance, "endpoint.balance.")
    _sim(r)
    _digits(r, "imsi", "")
    _id(r, "imsi_id", "", required=False)


def _required(obj: Record, key: str, prefix: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise MissingField(prefix + key)
    return value


def _object(obj: Record, key: str, prefix: str, required: bool = False) -> Any:
    value = obj.get(key)
    if type(value) is dict:
        return value
    if value is None and not required:
        return None
    if value is None:
        raise MissingField(prefix + key)
    raise WrongType(prefix + key, "an object", value)


def _id(obj: Record, key: str, prefix: str, required: bool = True) -> None:
    value = obj.get(key)
    if type(value) is int:
        if value > _MAX_ID or value < -_MAX_ID - 1:
            raise InvalidValue(prefix + key, f"{value} does not fit in 64 bits")
        return
    if value is None:
        if required:
            raise MissingField(prefix + key)
        return
    raise WrongType(prefix + key, "an integer", value)


def _number(obj: Record, key: str, prefix: str) -> None:
    value = obj.get(key)
    kind = type(value)
    if kind is int or value is None:
        return
    if kind is not float:
        raise WrongType(prefix + key, "a number", value)
    if not math.isfinite(value):
        raise InvalidValue(prefix + key, f"{value} is not a finite number")


def _string(obj: Record, key: str, prefix: str) -> None:
    value = obj.get(key)
    if value is not None and type(value) is not str:
        raise WrongType(prefix + key, "a string", value)


def _digits(obj: Record, key: str, prefix: str) -> None:
    """Digit identifiers are strings everywhere; numbers of any length become their digits."""
    value = obj.get(key)
    if value is None or type(value) is str:
        return
    if type(value) is int and value >= 0:
        obj[key] = str(value)
        return
    raise WrongType(prefix + key, "a string of digits or a non-negative integer", value)


def _timestamp(obj: Record, key: str, prefix: str) -> None:
    value = obj.get(key)
    if value is not None:
        obj[key] = canonical_timestamp(value, prefix + key)


def _described(obj: Record, prefix: str) -> None:
    _id(obj, "id", prefix)
    _string(obj, "description", prefix)


def _renamed(obj: Record, prefix: str) -> None:
    """``{id, name}`` (old/migrated) or ``{id, description}`` (new) → ``{id, description}``."""
    if "name" in obj and "description" not in obj:
        obj["description"] = obj.pop("name")
    _described(obj, prefix)


def _organisation(r: Record) -> None:
    _id(_object(r, "organisation", "", required=True), "id", "organisation.")


def _currency(obj: Record, prefix: str) -> None:
    currency = _object(obj, "currency", prefix)
    if currency is not None:
        _id(currency, "id", prefix + "currency.", required=False)


def _endpoint(endpoint: Record) -> None:
    _id(endpoint, "id", "endpoint.", required=False)
    _digits(endpoint, "imei", "endpoint.")


def _sim(r: Record) -> None:
    sim = _object(r, "sim", "")
    if sim is not None:
        _id(sim, "id", "sim.", required=False)
        _digits(sim, "iccid", "sim.")
        _digits(sim, "msisdn", "sim.")
        _timestamp(sim, "production_date", "sim.")
