"""Hypothesis strategies for valid canonical records (the ``new`` shape, FORMATS.md §3).

Every record drawn here is a fixed point of ``parse_record``: it is what the parser produces.
They are realistic rather than minimal: 64-bit ids, canonical timestamps with and without
milliseconds, digit identifiers as strings (20-digit ICCIDs included), unicode text with "€"
and emoji, nullable root entities sometimes null, a usage balance sometimes null (and its
``expiry_date`` sometimes null), and a few unknown fields at the root and inside entities.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from schemas import Kind, Record

__all__ = [
    "event_records",
    "extra_fields",
    "json_values",
    "records",
    "texts",
    "timestamps",
    "usage_records",
]

ids = st.integers(min_value=0, max_value=2**63 - 1)
small_ids = st.integers(min_value=0, max_value=100)

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "Data quota enabled.",
            "€",
            "Prepaid 5 € 😀",
            "München → Zürich",
            'He said "hi", then left',
            "two\nlines",
            "tab\tand\r\nCRLF",
        ]
    ),
)
"""Text of every kind, with the characters the formats treat specially."""


def digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=min_size, max_size=max_size)


iccids = st.one_of(
    st.just("89883170000000000001"),  # 20 digits: more than 64 bits as a number
    st.builds(lambda rest: "8988" + rest, digits(15, 16)),
)
imsis = st.builds(lambda rest: "90143" + rest, digits(10, 10))
msisdns = digits(10, 15)
imeis = st.one_of(st.none(), digits(15, 16))


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """A canonical timestamp: ``...T08:59:19Z`` or, about half the time, ``...T08:59:19.123Z``."""
    moment = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31)))
    text = moment.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if draw(st.booleans()):
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


extra_keys = st.from_regex(r"x_[a-z]{1,6}", fullmatch=True)
"""Unknown field names: never one the formats know (``name``, ``description``, ...)."""

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.integers(min_value=-(10**30), max_value=10**30),  # beyond 64 bits: must stay exact
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(extra_keys, inner, max_size=3),
    max_leaves=6,
)
"""Any JSON value, as unknown fields and ``detail`` hold them."""

extra_fields = st.dictionaries(extra_keys, json_values, max_size=2)
"""A few unknown fields (new fields the platform may add; consumers must keep them)."""


def entity(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Record]:
    """An object with ``fields`` and, sometimes, unknown fields of its own."""

    def merge(known: Record, extra: Record) -> Record:
        return {**extra, **known}

    return st.builds(merge, st.fixed_dictionaries(fields), extra_fields)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Null about a quarter of the time."""
    return st.one_of(st.none(), strategy, strategy, strategy)


def described(known: dict[int, str]) -> st.SearchStrategy[Record]:
    """``{id, description}`` from a lookup table, or an unknown id with any description."""
    return st.one_of(
        st.sampled_from(sorted(known.items())).map(lambda kv: {"id": kv[0], "description": kv[1]}),
        st.fixed_dictionaries({"id": small_ids, "description": texts}),
    )


event_types = described({0: "Generic", 3: "Create PDP Context", 52: "Data quota enabled"})
event_sources = described({0: "Network", 1: "Policy Control", 2: "API"})
event_severities = st.sampled_from(
    [
        {"id": 0, "description": "INFO"},
        {"id": 1, "description": "WARN"},
        {"id": 2, "description": "CRITICAL"},
    ]
)
traffic_types = st.sampled_from([{"id": 5, "description": "Data"}, {"id": 6, "description": "SMS"}])
organisations = entity({"id": ids, "name": texts})
currencies = st.one_of(
    st.just({"id": 1, "code": "EUR", "symbol": "€"}),
    st.fixed_dictionaries({"id": small_ids, "code": texts, "symbol": texts}),
)
amounts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0.0015, 1e-07, 1e22, 15.0]),
)
ip_addresses = st.ip_addresses(v=4).map(str)
sims = entity(
    {
        "id": ids,
        "iccid": iccids,
        "msisdn": nullable(msisdns),
        "production_date": nullable(timestamps()),
    }
)


def endpoints(**more: st.SearchStrategy[Any]) -> st.SearchStrategy[Record]:
    return entity(
        {
            "id": ids,
            "name": texts,
            "ip_address": nullable(ip_addresses),
            "tags": nullable(texts),
            "imei": imeis,
            **more,
        }
    )


@st.composite
def event_records(draw: st.DrawFn) -> Record:
    """A canonical event record."""
    record: Record = draw(extra_fields)
    record.update(
        {
            "id": draw(ids),
            "timestamp": draw(timestamps()),
            "event_type": draw(event_types),
            "event_source": draw(event_sources),
            "event_severity": draw(event_severities),
            "organisation": draw(organisations),
            "alert": draw(st.booleans()),
            "description": draw(texts),
            "endpoint": draw(nullable(endpoints())),
            "sim": draw(nullable(sims)),
            "imsi": draw(
                nullable(entity({"id": ids, "imsi": imsis, "import_date": nullable(timestamps())}))
            ),
            "user": draw(nullable(entity({"id": ids, "name": texts, "username": texts}))),
            "detail": draw(nullable(st.dictionaries(extra_keys, json_values, max_size=4))),
        }
    )
    return record


balances = entity(
    {
        "amount": amounts,
        "last_updated": timestamps(),
        "expiry_date": nullable(timestamps()),
        "currency": currencies,
    }
)
operators = entity(
    {
        "id": ids,
        "name": texts,
        "mnc": digits(2, 3),
        "country": entity({"id": small_ids, "mcc": digits(3, 3), "name": texts}),
    }
)
tariffs = entity(
    {"id": ids, "name": texts, "ratezone": st.fixed_dictionaries({"id": ids, "name": texts})}
)


@st.composite
def usage_records(draw: st.DrawFn) -> Record:
    """A canonical usage record (data or SMS)."""
    record: Record = draw(extra_fields)
    record.update(
        {
            "id": draw(ids),
            "cost": draw(amounts),
            "currency": draw(currencies),
            "volume": draw(st.fixed_dictionaries({"total": amounts, "rx": amounts, "tx": amounts})),
            "operator": draw(operators),
            "organisation": draw(organisations),
            "tariff": draw(tariffs),
            "traffic_type": draw(traffic_types),
            "endpoint": draw(nullable(endpoints(balance=nullable(balances)))),
            "imsi": draw(nullable(imsis)),
            "imsi_id": draw(nullable(ids)),
            "sim": draw(nullable(sims)),
            "start_timestamp": draw(timestamps()),
            "end_timestamp": draw(timestamps()),
        }
    )
    return record


def records(kind: Kind) -> st.SearchStrategy[Record]:
    return event_records() if kind is Kind.EVENT else usage_records()
