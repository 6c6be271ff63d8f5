"""Write a canonical record in a format version and shape (FORMATS.md §2.1, §3.3).

Rendering never changes the canonical record: the legacy versions get shallow copies of the
parts they change. ``new`` is the canonical form itself. Keys keep the order the producer wrote
them in (renamed keys keep their place), so the same input always gives the same bytes; unknown
fields are carried in every JSON shape.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from schemas._canonical import render as _render_stored
from schemas.decode import loads_stored
from schemas.kinds import Kind, Record, Shape, Version
from schemas.timestamps import legacy_timestamp

__all__ = ["ascii_only", "dumps", "dumps_stored", "render", "to_json"]

_SPACES = bytes(0x20 if byte >= 0xC0 else byte for byte in range(256))
_CONTINUATIONS = bytes(range(0x80, 0xC0))
"""In UTF-8 a character beyond ASCII is a leading byte ``11……`` and continuation bytes
``10……``: translated by ``_SPACES`` with the continuation bytes deleted, it is one space."""
_MARKS = bytes(0x80 if byte >= 0x80 else 0 for byte in range(256))
_KEEN_DROPPED = {Kind.EVENT: ("imsi", "user"), Kind.USAGE: ("imsi", "imsi_id")}
_KEEN_ENDPOINT = {Kind.EVENT: ("id", "name"), Kind.USAGE: ("id", "balance")}


def render(record: Record, kind: Kind, version: Version, shape: Shape = Shape.FULL) -> Record:
    """Return ``record`` as ``version`` writes it, in the full or the KeenIO shape.

    KeenIO's ``new`` shape is the full one (FORMATS.md §3.3).
    """
    out = _render(record, kind, version, shape)
    return ascii_only(out) if version is Version.OLD else out


def dumps(record: Record, kind: Kind, version: Version, shape: Shape = Shape.FULL) -> bytes:
    """Render ``record`` and serialise it as compact JSON."""
    out = _render(record, kind, version, shape)
    data = to_json(out)
    if version is not Version.OLD or data.isascii():
        return data
    # JSON is written without escaping any character ``old`` replaces, so replacing them in
    # the text replaces them in every string.
    spaced = _spaced_values(data)
    return to_json(ascii_only(out)) if spaced is None else spaced


def dumps_stored(body: bytes, kind: Kind, version: Version, shape: Shape = Shape.FULL) -> bytes:
    """A record's canonical bytes (as stored) written as ``version``: ``new`` is those bytes
    (in both shapes)."""
    if version is Version.NEW:
        return body
    fast = _render_stored(body, kind is Kind.USAGE, version is Version.OLD, shape is Shape.KEEN)
    if fast is not None:  # the C pass (schemas/_canonical.c), for the records it takes
        return fast
    return dumps(loads_stored(body), kind, version, shape)  # integers of any length exact


def _render(record: Record, kind: Kind, version: Version, shape: Shape) -> Record:
    """``render`` before the old system's encoding."""
    if version is Version.NEW:
        return record
    out = _legacy_event(record) if kind is Kind.EVENT else _legacy_usage(record)
    if version is Version.OLD:
        _drop_nulls(out)
    if shape is Shape.KEEN:
        _reduce(out, kind)
        if version is Version.OLD and kind is Kind.USAGE:
            out["keen"] = {"timestamp": out["start_timestamp"]}
    return out


def to_json(value: Any) -> bytes:
    """Compact JSON of ``value``, exact for integers beyond 64 bits too.

    The reader keeps such integers exact (an unknown field, a ``detail`` value); orjson refuses
    to write them, so a value holding one is written by the standard library instead.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode()


def ascii_only(value: Any) -> Any:
    """The old system's encoding: every non-ASCII character of every string becomes a space."""
    if isinstance(value, str):
        if value.isascii():
            return value
        return value.encode("utf-8", "surrogatepass").translate(_SPACES, _CONTINUATIONS).decode()
    if isinstance(value, dict):
        return {ascii_only(k): ascii_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ascii_only(v) for v in value]
    return value


def _spaced_values(data: bytes) -> bytes | None:
    """``data`` (compact JSON) with every character beyond ASCII as one space; None when a key
    holds one (two keys could become one: ``ascii_only`` settles that) or a string holds an
    escape (only closing quotes that are not escaped are looked for)."""
    if b"\\" in data:
        return None
    marks = data.translate(_MARKS)  # only strings hold bytes beyond ASCII
    start = marks.find(0x80)
    while start != -1:
        end = data.find(b'"', start)  # the closing quote of the string
        if data[end + 1] == 0x3A:  # a colon after it: the string is a key
            return None
        start = marks.find(0x80, end)
    return data.translate(_SPACES, _CONTINUATIONS)


def _legacy_event(r: Record) -> Record:
    out = dict(r)
    out["timestamp"] = legacy_timestamp(r["timestamp"])
    alert = r.get("alert")
    if type(alert) is bool:
        out["alert"] = int(alert)
    source = r.get("event_source")
    if source is not None:
        out["event_source"] = _named(source)
    _legacy_stamp(out, "sim", "production_date")
    _legacy_stamp(out, "imsi", "import_date")
    return out


def _legacy_usage(r: Record) -> Record:
    out = dict(r)
    out["start_timestamp"] = legacy_timestamp(r["start_timestamp"])
    out["end_timestamp"] = legacy_timestamp(r["end_timestamp"])
    out["traffic_type"] = _named(r["traffic_type"])
    endpoint = r.get("endpoint")
    if endpoint is not None and endpoint.get("balance") is not None:
        balance = dict(endpoint["balance"])
        for key in ("last_updated", "expiry_date"):
            if balance.get(key) is not None:
                balance[key] = legacy_timestamp(balance[key])
        out["endpoint"] = {**endpoint, "balance": balance}
    _legacy_stamp(out, "sim", "production_date")
    return out


def _named(obj: Record) -> Record:
    """``{id, description}`` → ``{id, name}``, keeping every other field."""
    return {("name" if key == "description" else key): value for key, value in obj.items()}


def _legacy_stamp(out: Record, entity: str, key: str) -> None:
    inner = out.get(entity)
    if inner is not None and inner.get(key) is not None:
        out[entity] = {**inner, key: legacy_timestamp(inner[key])}


def _drop_nulls(out: Record) -> None:
    """The old system omits null root values and unset balance values."""
    for key in [key for key, value in out.items() if value is None]:
        del out[key]
    endpoint = out.get("endpoint")
    if endpoint is None or "balance" not in endpoint:
        return
    balance = endpoint["balance"]
    if balance is None:
        out["endpoint"] = {k: v for k, v in endpoint.items() if k != "balance"}
    elif type(balance) is dict and "expiry_date" in balance and balance["expiry_date"] is None:
        trimmed = {k: v for k, v in balance.items() if k != "expiry_date"}
        out["endpoint"] = {**endpoint, "balance": trimmed}


def _reduce(out: Record, kind: Kind) -> None:
    """KeenIO's reduced old/migrated shape: no ``imsi``/``user``, slim ``endpoint`` and ``sim``."""
    for key in _KEEN_DROPPED[kind]:
        out.pop(key, None)
    if out.get("endpoint") is not None:
        out["endpoint"] = _pick(out["endpoint"], _KEEN_ENDPOINT[kind])
    if out.get("sim") is not None:
        out["sim"] = _pick(out["sim"], ("id", "iccid"))


def _pick(obj: Record, keys: tuple[str, ...]) -> Record:
    return {key: obj[key] for key in keys if key in obj}
