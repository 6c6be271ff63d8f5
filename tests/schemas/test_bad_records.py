"""Bad input gives the right typed error with the right field and index; odd but valid input
is read exactly (FORMATS.md §2.2, schemas/errors.py)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from schemas import (
    InvalidValue,
    Kind,
    MalformedRecord,
    MissingField,
    Record,
    RecordError,
    Version,
    WrongType,
    dumps,
    parse_json,
    parse_record,
    render,
)
from schemas.render import to_json
from tests.schemas.samples import EVENT, USAGE

BASE = {Kind.EVENT: EVENT, Kind.USAGE: USAGE}
GONE = object()
"""As the new value of a field: remove the field."""


def changed(kind: Kind, path: str, value: Any) -> Record:
    """The valid base record of ``kind`` with the field at dotted ``path`` set (or removed)."""
    record = copy.deepcopy(BASE[kind])
    *parents, last = path.split(".")
    node = record
    for key in parents:
        node = node[key]
    if value is GONE:
        del node[last]
    else:
        node[last] = value
    return record


@pytest.mark.parametrize("kind", list(Kind))
def test_the_base_records_are_valid(kind: Kind) -> None:
    assert parse_record(copy.deepcopy(BASE[kind]), kind)["id"] == BASE[kind]["id"]


E, U = Kind.EVENT, Kind.USAGE

BAD_FIELDS = [
    # wrong JSON types
    pytest.param(E, "id", "69535", WrongType, "id", id="id-as-string"),
    pytest.param(U, "id", 1.5, WrongType, "id", id="id-as-float"),
    pytest.param(E, "id", True, WrongType, "id", id="id-as-bool"),
    pytest.param(E, "alert", "yes", WrongType, "alert", id="alert-as-yes"),
    pytest.param(U, "volume", [1, 2], WrongType, "volume", id="volume-as-list"),
    pytest.param(U, "volume.total", "1", WrongType, "volume.total", id="volume-total-string"),
    pytest.param(E, "sim.iccid", 8.988317e18, WrongType, "sim.iccid", id="iccid-as-float"),
    pytest.param(U, "sim.iccid", -1, WrongType, "sim.iccid", id="iccid-negative"),
    pytest.param(E, "organisation", 2, WrongType, "organisation", id="organisation-number"),
    pytest.param(E, "event_type", "x", WrongType, "event_type", id="event_type-string"),
    pytest.param(E, "timestamp", 1605000000, WrongType, "timestamp", id="timestamp-number"),
    pytest.param(E, "description", 5, WrongType, "description", id="description-number"),
    pytest.param(E, "imsi.imsi", [], WrongType, "imsi.imsi", id="imsi-list"),
    pytest.param(U, "imsi", {}, WrongType, "imsi", id="usage-imsi-object"),
    pytest.param(U, "cost", "0.1", WrongType, "cost", id="cost-string"),
    pytest.param(U, "endpoint.balance", 5, WrongType, "endpoint.balance", id="balance-number"),
    pytest.param(
        E,
        "event_severity.description",
        0,
        WrongType,
        "event_severity.description",
        id="severity-number",
    ),
    # required fields that are missing (absent or null)
    pytest.param(E, "id", GONE, MissingField, "id", id="event-no-id"),
    pytest.param(U, "id", None, MissingField, "id", id="usage-null-id"),
    pytest.param(E, "timestamp", GONE, MissingField, "timestamp", id="no-timestamp"),
    pytest.param(E, "event_type", GONE, MissingField, "event_type", id="no-event_type"),
    pytest.param(E, "event_type.id", GONE, MissingField, "event_type.id", id="no-event_type-id"),
    pytest.param(E, "organisation", GONE, MissingField, "organisation", id="no-organisation"),
    pytest.param(
        E, "organisation.id", GONE, MissingField, "organisation.id", id="no-organisation-id"
    ),
    pytest.param(U, "volume", GONE, MissingField, "volume", id="no-volume"),
    pytest.param(U, "traffic_type", GONE, MissingField, "traffic_type", id="no-traffic_type"),
    pytest.param(U, "start_timestamp", GONE, MissingField, "start_timestamp", id="no-start"),
    pytest.param(U, "end_timestamp", None, MissingField, "end_timestamp", id="null-end"),
    # invalid values
    pytest.param(E, "timestamp", "2020-13-10T08:59:19Z", InvalidValue, "timestamp", id="month-13"),
    pytest.param(
        E, "timestamp", "2020-13-10 08:59:19", InvalidValue, "timestamp", id="month-13-old"
    ),
    pytest.param(E, "timestamp", "yesterday", InvalidValue, "timestamp", id="yesterday"),
    pytest.param(E, "timestamp", "2020-02-30T00:00:00Z", InvalidValue, "timestamp", id="feb-30"),
    pytest.param(E, "timestamp", "2020-02-30 00:00:00", InvalidValue, "timestamp", id="feb-30-old"),
    pytest.param(E, "timestamp", "2020-11-10T25:00:00Z", InvalidValue, "timestamp", id="hour-25"),
    pytest.param(E, "timestamp", "", InvalidValue, "timestamp", id="empty-timestamp"),
    pytest.param(
        U, "start_timestamp", "2021-04-19", InvalidValue, "start_timestamp", id="date-only"
    ),
    pytest.param(
        E,
        "sim.production_date",
        "2017-05-03T20:36:28+25:00",
        InvalidValue,
        "sim.production_date",
        id="offset-25h",
    ),
    pytest.param(E, "id", 2**63, InvalidValue, "id", id="id-2**63"),
    pytest.param(E, "id", -(2**63) - 1, InvalidValue, "id", id="id-below-int64"),
    pytest.param(
        U, "organisation.id", 2**64, InvalidValue, "organisation.id", id="organisation-2**64"
    ),
    pytest.param(E, "event_type.id", 10**25, InvalidValue, "event_type.id", id="event_type-huge"),
]


@pytest.mark.parametrize(("kind", "path", "value", "error", "field"), BAD_FIELDS)
def test_bad_field_gives_typed_error(
    kind: Kind, path: str, value: Any, error: type[RecordError], field: str
) -> None:
    with pytest.raises(error) as caught:
        parse_record(changed(kind, path, value), kind)
    assert caught.value.field == field
    assert caught.value.index is None
    # the same with the kind and version stated, and as JSON through the reader, at index 0
    with pytest.raises(error) as caught:
        parse_record(changed(kind, path, value), kind, Version.NEW)
    assert caught.value.field == field
    (result,) = parse_json([to_json(changed(kind, path, value))], kind)
    assert type(result) is error
    assert (result.field, result.index) == (field, 0)


@pytest.mark.parametrize(
    ("kind", "asked"), [(Kind.USAGE, Kind.EVENT), (Kind.EVENT, Kind.USAGE)], ids=["usage", "event"]
)
def test_a_record_of_the_other_kind_is_refused(kind: Kind, asked: Kind) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_record(copy.deepcopy(BASE[kind]), asked)
    assert caught.value.field == "$"
    assert f"not {asked.article} record" in str(caught.value)


def test_a_record_of_no_kind_is_refused() -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_record({"id": 1, "timestamp": "2020-11-10T08:59:19Z"})
    assert caught.value.field == "$"


@pytest.mark.parametrize("path", ["volume", "traffic_type"])
def test_usage_missing_half_of_its_kind_is_told_by_field(path: str) -> None:
    """Without a stated kind, ``traffic_type`` or ``volume`` alone still means usage."""
    with pytest.raises(MissingField) as caught:
        parse_record(changed(Kind.USAGE, path, GONE))
    assert caught.value.field == path


@pytest.mark.parametrize(
    ("record", "asked", "field"),
    [
        ({"id": 1, "timestamp": "2020-11-10T08:59:19Z"}, Kind.EVENT, "event_type"),
        ({"id": 1, "start_timestamp": "2020-11-10T08:59:19Z"}, Kind.USAGE, "traffic_type"),
    ],
)
def test_a_record_of_no_kind_misses_the_field_of_the_kind_asked(
    record: Record, asked: Kind, field: str
) -> None:
    with pytest.raises(MissingField) as caught:
        parse_record(record, asked)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("record", "version"),
    [(EVENT, Version.OLD), (EVENT, Version.MIGRATED), (USAGE, Version.OLD)],
)
def test_a_new_record_is_refused_when_a_legacy_version_is_asked(
    record: Record, version: Version
) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_record(copy.deepcopy(record), None, version)
    assert caught.value.field in ("timestamp", "start_timestamp")


# --- byte level: the reader -------------------------------------------------------------------

GOOD = orjson.dumps(EVENT)
GOOD_USAGE = orjson.dumps(USAGE)


def errors_of(lines: list[bytes]) -> list[tuple[int, type[RecordError], str] | Record]:
    """What ``parse_json`` gives for ``lines``: a record, or (index, error type, field)."""
    out: list[tuple[int, type[RecordError], str] | Record] = []
    for result in parse_json(lines):
        if isinstance(result, RecordError):
            assert result.index is not None
            out.append((result.index, type(result), result.field))
        else:
            out.append(result)
    return out


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"5", id="a-number"),
        pytest.param(b'"a string"', id="a-string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[1]", id="an-array-line"),
        pytest.param(b'{"id": 1, "timestamp": "2020-11-10T08:5', id="truncated"),
        pytest.param(b'{"id": 1, "description": "caf\xe9"}', id="latin-1-byte"),
        pytest.param(b'{"id": 1, "description": "\xff\xfe"}', id="invalid-utf-8"),
        pytest.param(b'{"id": 1, "cost": NaN}', id="NaN"),
        pytest.param(b'{"id": 1, "cost": Infinity}', id="Infinity"),
        pytest.param(b'{"id": 1, "cost": -Infinity}', id="minus-Infinity"),
        # the same with a literal beyond 64 bits, which takes the exact (standard library) path
        pytest.param(b'{"x": 123456789012345678901, "d": "\xff"}', id="invalid-utf-8-exact"),
        pytest.param(b'{"x": 123456789012345678901, "cost": NaN}', id="NaN-exact"),
        pytest.param(b'{"x": -1234567890123456789012, "cost": -Infinity', id="truncated-exact"),
        pytest.param(b'{"id": 1} trailing', id="trailing-garbage"),
    ],
)
def test_bad_ndjson_line_is_malformed_at_its_index(bad: bytes) -> None:
    """The 3rd NDJSON line is bad: index 2, and the lines around it still read."""
    results = errors_of([GOOD + b"\n", GOOD_USAGE + b"\n", bad + b"\n", GOOD + b"\n"])
    assert results[2] == (2, MalformedRecord, "$")
    assert [r["id"] for r in results if isinstance(r, dict)] == [69535, 1618839102882, 69535]


def test_bad_record_in_ndjson_keeps_its_index_and_says_so() -> None:
    line = orjson.dumps(changed(Kind.EVENT, "id", "x"))
    (*_, error) = parse_json([GOOD + b"\n", GOOD + b"\n", line + b"\n"])
    assert isinstance(error, WrongType)
    assert (error.index, error.field) == (2, "id")
    assert str(error).startswith("record 2: ")


@pytest.mark.parametrize(
    ("element", "name"), [(b"5", "an integer"), (b'"s"', "a string"), (b"[]", "an array")]
)
def test_non_object_array_element_is_malformed_at_its_index(element: bytes, name: str) -> None:
    results = list(parse_json([b"[" + GOOD + b", " + element + b", " + GOOD_USAGE + b"]"]))
    error = results[1]
    assert isinstance(error, MalformedRecord)
    assert (error.index, error.field) == (1, "$")
    assert name in str(error)
    assert isinstance(results[2], dict)


def test_truncated_array_is_one_malformed_error() -> None:
    assert errors_of([b"[" + GOOD + b", " + GOOD[:40]]) == [(0, MalformedRecord, "$")]


def test_pretty_printed_object_over_lines_reads_as_one_record() -> None:
    lines = orjson.dumps(EVENT, option=orjson.OPT_INDENT_2).splitlines(keepends=True)
    (record,) = parse_json(lines)
    assert record == parse_record(copy.deepcopy(EVENT))


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        (b"18446744073709551616", "id"),  # 2**64: 20 digits
        (b"9223372036854775808", "id"),  # 2**63: 19 digits, fits orjson's u64
        (b"-9223372036854775809", "id"),
        (b"123456789012345678901234567890", "id"),
    ],
)
def test_id_over_64_bits_is_invalid(literal: bytes, field: str) -> None:
    line = GOOD.replace(b'"id":69535', b'"id":' + literal)
    assert line != GOOD
    assert errors_of([line]) == [(0, InvalidValue, field)]


def test_id_at_the_64_bit_edges_is_kept_exactly() -> None:
    for literal in (2**63 - 1, -(2**63)):
        line = GOOD.replace(b'"id":69535', b'"id":' + str(literal).encode())
        (record,) = parse_json([line])
        assert isinstance(record, dict)
        assert record["id"] == literal


# --- odd but valid input, read exactly --------------------------------------------------------


def test_20_digit_iccid_as_a_bare_number_survives_exactly() -> None:
    line = GOOD.replace(b'"iccid":"8988317000000000000"', b'"iccid":89883170000000000001')
    assert line != GOOD
    (record,) = parse_json([line])
    assert isinstance(record, dict)
    assert record["sim"]["iccid"] == "89883170000000000001"


@pytest.mark.parametrize("version", list(Version))
def test_big_negative_number_in_unknown_field_survives_exactly(version: Version) -> None:
    big = b"-123456789012345678901234567890"
    line = GOOD_USAGE[:-1] + b',"x_adjustment":' + big + b',"x_deep":{"n":[' + big + b"]}}"
    (record,) = parse_json([line])
    assert isinstance(record, dict)
    assert record["x_adjustment"] == int(big)
    assert type(record["x_adjustment"]) is int
    assert record["x_deep"] == {"n": [int(big)]}
    # and it is delivered exactly in every JSON output
    written = dumps(record, Kind.USAGE, version)
    assert written.count(big) == 2
    (again,) = parse_json([written])
    assert isinstance(again, dict)
    assert again["x_adjustment"] == int(big)


@pytest.mark.parametrize(
    ("stamp", "canonical"),
    [
        ("2020-11-10T08:59:19Z", "2020-11-10T08:59:19Z"),
        ("2020-11-10 08:59:19", "2020-11-10T08:59:19Z"),
        ("2020-11-10T08:59:19", "2020-11-10T08:59:19Z"),
        ("2020-11-10T08:59:19+0000", "2020-11-10T08:59:19Z"),
        ("2020-11-10T08:59:19+00:00", "2020-11-10T08:59:19Z"),
        ("2020-11-10 08:59:19+00:00", "2020-11-10T08:59:19Z"),
        ("2020-11-10T10:59:19+02:00", "2020-11-10T08:59:19Z"),
        ("2020-11-10T10:59:19+0200", "2020-11-10T08:59:19Z"),
        ("2020-11-10T07:29:19-01:30", "2020-11-10T08:59:19Z"),
        ("2021-01-01T01:00:00+02:00", "2020-12-31T23:00:00Z"),  # across a year
        ("2020-11-10T10:59:19.5+02:00", "2020-11-10T08:59:19.500Z"),
        ("2020-11-10T08:59:19.1Z", "2020-11-10T08:59:19.100Z"),
        ("2020-11-10T08:59:19.12Z", "2020-11-10T08:59:19.120Z"),
        ("2020-11-10T08:59:19.123Z", "2020-11-10T08:59:19.123Z"),
        ("2020-11-10T08:59:19.1234Z", "2020-11-10T08:59:19.123Z"),
        ("2020-11-10T08:59:19.12345Z", "2020-11-10T08:59:19.123Z"),
        ("2020-11-10T08:59:19.123456Z", "2020-11-10T08:59:19.123Z"),
        ("2020-11-10T08:59:19.1234567Z", "2020-11-10T08:59:19.123Z"),
        ("2020-11-10T08:59:19.12345678Z", "2020-11-10T08:59:19.123Z"),
        ("2020-11-10T08:59:19.999999999Z", "2020-11-10T08:59:19.999Z"),  # cut, not rounded
        ("2020-11-10 08:59:19.000", "2020-11-10T08:59:19.000Z"),
    ],
)
def test_accepted_timestamp_forms(stamp: str, canonical: str) -> None:
    record = parse_record(changed(Kind.EVENT, "sim.production_date", stamp))
    assert record["sim"]["production_date"] == canonical
    usage = parse_record(changed(Kind.USAGE, "start_timestamp", stamp))
    assert usage["start_timestamp"] == canonical


@pytest.mark.parametrize(
    "given", ["Info", "info", "INFO", "warn", "Warn", "WARNING", "Warning", "critical"]
)
@pytest.mark.parametrize("version", list(Version))
def test_severity_descriptions_in_any_case_are_kept_as_given(given: str, version: Version) -> None:
    record = parse_record(changed(Kind.EVENT, "event_severity.description", given))
    assert record["event_severity"]["description"] == given
    assert render(record, Kind.EVENT, version)["event_severity"]["description"] == given


@pytest.mark.parametrize(("given", "canonical"), [(0, False), (1, True), (False, False)])
def test_alert_as_0_1_or_boolean(given: Any, canonical: bool) -> None:
    alert = parse_record(changed(Kind.EVENT, "alert", given))["alert"]
    assert type(alert) is bool
    assert alert is canonical


@pytest.mark.parametrize(
    ("path", "number", "text"),
    [
        ("sim.iccid", 8988317000000000000, "8988317000000000000"),
        ("sim.msisdn", 423663920000, "423663920000"),
        ("imsi.imsi", 901430000000114, "901430000000114"),
        ("endpoint.imei", 357701000000000, "357701000000000"),
    ],
)
def test_digit_identifiers_as_numbers_become_strings(path: str, number: int, text: str) -> None:
    record = parse_record(changed(Kind.EVENT, path, number))
    entity, key = path.split(".")
    assert record[entity][key] == text


@pytest.mark.parametrize(
    ("kind", "faults", "field"),
    [
        (Kind.EVENT, {"event_severity": {"description": ["x"], "id": "1"}}, "event_severity.id"),
        (Kind.EVENT, {"event_severity": {"description": {}}}, "event_severity.id"),
        (Kind.EVENT, {"user": {"id": "u"}, "timestamp": 5}, "timestamp"),
        (Kind.USAGE, {"traffic_type": {"description": [1]}}, "traffic_type.id"),
        (Kind.USAGE, {"sim": {"iccid": -1}, "cost": "free"}, "cost"),
    ],
)
def test_of_several_faults_the_first_in_the_checks_order_is_named(
    kind: Kind, faults: dict[str, Any], field: str
) -> None:
    """Whatever order the producer wrote the fields in (here: the faults first, inner fields
    reversed), the field named is the same: the first the checks meet, a missing one included."""
    record = {**faults, **{k: v for k, v in BASE[kind].items() if k not in faults}}
    with pytest.raises(RecordError) as refused:
        parse_record(record, kind)
    assert refused.value.field == field
