"""The parser and every renderer agree: whatever the reader accepts renders in every version
and shape, as JSON and as CSV, and the full-shape renderings are readable again.

The records are canonical records with one field replaced by any JSON value, removed, or
joined by an unknown one: the neighbourhood of valid input where a renderer may assume more
than the parser checked (a balance that is a number, a description that is an object).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from schemas import (
    Kind,
    Record,
    RecordError,
    Shape,
    Version,
    csv_header,
    csv_row,
    dumps,
    parse_json,
    read_csv,
)
from schemas.decode import MAX_DEPTH, MAX_INTEGER_DIGITS
from schemas.render import to_json
from tests.schemas.samples import USAGE
from tests.schemas.strategies import json_values, records, texts

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth - 1):
        leaf = {"a": leaf}
    return leaf


hostile_values = st.one_of(
    json_values,
    st.integers(min_value=-(10**MAX_INTEGER_DIGITS) + 1, max_value=10**MAX_INTEGER_DIGITS - 1),
    st.sampled_from([True, False, 0, 1, -1, 2**64, "", "INFO", "warning", [], {}, [None]]),
    st.builds(nested, st.integers(min_value=1, max_value=MAX_DEPTH - 3), json_values),
    st.dictionaries(st.sampled_from(["id", "description", "name", "expiry_date"]), json_values),
    texts,
)
"""Values a producer may send in place of any field, up to the reader's bounds."""


def paths(record: Record, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path into the objects of ``record``."""
    found = []
    for key, value in record.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found.extend(paths(value, (*prefix, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, kind: Kind) -> Record:
    record = copy.deepcopy(draw(records(kind)))
    path = draw(st.sampled_from(paths(record)))
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(hostile_values)
    elif action == "remove":
        del parent[path[-1]]
    else:
        parent[draw(st.sampled_from(["balance", "keen", "x_new", "name"]))] = draw(hostile_values)
    return record


def accepted(record: Record) -> Record | None:
    """``record`` as the reader takes it from bytes, or None when it refuses it."""
    [item] = list(parse_json([to_json(record)]))
    return None if isinstance(item, RecordError) else item


@pytest.mark.parametrize("kind", list(Kind))
@SETTINGS
@given(data=st.data())
def test_every_accepted_record_renders_in_every_version_and_shape(
    kind: Kind, data: st.DataObject
) -> None:
    record = accepted(data.draw(mutated(kind)))
    if record is None:
        return
    note(repr(record))
    for version in Version:
        for shape in Shape:
            written = dumps(record, kind, version, shape)
            [again] = list(parse_json([written]))
            if shape is Shape.FULL:
                assert not isinstance(again, RecordError), (version, again)
        row = csv_row(record, kind, version)
        assert row.endswith("\n")
        [read] = list(read_csv([csv_header(kind, version), row]))
        assert read["id"] == record["id"]


def test_a_balance_that_is_not_an_object_renders_as_old() -> None:
    """An event's endpoint is free-form beyond ``id`` and ``imei``: its ``balance`` is an
    unknown field there, carried as it is."""
    for balance in (5, True, "x", [1]):
        event = accepted(
            {
                "id": 1,
                "timestamp": "2024-01-01T00:00:00Z",
                "event_type": {"id": 1, "description": "t"},
                "organisation": {"id": 1},
                "endpoint": {"id": 1, "balance": balance},
            }
        )
        assert event is not None
        for shape in Shape:
            assert b'"balance":' in dumps(event, Kind.EVENT, Version.OLD, Shape.FULL)
            dumps(event, Kind.EVENT, Version.OLD, shape)


def test_a_volume_of_only_null_amounts_reads_back_from_csv() -> None:
    """Every volume column empty is still a volume (the field is required), not a null."""
    usage = accepted({**USAGE, "volume": {}})
    assert usage is not None
    for version in Version:
        [read] = list(
            read_csv([csv_header(Kind.USAGE, version), csv_row(usage, Kind.USAGE, version)])
        )
        assert read["volume"] == {"total": None, "rx": None, "tx": None}
