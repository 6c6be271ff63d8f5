"""The platform's published records through ingest parsing, every rendering, CSV and
``streamer convert`` (sources in ``published.py``, one URL per sample)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from schemas import (
    Kind,
    Record,
    Shape,
    Version,
    csv_header,
    csv_row,
    dumps,
    parse_json,
    read_csv,
    render,
    render_csv,
)
from tests.platform.published import EVENTS, PUBLISHED_CSV_CELLS, USAGE, Sample

SAMPLES = [(sample, Kind.EVENT) for sample in EVENTS] + [(USAGE, Kind.USAGE)]
IDS = [sample.name for sample, _ in SAMPLES]


def parsed(sample: Sample, kind: Kind) -> Record:
    (record,) = parse_json(sample.text.encode().splitlines(keepends=True), kind)
    assert not isinstance(record, Exception), record
    return record


@pytest.mark.parametrize(("sample", "kind"), SAMPLES, ids=IDS)
def test_every_published_record_reads_and_keeps_its_values(sample: Sample, kind: Kind) -> None:
    published = orjson.loads(sample.text)
    record = parsed(sample, kind)
    for key, value in published.items():
        assert record[key] == value, key  # timestamps keep their milliseconds, too
    if kind is Kind.EVENT:
        assert record["event_severity"] == published["event_severity"]  # "Warn" stays "Warn"


@pytest.mark.parametrize(("sample", "kind"), SAMPLES, ids=IDS)
@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize("shape", list(Shape))
def test_every_rendering_keeps_severity_and_detail_as_published(
    sample: Sample, kind: Kind, version: Version, shape: Shape
) -> None:
    published = orjson.loads(sample.text)
    record = parsed(sample, kind)
    out = orjson.loads(dumps(record, kind, version, shape))
    assert out["id"] == published["id"]
    if kind is Kind.EVENT:
        assert out["event_severity"]["description"] == published["event_severity"]["description"]
        if published.get("detail") is not None:
            assert out["detail"] == published["detail"]
    else:
        assert out["cost"] == published["cost"]
        assert out["volume"] == published["volume"]
    # and what was rendered reads back as the same record
    (again,) = parse_json([dumps(record, kind, version, shape)], kind)
    assert not isinstance(again, Exception), again
    assert again["id"] == record["id"]


def test_new_json_of_a_published_record_is_the_record_itself() -> None:
    for sample, kind in SAMPLES:
        record = parsed(sample, kind)
        assert orjson.loads(dumps(record, kind, Version.NEW)) == record
        assert render(record, kind, Version.NEW) is record


@pytest.mark.parametrize(("sample", "kind"), SAMPLES, ids=IDS)
@pytest.mark.parametrize("version", list(Version))
def test_a_csv_written_and_read_back_is_identical(
    sample: Sample, kind: Kind, version: Version
) -> None:
    record = parsed(sample, kind)
    text = render_csv([record], kind, version)
    (back,) = read_csv(text.splitlines(keepends=True))
    assert csv_row(back, kind, version) == csv_row(record, kind, version)
    if version is Version.NEW:  # the new layout holds every field of the platform's records
        assert_same(back, record)


def assert_same(back: Record, record: Record, path: str = "") -> None:
    """``back`` holds every value of ``record``; a key only ``back`` has is a CSV column the
    record did not carry (``sim.msisdn``), and reads as null."""
    assert set(record) <= set(back), path
    for key, value in back.items():
        if key not in record:
            assert value is None, f"{path}{key}"
        elif isinstance(value, dict) and isinstance(record[key], dict):
            assert_same(value, record[key], f"{path}{key}.")
        else:
            assert value == record[key], f"{path}{key}"
            assert type(value) is type(record[key]), f"{path}{key}"


def test_a_string_detail_reads_back_from_the_new_csv_layout() -> None:
    record = parsed(EVENTS[2], Kind.EVENT)
    assert isinstance(record["detail"], str)
    text = render_csv([record, parsed(EVENTS[0], Kind.EVENT)], Kind.EVENT, Version.NEW)
    assert f',"{record["detail"]}"\n' in text
    first, second = read_csv(text.splitlines(keepends=True))
    assert first["detail"] == "Data quota got assigned with a volume of 50.000000 MB"
    assert second["detail"] == {
        "quota": {
            "threshold_percentage": 80,
            "threshold_volume": 0.8,
            "volume": -0.00120000000000009,
        }
    }


@pytest.mark.parametrize("version", [Version.OLD, Version.MIGRATED])
def test_usage_csv_cells_are_written_as_the_platforms_real_file(version: Version) -> None:
    record = parsed(USAGE, Kind.USAGE)
    record["endpoint"].update(ip_address="10.0.0.1", imei="3593390759100000", tags=None)
    record.update(cost=0.00321)
    row = csv_row(record, Kind.USAGE, version)
    assert PUBLISHED_CSV_CELLS["null"] in row
    assert f",{PUBLISHED_CSV_CELLS['volume']}," in row
    assert f",{PUBLISHED_CSV_CELLS['cost']}," in row
    record.update(cost=0.000741)
    assert f",{PUBLISHED_CSV_CELLS['small cost']}," in csv_row(record, Kind.USAGE, version)
    assert csv_header(Kind.USAGE, version).startswith('"id","event_start_timestamp"')


def convert(*args: str, stdin: bytes) -> bytes:
    result = subprocess.run(
        [sys.executable, "-m", "streamer", "convert", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("version", list(Version))
def test_convert_turns_published_records_into_csv_and_back(
    version: Version, tmp_path: Path
) -> None:
    events = b"".join(orjson.dumps(orjson.loads(s.text)) + b"\n" for s in EVENTS)
    source = tmp_path / "events.ndjson"
    source.write_bytes(events)
    as_csv = convert("--csv", "--kind", "event", "--to", version, str(source), stdin=b"")
    assert as_csv.decode().startswith(csv_header(Kind.EVENT, version))
    archive = tmp_path / "events_20211027_090650.csv"
    archive.write_bytes(as_csv)
    back = [
        orjson.loads(line) for line in convert("--to", "new", str(archive), stdin=b"").splitlines()
    ]
    originals = [parsed(sample, Kind.EVENT) for sample in EVENTS]
    assert [r["id"] for r in back] == [r["id"] for r in originals]
    assert [r["event_severity"] for r in back] == [r["event_severity"] for r in originals]
    if version is Version.NEW:
        assert [r["detail"] for r in back] == [r["detail"] for r in originals]
