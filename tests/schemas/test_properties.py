"""Properties of parse ∘ render over generated canonical records (FORMATS.md §2–§4)."""

from __future__ import annotations

import copy
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from schemas import (
    NULLABLE_ROOTS,
    Kind,
    Record,
    Shape,
    Version,
    csv_row,
    detect_kind,
    detect_version,
    dumps,
    json_schema,
    loads,
    parse_record,
    read_csv,
    render,
    render_csv,
)
from tests.schemas.strategies import records

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KINDS = list(Kind)
VERSIONS = list(Version)
SHAPES = list(Shape)

TIMESTAMP_PATHS = {
    Kind.EVENT: [("timestamp",), ("sim", "production_date"), ("imsi", "import_date")],
    Kind.USAGE: [
        ("start_timestamp",),
        ("end_timestamp",),
        ("sim", "production_date"),
        ("endpoint", "balance", "last_updated"),
        ("endpoint", "balance", "expiry_date"),
    ],
}


def ascii_spaces(value: Any) -> Any:
    """Every non-ASCII character of every string value → one space (the old system's rule)."""
    if isinstance(value, str):
        return "".join(c if ord(c) < 128 else " " for c in value)
    if isinstance(value, dict):
        return {key: ascii_spaces(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [ascii_spaces(inner) for inner in value]
    return value


def expected_after(record: Record, version: Version) -> Record:
    """What parsing ``record`` rendered in ``version`` must give: ``record`` minus exactly
    what ``version`` cannot carry.

    - ``old`` and ``migrated`` write timestamps without a fraction: milliseconds are lost;
    - ``old`` omits null root values (the parser restores the nullable root entities as
      null, other null root fields stay absent) and writes ASCII only.
    """
    kind = detect_kind(record)
    out = copy.deepcopy(record)
    if version is Version.NEW:
        return out
    for path in TIMESTAMP_PATHS[kind]:
        parent = out
        for key in path[:-1]:
            parent = parent.get(key) or {}
        if isinstance(parent.get(path[-1]), str):
            parent[path[-1]] = parent[path[-1]][:19] + "Z"
    if version is Version.OLD:
        out = {key: value for key, value in out.items() if value is not None}
        for name in NULLABLE_ROOTS[kind]:
            out.setdefault(name, None)
        out = ascii_spaces(out)
    return out


def typed(value: Any) -> Any:
    """``value`` with every leaf paired with its type, so that 1 and 1.0 and True differ."""
    if isinstance(value, dict):
        return {key: typed(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [typed(inner) for inner in value]
    return (type(value).__name__, value)


def assert_same(got: Any, want: Any) -> None:
    assert got == want
    assert typed(got) == typed(want)


# --- the strategies themselves --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_generated_records_are_canonical(kind: Kind, data: st.DataObject) -> None:
    """The strategies draw what the parser produces: parsing a canonical record is a no-op."""
    record = data.draw(records(kind))
    assert detect_kind(record) is kind
    assert_same(parse_record(copy.deepcopy(record), kind, Version.NEW), record)


# --- JSON round trips -----------------------------------------------------------------------


def test_expected_after_applies_the_losses() -> None:
    """The oracle itself, on one hand-written record."""
    record: Record = {
        "id": 1,
        "timestamp": "2020-11-10T08:59:19.123Z",
        "event_type": {"id": 0, "description": "Generic €"},
        "organisation": {"id": 2, "name": "Org"},
        "sim": None,
        "x_note": None,
        "endpoint": None,
        "imsi": None,
        "user": None,
        "detail": None,
    }
    assert expected_after(record, Version.NEW) == record
    migrated = expected_after(record, Version.MIGRATED)
    assert migrated["timestamp"] == "2020-11-10T08:59:19Z"
    assert migrated["event_type"]["description"] == "Generic €"
    assert "x_note" in migrated
    old = expected_after(record, Version.OLD)
    assert old["event_type"]["description"] == "Generic  "
    assert "x_note" not in old
    assert old["sim"] is None


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_full_shape_round_trip(kind: Kind, data: st.DataObject) -> None:
    """parse(render(r, v)) == r minus what v cannot carry, exactly (types included).

    Read back with ``schemas.loads``, the project's reader: ``orjson.loads`` would turn the
    integers beyond 64 bits that the strategies put in unknown fields into floats.
    """
    record = data.draw(records(kind))
    for version in VERSIONS:
        note(f"version: {version}")
        text = dumps(record, kind, version)
        parsed = parse_record(loads(text), kind, version)
        assert_same(parsed, expected_after(record, version))
        assert parse_record(loads(text)) == parsed  # format=auto reads it the same


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_keen_shape_renders_and_parses(kind: Kind, data: st.DataObject) -> None:
    """The KeenIO reduced shape is lossy by design: it renders, and the parser accepts it."""
    record = data.draw(records(kind))
    for version in VERSIONS:
        note(f"version: {version}")
        parsed = parse_record(loads(dumps(record, kind, version, Shape.KEEN)), kind, version)
        assert parsed["id"] == record["id"]
        if version is Version.NEW:
            assert_same(parsed, record)  # KeenIO `new` is the full shape


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_render_never_raises_nor_mutates(kind: Kind, data: st.DataObject) -> None:
    record = data.draw(records(kind))
    before = copy.deepcopy(record)
    for version in VERSIONS:
        for shape in SHAPES:
            note(f"version: {version}, shape: {shape}")
            assert isinstance(render(record, kind, version, shape), dict)
            assert isinstance(dumps(record, kind, version, shape), bytes)
        assert csv_row(record, kind, version).endswith("\n")
    assert_same(record, before)


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_csv_round_trip(kind: Kind, data: st.DataObject) -> None:
    """Reading a CSV file back and writing it again gives the same text.

    CSV has fixed columns (unknown fields, and fields without a column, are not carried) and
    cannot tell an empty string from null: the rows are what must survive, not the records.
    """
    rows = data.draw(st.lists(records(kind), min_size=1, max_size=3))
    for version in VERSIONS:
        note(f"version: {version}")
        text = render_csv(rows, kind, version)
        back = list(read_csv(text.splitlines(keepends=True)))
        assert len(back) == len(rows)
        assert render_csv(back, kind, version) == text
        assert [r["id"] for r in back] == [r["id"] for r in rows]
        assert all(detect_kind(r) is kind for r in back)


# --- version detection ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_detect_version_of_renderings(kind: Kind, data: st.DataObject) -> None:
    """What kinds.detect_version guarantees.

    Full shape: ``new`` and ``migrated`` are told exactly; ``old`` only when it omitted a null
    root (otherwise an old record reads exactly like a migrated one). KeenIO shape: ``old``
    always reads as ``old``; ``migrated`` only as legacy, since the reduced shape drops roots.
    """
    record = data.draw(records(kind))

    def detected(version: Version, shape: Shape = Shape.FULL) -> Version:
        return detect_version(loads(dumps(record, kind, version, shape)), kind)

    assert detected(Version.NEW) is Version.NEW
    assert detected(Version.MIGRATED) is Version.MIGRATED
    omits_a_root = any(record[name] is None for name in NULLABLE_ROOTS[kind])
    assert detected(Version.OLD) is (Version.OLD if omits_a_root else Version.MIGRATED)
    assert detected(Version.NEW, Shape.KEEN) is Version.NEW
    assert detected(Version.OLD, Shape.KEEN) is Version.OLD
    assert detected(Version.MIGRATED, Shape.KEEN) in (Version.OLD, Version.MIGRATED)


# --- JSON Schema ----------------------------------------------------------------------------


def _with_schema(kind: Kind, version: Version) -> Any:
    name = f"{kind}.{version}.schema.json"
    missing = not files("schemas").joinpath("json", name).is_file()
    reason = f"schemas/json/{name} is not written yet"
    return pytest.param(kind, version, marks=pytest.mark.skipif(missing, reason=reason))


@pytest.mark.parametrize(("kind", "version"), [_with_schema(k, v) for k in KINDS for v in VERSIONS])
@SETTINGS
@given(data=st.data())
def test_full_renderings_validate_against_json_schema(
    kind: Kind, version: Version, data: st.DataObject
) -> None:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json_schema(kind, version))
    record = data.draw(records(kind))
    errors = [e.message for e in validator.iter_errors(loads(dumps(record, kind, version)))]
    assert errors == []
