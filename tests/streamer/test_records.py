"""``read_body``: a body in, the log's entries out, the same in the service process and after
the trip from a worker process (pickled)."""

from __future__ import annotations

import pickle

import orjson
import pytest

from schemas import Kind, Version, dumps, parse_record
from streamer.log.base import Entry
from streamer.records import ReadBody, read_body
from tests.schemas.samples import EVENT, USAGE


def _expected(record: dict[str, object], kind: Kind) -> Entry:
    canonical = parse_record(orjson.loads(orjson.dumps(record)), kind)
    if kind is Kind.USAGE:
        return Entry(
            kind, canonical["organisation"]["id"], None, None, dumps(canonical, kind, Version.NEW)
        )
    alert = canonical.get("alert")
    flag = None if alert is None else int(alert)
    body = dumps(canonical, kind, Version.NEW)
    return Entry(kind, canonical["organisation"]["id"], canonical["event_type"]["id"], flag, body)


@pytest.mark.parametrize("count", [0, 1, 3])
@pytest.mark.parametrize("kind", list(Kind))
def test_the_entries_are_the_same_before_and_after_pickling(kind: Kind, count: int) -> None:
    sample = EVENT if kind is Kind.EVENT else USAGE
    records = [
        {**sample, "id": index, "organisation": {"id": 7 + index}}
        | ({"alert": [None, False, True][index % 3]} if kind is Kind.EVENT else {})
        for index in range(count)
    ]
    body = b"\n".join(orjson.dumps(record) for record in records)
    read = read_body(body, kind, None, None)
    travelled: ReadBody = pickle.loads(pickle.dumps(read, pickle.HIGHEST_PROTOCOL))
    expected = [_expected(record, kind) for record in records]
    assert read.entries() == expected
    assert travelled.entries() == expected
    assert all(type(entry) is Entry for entry in travelled.entries())
    assert (travelled.errors, travelled.error_count, travelled.foreign) == ([], 0, [])
