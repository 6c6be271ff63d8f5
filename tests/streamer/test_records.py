"""``read_body``: a body in, the log's entries out, the same in the service process and after
the trip from a worker process (pickled), and the same through the C pass (``read_fast``) and
the reference reader."""

from __future__ import annotations

import pickle

import orjson
import pytest

from schemas import Kind, Version, dumps, parse_record
from streamer.log.base import Entry
from streamer.records import ReadBody, read_body, read_fast, read_reference
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


def _bodies(kind: Kind) -> dict[str, bytes]:
    sample = EVENT if kind is Kind.EVENT else USAGE
    lines = [orjson.dumps({**sample, "id": i, "organisation": {"id": 7 + i % 2}}) for i in range(4)]
    pretty = orjson.dumps(sample, option=orjson.OPT_INDENT_2)
    return {
        "ndjson": b"\n".join(lines),
        "trailing newline": b"\n".join(lines) + b"\n",
        "crlf and blank lines": b"\r\n".join([b"", lines[0], b" \t", lines[1], b"", lines[2]]),
        "one record": lines[0],
        "empty": b"",
        "array": b"[" + b",".join(lines) + b"]",
        "a document over many lines": pretty,
        "a bad record": b"\n".join([lines[0], b'{"id": "x"}', lines[1]]),
        "a broken line": b"\n".join([lines[0], lines[1][:-1]]),
        "records cut by a carriage return": lines[0] + b"\r" + lines[1],
        "a carriage return inside a record": lines[0].replace(b",", b",\r", 1),
        "a carriage return inside a record, and another record": b"\n".join(
            [lines[0].replace(b",", b",\r", 1), lines[1]]
        ),
        "a vertical tab line": b"\n".join([lines[0], b"\x0b", lines[1]]),
        "a legacy record": b"\n".join(
            [lines[0], dumps(parse_record(sample, kind), kind, Version.OLD)]
        ),
    }


READ_FAST = {
    "ndjson",
    "trailing newline",
    "crlf and blank lines",
    "one record",
    "empty",
    "a legacy record",
    "records cut by a carriage return",
}


@pytest.mark.parametrize("organisation", [None, 7])
@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("name", list(_bodies(Kind.EVENT)))
def test_the_c_pass_reads_a_body_as_the_reference_does_or_leaves_it(
    name: str, kind: Kind, organisation: int | None
) -> None:
    body = _bodies(kind)[name]
    fast = read_fast(body, kind, None, organisation)
    assert (fast is not None) == (name in READ_FAST)
    reference = read_reference(body, kind, None, organisation)
    read = read_body(body, kind, None, organisation)
    for found in (fast, read):
        if found is not None:
            assert found.entries() == reference.entries()
            assert (found.errors, found.error_count, found.foreign) == (
                reference.errors,
                reference.error_count,
                reference.foreign,
            )
