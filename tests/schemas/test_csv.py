"""The S3 CSV files (FORMATS.md §4): quoting, nulls, versions, numbers, reading back."""

from __future__ import annotations

import copy
import csv
from typing import Any

import orjson
import pytest

from schemas import (
    InvalidValue,
    Kind,
    MalformedRecord,
    Record,
    RecordError,
    Version,
    csv_header,
    csv_row,
    csv_row_stored,
    parse_record,
    read_csv,
    render_csv,
)
from tests.schemas.samples import EVENT, USAGE

OLD, MIGRATED, NEW = Version.OLD, Version.MIGRATED, Version.NEW
BASE = {Kind.EVENT: EVENT, Kind.USAGE: USAGE}


def record_of(kind: Kind, **changes: Any) -> Record:
    """The sample canonical record of ``kind`` with root fields changed."""
    record = copy.deepcopy(BASE[kind])
    record.update(changes)
    return parse_record(record, kind)


def cells(kind: Kind, version: Version, record: Record) -> dict[str, str]:
    """The row of ``record`` as {column name: cell text}, read with the standard csv module."""
    header, row = csv.reader([csv_header(kind, version), csv_row(record, kind, version)])
    assert len(row) == len(header)
    return dict(zip(header, row, strict=True))


def read_back(kind: Kind, version: Version, record: Record) -> Record:
    text = render_csv([record], kind, version)
    (back,) = read_csv(text.splitlines(keepends=True))
    return back


def test_every_non_null_field_is_double_quoted_and_lines_end_in_newline() -> None:
    record = record_of(Kind.EVENT)
    row = csv_row(record, Kind.EVENT, NEW)
    assert row.endswith(",\n")  # detail is null
    assert "\r" not in row
    fields = next(csv.reader([row]))
    assert "" in fields
    assert row == ",".join('"' + f.replace('"', '""') + '"' if f else "" for f in fields) + "\n"


@pytest.mark.parametrize("version", list(Version))
def test_quotes_and_newlines_are_quoted_and_read_back(version: Version) -> None:
    text = 'He said "hi",\nthen left\r\nfor good'
    record = record_of(Kind.EVENT, description=text)
    row = csv_row(record, Kind.EVENT, version)
    assert '"He said ""hi"",\nthen left\r\nfor good"' in row
    assert cells(Kind.EVENT, version, record)["description"] == text
    assert read_back(Kind.EVENT, version, record)["description"] == text


@pytest.mark.parametrize("version", list(Version))
def test_null_is_nothing_between_the_commas(version: Version) -> None:
    record = record_of(Kind.EVENT, sim=None, user=None, imsi=None)
    row = cells(Kind.EVENT, version, record)
    for column in ("sim_id", "sim_iccid", "user_id", "user_name", "imsi_imsi", "endpoint_tags"):
        assert row[column] == ""
    text = csv_row(record, Kind.EVENT, version)
    assert ',"",' not in text
    assert '"10.199.6.39",,' in text
    back = read_back(Kind.EVENT, version, record)
    assert (back["sim"], back["user"], back["imsi"]) == (None, None, None)
    assert back["endpoint"]["tags"] is None


@pytest.mark.parametrize("version", list(Version))
def test_an_empty_string_stays_an_empty_string(version: Version) -> None:
    endpoint = {"id": 1, "name": "", "tags": "", "ip_address": None, "imei": None}
    record = record_of(Kind.EVENT, endpoint=endpoint, description="")
    text = csv_row(record, Kind.EVENT, version)
    assert ',"",' in text
    back = read_back(Kind.EVENT, version, record)
    assert back["endpoint"] == endpoint
    assert back["description"] == ""


@pytest.mark.parametrize(
    ("version", "texts"), [(OLD, ("0", "1")), (MIGRATED, ("0", "1")), (NEW, ("false", "true"))]
)
def test_booleans_per_version(version: Version, texts: tuple[str, str]) -> None:
    for alert, text in zip((False, True), texts, strict=True):
        record = record_of(Kind.EVENT, alert=alert)
        assert cells(Kind.EVENT, version, record)["alert"] == text
        assert read_back(Kind.EVENT, version, record)["alert"] is alert


@pytest.mark.parametrize(
    ("version", "stamp"),
    [
        (OLD, "2020-11-10 08:59:19"),
        (MIGRATED, "2020-11-10 08:59:19"),
        (NEW, "2020-11-10T08:59:19.123Z"),
    ],
)
def test_timestamps_per_version(version: Version, stamp: str) -> None:
    record = record_of(Kind.EVENT, timestamp="2020-11-10T08:59:19.123Z")
    assert cells(Kind.EVENT, version, record)["timestamp"] == stamp


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-07, "0.0000001"),
        (1e22, "10000000000000000000000.0"),
        (1.5e-10, "0.00000000015"),
        (-2.5e16, "-25000000000000000.0"),
        (0.0015, "0.0015"),
        (15.0, "15.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (5, "5"),
        (-(2**63), "-9223372036854775808"),
    ],
)
def test_numbers_never_in_exponent_notation_and_read_back_equal(value: float, text: str) -> None:
    balance = {"amount": value, "last_updated": None, "expiry_date": None, "currency": None}
    endpoint = {"id": 1234, "name": "Test", "balance": balance}
    record = record_of(Kind.USAGE, endpoint=endpoint)
    assert cells(Kind.USAGE, NEW, record)["endpoint_balance_amount"] == text
    assert "e" not in text.lower()
    back = read_back(Kind.USAGE, NEW, record)
    assert back["endpoint"]["balance"]["amount"] == value
    assert type(back["endpoint"]["balance"]["amount"]) is type(value)


@pytest.mark.parametrize(
    ("cost", "volume", "cost_text", "volume_text"),
    [
        (0.00321, 0.00321, "0.0032100000", "0.003210"),  # the platform's own S3 file
        (0.000741, 0.000741, "0.0007410000", "0.000741"),
        (0.0015, 0.5, "0.0015000000", "0.500000"),
        (1e-07, 1e-07, "0.0000001000", "0.000000"),  # below the scale: rounded, never 1e-07
        (1e22, 1e22, "10000000000000000000000.0000000000", "10000000000000000000000.000000"),
        (0, 1, "0.0000000000", "1.000000"),  # an SMS: a count
        (0.1 + 0.2, 2.5e-6, "0.3000000000", "0.000002"),  # half to even
    ],
)
@pytest.mark.parametrize("version", list(Version))
def test_volumes_keep_6_decimals_and_cost_10(
    cost: float, volume: float, cost_text: str, volume_text: str, version: Version
) -> None:
    record = record_of(Kind.USAGE, cost=cost, volume={"total": volume, "rx": volume, "tx": 0})
    row = cells(Kind.USAGE, version, record)
    assert row["cost"] == cost_text
    names = ("volume_total", "volume_rx") if version is NEW else ("volume", "volume_rx")
    assert [row[name] for name in names] == [volume_text, volume_text]
    assert row["volume_tx"] == "0.000000"
    back = read_back(Kind.USAGE, version, record)
    assert back["cost"] == float(cost_text)
    assert back["volume"] == {"total": float(volume_text), "rx": float(volume_text), "tx": 0}
    assert type(back["volume"]["tx"]) is int
    assert csv_row(back, Kind.USAGE, version) == csv_row(record, Kind.USAGE, version)


@pytest.mark.parametrize(
    ("detail", "text"),
    [
        ({"b": [1, 2], "a": "5 € x"}, '{"b":[1,2],"a":"5 € x"}'),
        ({"quota": {"volume": 500, "unit": "MB"}}, '{"quota":{"volume":500,"unit":"MB"}}'),
        ({"n": -123456789012345678901234567890}, '{"n":-123456789012345678901234567890}'),
        ({}, "{}"),
        ({"empty": None}, '{"empty":null}'),
        ({"inner": {}}, '{"inner":{}}'),
        ([1, "a"], '[1,"a"]'),
        (None, ""),
        ("Data quota got assigned", "Data quota got assigned"),  # event types 56 and 58
        ("", ""),
        ("{not json", "{not json"),
        ("42", "42"),
        ("null", "null"),
        ('{"a":1}', '"{\\"a\\":1}"'),  # a string that would read back as an object
        ('"quoted"', '"\\"quoted\\""'),
    ],
)
def test_detail_is_compact_json_or_its_text_in_new_events(detail: Any, text: str) -> None:
    record = record_of(Kind.EVENT, detail=detail)
    assert cells(Kind.EVENT, NEW, record)["detail"] == text
    back = read_back(Kind.EVENT, NEW, record)
    assert back["detail"] == detail
    assert csv_row(back, Kind.EVENT, NEW) == csv_row(record, Kind.EVENT, NEW)


@pytest.mark.parametrize("version", [OLD, MIGRATED])
def test_legacy_event_files_have_no_detail(version: Version) -> None:
    record = record_of(Kind.EVENT, detail={"a": 1})
    assert "detail" not in cells(Kind.EVENT, version, record)
    assert read_back(Kind.EVENT, version, record)["detail"] is None


@pytest.mark.parametrize("kind", list(Kind))
def test_old_rows_are_ascii_migrated_and_new_utf8(kind: Kind) -> None:
    name = "Zürich € 😀"
    record = record_of(kind, organisation={"id": 2, "name": name})
    assert csv_row(record, kind, OLD).isascii()
    assert cells(kind, OLD, record)["organisation_name"] == "Z rich    "
    for version in (MIGRATED, NEW):
        assert cells(kind, version, record)["organisation_name"] == name
        assert read_back(kind, version, record)["organisation"]["name"] == name


def test_old_usage_currency_symbol_is_a_space() -> None:
    record = record_of(Kind.USAGE)
    assert cells(Kind.USAGE, OLD, record)["currency_symbol"] == " "
    assert cells(Kind.USAGE, MIGRATED, record)["currency_symbol"] == "€"


def test_file_has_one_header_no_bom() -> None:
    text = render_csv([record_of(Kind.USAGE), record_of(Kind.USAGE, id=2)], Kind.USAGE, NEW)
    assert not text.startswith("\ufeff")
    assert text.startswith(csv_header(Kind.USAGE, NEW))
    assert text.count('"id"') == 1
    assert len(text.splitlines()) == 3
    assert [r["id"] for r in read_csv(text.splitlines(keepends=True))] == [1618839102882, 2]


# --- reading ----------------------------------------------------------------------------------


def rewrite(text: str, order: list[int] | None = None, extra: tuple[str, str] | None = None) -> str:
    """``text`` (a CSV file) with its columns in ``order`` and an ``extra`` column appended."""
    rows = list(csv.reader(text.splitlines(keepends=True)))
    out = []
    for number, row in enumerate(rows):
        fields = [row[i] for i in order] if order is not None else row
        if extra is not None:
            fields.append(extra[0] if number == 0 else extra[1])
        out.append(",".join('"' + f.replace('"', '""') + '"' if f else "" for f in fields) + "\n")
    return "".join(out)


@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize("kind", list(Kind))
def test_reordered_columns_and_an_unknown_column_still_read(kind: Kind, version: Version) -> None:
    record = record_of(kind)
    text = render_csv([record], kind, version)
    (plain,) = read_csv(text.splitlines(keepends=True))
    width = len(next(csv.reader([csv_header(kind, version)])))
    order = list(reversed(range(width)))
    shuffled = rewrite(text, order, ("x_region", "eu-west-1"))
    assert shuffled.splitlines()[0] != csv_header(kind, version).rstrip("\n")
    (back,) = read_csv(shuffled.splitlines(keepends=True))
    assert back.pop("x_region") == "eu-west-1"
    assert back == plain
    assert csv_row(back, kind, version) == csv_row(record, kind, version)


def test_crlf_line_ends_read_too() -> None:
    text = render_csv([record_of(Kind.EVENT), record_of(Kind.EVENT, id=7)], Kind.EVENT, NEW)
    crlf = text.replace('"\n', '"\r\n')
    assert [r["id"] for r in read_csv(crlf.splitlines(keepends=True))] == [69535, 7]


@pytest.mark.parametrize(
    "change", [lambda row: row + ',"surplus"', lambda row: row[: row.rindex(",")]]
)
def test_row_with_wrong_number_of_fields_names_its_index(change: Any) -> None:
    rows = [record_of(Kind.EVENT, id=n) for n in (1, 2, 3)]
    lines = render_csv(rows, Kind.EVENT, NEW).splitlines(keepends=True)
    lines[2] = change(lines[2].rstrip("\n")) + "\n"  # the 2nd row (index 1)
    reader = read_csv(lines)
    assert next(reader)["id"] == 1
    with pytest.raises(MalformedRecord) as caught:
        next(reader)
    assert (caught.value.index, caught.value.field) == (1, "$")
    assert "fields" in str(caught.value)
    assert str(caught.value).startswith("record 1: ")


def test_unreadable_csv_row_names_its_index() -> None:
    lines = render_csv([record_of(Kind.EVENT)] * 2, Kind.EVENT, NEW).splitlines(keepends=True)
    lines[2] = '"1"x,' + lines[2]  # a character after a closing quote: not CSV
    with pytest.raises(MalformedRecord) as caught:
        list(read_csv(lines))
    assert caught.value.index == 1


@pytest.mark.parametrize(
    ("column", "text", "field"),
    [
        ("id", "abc", "id"),
        ("alert", "yes", "alert"),
        ("timestamp", "yesterday", "timestamp"),
        ("sim_id", "1.5", "sim.id"),
    ],
)
def test_bad_cell_gives_typed_error_with_field_and_index(
    column: str, text: str, field: str
) -> None:
    header = next(csv.reader([csv_header(Kind.EVENT, NEW)]))
    lines = render_csv([record_of(Kind.EVENT)] * 3, Kind.EVENT, NEW).splitlines(keepends=True)
    row = next(csv.reader([lines[3]]))
    row[header.index(column)] = text
    lines[3] = ",".join(f'"{f}"' for f in row) + "\n"
    with pytest.raises(RecordError) as caught:
        list(read_csv(lines))
    assert type(caught.value) is InvalidValue
    assert (caught.value.field, caught.value.index) == (field, 2)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e400"])
def test_non_finite_number_cell_is_invalid(text: str) -> None:
    header = next(csv.reader([csv_header(Kind.USAGE, NEW)]))
    lines = render_csv([record_of(Kind.USAGE)], Kind.USAGE, NEW).splitlines(keepends=True)
    row = next(csv.reader([lines[1]]))
    row[header.index("cost")] = text
    lines[1] = ",".join(f'"{f}"' for f in row) + "\n"
    with pytest.raises(InvalidValue) as caught:
        list(read_csv(lines))
    assert (caught.value.field, caught.value.index) == ("cost", 0)


def test_unknown_header_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        list(read_csv(['"a","b"\n', '"1","2"\n']))


def test_empty_file_has_no_records() -> None:
    assert list(read_csv([])) == []


@pytest.mark.parametrize("version", list(Version))
def test_a_text_none_is_written_as_none_not_as_null(version: Version) -> None:
    endpoint = {"id": 1, "name": "None", "tags": None, "ip_address": "None", "imei": None}
    record = record_of(Kind.EVENT, endpoint=endpoint, description="None")
    row = cells(Kind.EVENT, version, record)
    assert (row["endpoint_name"], row["endpoint_ip_address"]) == ("None", "None")
    assert (row["description"], row["endpoint_tags"]) == ("None", "")
    assert read_back(Kind.EVENT, version, record)["endpoint"] == endpoint


@pytest.mark.parametrize("version", list(Version))
def test_free_form_columns_holding_other_json_types_are_written(version: Version) -> None:
    """An event's endpoint is free-form beyond ``id`` and ``imei``: its name may be any value."""
    endpoint = {"id": 1, "name": True, "tags": 2.5e-7, "ip_address": {"v": 4}}
    row = cells(Kind.EVENT, version, record_of(Kind.EVENT, endpoint=endpoint))
    assert row["endpoint_name"] == ("true" if version is NEW else "1")
    assert row["endpoint_tags"] == "0.00000025"
    assert row["endpoint_ip_address"] == '{"v":4}'


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("version", list(Version))
def test_a_stored_record_gives_the_row_of_its_record(kind: Kind, version: Version) -> None:
    record = record_of(kind, description='say "hi"') if kind is Kind.EVENT else record_of(kind)
    assert csv_row_stored(orjson.dumps(record), kind, version).decode() == csv_row(
        record, kind, version
    )
