"""Read a record of any version into the canonical form (the ``new`` shape, FORMATS.md §3).

The parser checks the type of every known field and normalises what the versions write
differently (FORMATS.md §2.2): timestamps to canonical ISO form, ``alert`` 0/1 to a boolean,
``name`` to ``description`` in ``event_source`` and ``traffic_type``, digit identifiers
(``iccid``, ``imsi``, ``msisdn``, ``imei``) to strings, and absent null root entities and unset
balance values to ``null``. Severity descriptions are kept exactly as given (``Info``, ``WARN``,
…: the platform writes both). Unknown fields are kept as they are.
KeenIO's own ``keen`` object is dropped: it only repeats ``start_timestamp``.

It works in place on the object it is given (the caller hands over ownership) and returns it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from schemas.errors import (
    InvalidValue,
    MalformedRecord,
    MissingField,
    WrongType,
    json_type,
)
from schemas.kinds import NULLABLE_ROOTS, Kind, Record, Version, detect_kind, detect_version
from schemas.timestamps import canonical_timestamp

__all__ = ["parse_record"]

_MAX_ID = 2**63 - 1
_BOOL_OR_NONE = frozenset((bool, type(None)))


def parse_record(
    record: object, kind: Kind | None = None, version: Version | None = None
) -> Record:
    """Validate ``record`` and turn it into the canonical form, in place.

    ``kind`` and ``version``, when given, are what the caller expects; a record of the other
    kind, or in ``new`` form when a legacy version was asked for (or the reverse), is refused.
    """
    if type(record) is not dict:
        raise MalformedRecord(f"must be a JSON object, not {json_type(record)}")
    try:
        found = detect_kind(record)
    except InvalidValue:
        if kind is None:
            raise
        raise MissingField("event_type" if kind is Kind.EVENT else "traffic_type") from None
    if kind is not None and found is not kind:
        raise InvalidValue("$", f"is {found.article} record, not {kind.article} record")
    if version is not None:
        seen = detect_version(record, found)
        if (seen is Version.NEW) != (version is Version.NEW):
            field = "timestamp" if found is Kind.EVENT else "start_timestamp"
            raise InvalidValue(field, f"is written in the {seen} format, not {version}")
    if found is Kind.EVENT:
        if not _canonical_event(record):
            _event(record)
    elif not _canonical_usage(record):
        _usage(record)
    for name in NULLABLE_ROOTS[found]:
        if name not in record:
            record[name] = None
    return record


# The fast paths below only recognise a record that is already canonical and valid, without
# changing it (numbers are taken as finite: the JSON and CSV readers refuse NaN and infinity).
# Anything else (a legacy form, a digit written as a number, an error) goes through the full
# normalisation (``_event``/``_usage``), which has the last word and names the field at fault.
_NONE = type(None)
_INT_OR_NONE = frozenset((int, _NONE))
_STR_OR_NONE = frozenset((str, _NONE))
_NUMBER_OR_NONE = frozenset((int, float, _NONE))
_EVENT_ROOTS = frozenset(NULLABLE_ROOTS[Kind.EVENT])
_USAGE_ROOTS = frozenset(NULLABLE_ROOTS[Kind.USAGE])


def _canonical_event(r: Record) -> bool:
    get = r.get
    kind = get("event_type")
    severity = get("event_severity")
    source = get("event_source")
    organisation = get("organisation")
    endpoint = get("endpoint")
    sim = get("sim")
    imsi = get("imsi")
    user = get("user")
    return (
        r.keys() >= _EVENT_ROOTS
        and _record_id(get("id"))
        and _canonical_stamp(get("timestamp"))
        and type(kind) is dict
        and type(kind.get("id")) is int
        and type(kind.get("description")) in _STR_OR_NONE
        and (
            severity is None
            or (
                type(severity) is dict
                and type(severity.get("id")) is int
                and type(severity.get("description")) in _STR_OR_NONE
            )
        )
        and (
            source is None
            or (
                type(source) is dict
                and type(source.get("id")) is int
                and type(source.get("description")) is str
                and "name" not in source
            )
        )
        and type(organisation) is dict
        and type(organisation.get("id")) is int
        and type(get("alert")) in _BOOL_OR_NONE
        and type(get("description")) in _STR_OR_NONE
        and (endpoint is None or (type(endpoint) is dict and _canonical_endpoint(endpoint)))
        and (sim is None or (type(sim) is dict and _canonical_sim(sim)))
        and (
            imsi is None
            or (
                type(imsi) is dict
                and type(imsi.get("id")) in _INT_OR_NONE
                and type(imsi.get("imsi")) in _STR_OR_NONE
                and _canonical_stamp_or_none(imsi.get("import_date"))
            )
        )
        and _canonical_entity(user)
    )


def _canonical_usage(r: Record) -> bool:
    get = r.get
    volume = get("volume")
    traffic = get("traffic_type")
    organisation = get("organisation")
    currency = get("currency")
    operator = get("operator")
    tariff = get("tariff")
    endpoint = get("endpoint")
    sim = get("sim")
    return (
        r.keys() >= _USAGE_ROOTS
        and "keen" not in r
        and _record_id(get("id"))
        and _canonical_stamp(get("start_timestamp"))
        and _canonical_stamp(get("end_timestamp"))
        and type(get("cost")) in _NUMBER_OR_NONE
        and type(volume) is dict
        and type(volume.get("total")) in _NUMBER_OR_NONE
        and type(volume.get("rx")) in _NUMBER_OR_NONE
        and type(volume.get("tx")) in _NUMBER_OR_NONE
        and type(traffic) is dict
        and type(traffic.get("id")) is int
        and type(traffic.get("description")) is str
        and "name" not in traffic
        and type(organisation) is dict
        and type(organisation.get("id")) is int
        and _canonical_entity(currency)
        and (operator is None or (type(operator) is dict and _canonical_operator(operator)))
        and (tariff is None or (type(tariff) is dict and _canonical_tariff(tariff)))
        and (endpoint is None or (type(endpoint) is dict and _canonical_usage_endpoint(endpoint)))
        and (sim is None or (type(sim) is dict and _canonical_sim(sim)))
        and type(get("imsi")) in _STR_OR_NONE
        and type(get("imsi_id")) in _INT_OR_NONE
    )


def _canonical_stamp(value: object) -> bool:
    if type(value) is not str or value[4:17:3] != "--T::" or value[-1:] != "Z":
        return False
    if len(value) != 20 and (len(value) != 24 or value[19] != "."):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _canonical_stamp_or_none(value: object) -> bool:
    return value is None or _canonical_stamp(value)


def _canonical_endpoint(endpoint: Record) -> bool:
    return type(endpoint.get("id")) in _INT_OR_NONE and type(endpoint.get("imei")) in _STR_OR_NONE


def _canonical_usage_endpoint(endpoint: Record) -> bool:
    if "balance" not in endpoint or not _canonical_endpoint(endpoint):
        return False
    balance = endpoint["balance"]
    if balance is None:
        return True
    if type(balance) is not dict or "expiry_date" not in balance:
        return False
    currency = balance.get("currency")
    return (
        type(balance.get("amount")) in _NUMBER_OR_NONE
        and _canonical_stamp_or_none(balance.get("last_updated"))
        and _canonical_stamp_or_none(balance["expiry_date"])
        and _canonical_entity(currency)
    )


def _canonical_sim(sim: Record) -> bool:
    return (
        type(sim.get("id")) in _INT_OR_NONE
        and type(sim.get("iccid")) in _STR_OR_NONE
        and type(sim.get("msisdn")) in _STR_OR_NONE
        and _canonical_stamp_or_none(sim.get("production_date"))
    )


def _canonical_operator(operator: Record) -> bool:
    country = operator.get("country")
    return type(operator.get("id")) in _INT_OR_NONE and _canonical_entity(country)


def _canonical_tariff(tariff: Record) -> bool:
    ratezone = tariff.get("ratezone")
    return type(tariff.get("id")) in _INT_OR_NONE and _canonical_entity(ratezone)


def _canonical_entity(value: object) -> bool:
    """Null, or an object whose ``id`` is an integer or absent."""
    return value is None or (type(value) is dict and type(value.get("id")) in _INT_OR_NONE)


def _event(r: Record) -> None:
    _root_id(r)
    r["timestamp"] = canonical_timestamp(_required(r, "timestamp", ""), "timestamp")
    _described(_object(r, "event_type", "", required=True), "event_type.")
    severity = _object(r, "event_severity", "")
    if severity is not None:
        _described(severity, "event_severity.")
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
    _root_id(r)
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


def _record_id(value: object) -> bool:
    return type(value) is int and -_MAX_ID - 1 <= value <= _MAX_ID


def _root_id(r: Record) -> None:
    _id(r, "id", "")
    if not _record_id(r["id"]):
        raise InvalidValue("id", f"is {r['id']}, which does not fit in 64 bits")


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
    if "name" in obj:  # a record holding both keeps "description"
        obj.setdefault("description", obj.pop("name"))
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
