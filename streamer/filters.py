"""A data stream's event filters: the values as the platform types them, and matching.

A filter is ``{"field": "event_type_id" | "alert", "value": …}``; ``value`` is one value or a
list of them, each a number or a string (``"1"`` ≡ ``1``; ``true``, ``"true"``, ``1`` and
``"1"`` for alert). Every filter of a stream must match, any value within one filter.
``{"or": [filter, …]}`` matches when any of its members does (members may be groups again).
Filters apply to events only. They are stored as sent; the values are read here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Matcher", "alerts", "event_type_ids", "matcher"]

_MAX_ID = 2**63 - 1
_ALERTS = {"true": True, "1": True, "false": False, "0": False}

Matcher = Callable[[int | None, int | None], bool]
"""Whether an event of this type id and alert flag (0/1) passes."""


def event_type_ids(value: Any) -> frozenset[int]:
    """The event type ids of a filter's ``value`` (``ValueError`` naming a bad one)."""
    found = set()
    for item in _items(value):
        if isinstance(item, str) and item.isascii() and item.isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= _MAX_ID:
            raise ValueError(f"event_type_id filter values are event type ids, not {item!r}")
        found.add(item)
    return frozenset(found)


def alerts(value: Any) -> frozenset[bool]:
    """The alert flags of a filter's ``value`` (``ValueError`` naming a bad one)."""
    found = set()
    for item in _items(value):
        text = str(item).lower() if isinstance(item, bool | int | str) else None
        if text not in _ALERTS:
            raise ValueError(f"alert filter values are true or false, not {item!r}")
        found.add(_ALERTS[text])
    return frozenset(found)


def matcher(filters: Iterable[Mapping[str, Any]]) -> Matcher:
    """One function for a stream's filters (all must match; an empty list passes all)."""
    parts = [_one(f) for f in filters]
    return lambda event_type, alert: all(part(event_type, alert) for part in parts)


def _one(spec: Mapping[str, Any]) -> Matcher:
    if "or" in spec:
        members = [_one(member) for member in spec["or"]]
        return lambda event_type, alert: any(m(event_type, alert) for m in members)
    if spec["field"] == "event_type_id":
        ids = event_type_ids(spec["value"])
        return lambda event_type, _: event_type in ids
    flags = alerts(spec["value"])
    return lambda _, alert: alert is not None and bool(alert) in flags


def _items(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("a filter needs at least one value")
    return items
