"""Write a canonical record in a format version and shape (FORMATS.md §2.1, §3.3).

Rendering never changes the canonical record: the legacy versions get shallow copies of the
parts they change. ``new`` is the canonical form itself. Keys keep the order the producer wrote
them in (renamed keys keep their place), so the same input always gives the same bytes; unknown
fields are carried in every JSON shape.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

import orjson

from schemas.kinds import Kind, Record, Shape, Version
from schemas.timestamps import legacy_timestamp

__all__ = ["ascii_only", "dumps", "render", "to_json"]

_KEY_REST = re.compile(r'(?:[^"\\]|\\.)*":')
"""The rest of a string of JSON text that is a key (its closing quote, then a colon)."""
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
    # the text replaces them in every string; unless a key holds one (two keys could become
    # one), which ``ascii_only`` settles.
    try:
        return data.decode().encode("ascii", _SPACES_IN_VALUES)
    except _KeyNotAscii:
        return to_json(ascii_only(out))


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
        return value if value.isascii() else value.encode("ascii", _SPACES).decode()
    if isinstance(value, dict):
        return {ascii_only(k): ascii_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ascii_only(v) for v in value]
    return value


class _KeyNotAscii(Exception):
    """JSON text with a key that holds a character ASCII cannot encode."""


def _spaces(error: UnicodeError) -> tuple[str, int]:
    """An encoding error handler: each character ASCII cannot encode becomes one space."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return " " * (error.end - error.start), error.end


def _spaces_in_values(error: UnicodeError) -> tuple[str, int]:
    """``_spaces`` for JSON text, refusing (``_KeyNotAscii``) to change a key."""
    if isinstance(error, UnicodeEncodeError) and _KEY_REST.match(error.object, error.end):
        raise _KeyNotAscii
    return _spaces(error)


_SPACES = "schemas.spaces"
_SPACES_IN_VALUES = "schemas.spaces-in-values"
codecs.register_error(_SPACES, _spaces)
codecs.register_error(_SPACES_IN_VALUES, _spaces_in_values)


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
