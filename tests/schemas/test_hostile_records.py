"""Each hostile class is one record's error, in every framing the reader takes; records at the
bounds are read and render in every version and shape."""

from __future__ import annotations

import orjson
import pytest

from schemas import Kind, MalformedRecord, RecordError, Shape, Version, csv_row, dumps, parse_json
from schemas.decode import MAX_DEPTH, MAX_INTEGER_DIGITS, loads
from tests.schemas.hostile import HOSTILE, Hostile
from tests.schemas.samples import EVENT

GOOD = orjson.dumps(EVENT)


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_record_is_its_own_error_in_ndjson(case: Hostile) -> None:
    items = list(parse_json([GOOD, case.body, GOOD]))
    assert [isinstance(item, RecordError) for item in items] == [False, True, False]
    error = items[1]
    assert isinstance(error, RecordError)
    assert (error.index, error.field) == (1, case.field)
    assert case.message_has in error.message


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_record_is_an_error_in_an_array_and_alone(case: Hostile) -> None:
    [alone] = list(parse_json([case.body]))
    assert isinstance(alone, RecordError)
    assert case.message_has in alone.message
    in_array = list(parse_json([b"[" + GOOD + b"," + case.body + b"]"]))
    errors = [item for item in in_array if isinstance(item, RecordError)]
    assert len(errors) == 1
    assert errors[0].field == case.field


def test_records_at_the_bounds_are_read_exactly_and_render_everywhere() -> None:
    deepest = b'{"a":' * (MAX_DEPTH - 3) + b"[1]" + b"}" * (MAX_DEPTH - 3)  # in detail: 64
    widest = b"9" * MAX_INTEGER_DIGITS
    detail = b'{"x":' + deepest + b',"y":-' + widest + b"}"
    [record] = list(parse_json([GOOD.replace(b'"detail":null', b'"detail":' + detail)]))
    assert not isinstance(record, RecordError)
    assert record["detail"]["y"] == -int(widest)
    for version in Version:
        for shape in Shape:
            rendered = loads(dumps(record, Kind.EVENT, version, shape))
            assert rendered["detail"]["y"] == -int(widest)
        row = csv_row(record, Kind.EVENT, version)  # only the new layout has a detail column
        assert (widest.decode() in row) is (version is Version.NEW)


def test_a_document_nested_beyond_orjson_limit_names_the_bound() -> None:
    with pytest.raises(MalformedRecord, match=f"deeper than {MAX_DEPTH} levels"):
        loads(b"[" * 2000 + b"]" * 2000)
