"""``streamer convert`` as a user runs it: a real subprocess, real files, real pipes."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import Kind, Version, csv_header, detect_kind, json_schema

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "records.ndjson"


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", "convert", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("version", list(Version))
def test_sample_converts_to_each_version_and_validates(version: Version) -> None:
    result = run("--to", version, str(SAMPLE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SAMPLE.read_bytes().splitlines())
    for line in lines:
        record = orjson.loads(line)
        kind = detect_kind(record)
        errors = list(Draft202012Validator(json_schema(kind, version)).iter_errors(record))
        assert errors == [], (line, errors[0].message if errors else None)


def test_csv_output_per_kind_has_the_header_and_one_row_per_record(tmp_path: Path) -> None:
    result = run("--csv", "--kind", "usage", "--to", "migrated", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.startswith(csv_header(Kind.USAGE, Version.MIGRATED))
    usage_in_sample = sum(b'"traffic_type"' in line for line in SAMPLE.read_bytes().splitlines())
    assert text.count("\n") == 1 + usage_in_sample

    archive = tmp_path / "cdr_20261101_000000.csv.gz"
    archive.write_bytes(gzip.compress(result.stdout))
    back = run("--to", "new", str(archive))
    assert back.returncode == 0, back.stderr
    ids = [orjson.loads(line)["id"] for line in back.stdout.splitlines()]
    expected = [
        orjson.loads(line)["id"]
        for line in SAMPLE.read_bytes().splitlines()
        if b'"traffic_type"' in line
    ]
    assert ids == expected


def test_stdin_and_gzip_give_the_same_output(tmp_path: Path) -> None:
    packed = tmp_path / "records.ndjson.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    from_stdin = run("--to", "old", stdin=SAMPLE.read_bytes())
    from_gzip = run("--to", "old", str(packed))
    assert from_stdin.returncode == from_gzip.returncode == 0
    assert from_stdin.stdout == from_gzip.stdout
    assert from_stdin.stdout.isascii()


def test_a_json_array_on_stdin_reads_like_ndjson() -> None:
    lines = SAMPLE.read_bytes().splitlines()
    array = b"[" + b",\n".join(lines) + b"]"
    assert run(stdin=array).stdout == run(stdin=SAMPLE.read_bytes()).stdout


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": 1}\n', "record 0: is neither an event"),
        (b'{}\n{"event_type": {"id": 1}, "id": 1}\n', "record 0: is neither"),
        (
            SAMPLE.read_bytes().splitlines()[0] + b"\n" + b'{"id": 2, "timestamp": "2021-13-01 '
            b'00:00:00", "event_type": {"id": 1}, "organisation": {"id": 1}}\n',
            "record 1: field 'timestamp' is '2021-13-01 00:00:00'",
        ),
        (b'{"id": 1, "event_type": \n', "record 0: is not valid JSON"),
        (b"\xff\xfe\n", "the CSV file is not valid UTF-8"),
    ],
)
def test_bad_input_names_the_record_and_field_without_a_traceback(
    body: bytes, expected: str
) -> None:
    result = run(stdin=body)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert expected in stderr
    assert stderr.startswith("streamer convert: <stdin>: ")
    assert "Traceback" not in stderr


def test_missing_file_and_broken_gzip_are_clear_errors(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 1
    assert b"nope.ndjson: cannot open: No such file or directory" in missing.stderr

    broken = tmp_path / "broken.ndjson.gz"
    broken.write_bytes(gzip.compress(SAMPLE.read_bytes())[:100])
    result = run(str(broken))
    assert result.returncode == 1
    assert b"broken.ndjson.gz: cannot read" in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_reader_that_goes_away_ends_convert_quietly_and_a_full_disk_is_not_the_inputs(
    tmp_path: Path,
) -> None:
    """``convert … | head`` exits 0 with nothing on stderr; an output that cannot be written is
    reported as itself, not as an input that cannot be read."""
    big = tmp_path / "big.ndjson"
    big.write_bytes(SAMPLE.read_bytes() * 400)
    command = [sys.executable, "-m", "streamer", "convert", str(big), "--to", "old"]
    piped = subprocess.run(
        f"{' '.join(command)} | head -c 100 >/dev/null; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b""

    with Path("/dev/full").open("wb") as full:
        result = subprocess.run(
            command,
            stdout=full,
            capture_output=False,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    assert b"cannot read" not in result.stderr
    assert b"No space left on device" in result.stderr


def test_mixed_kinds_in_csv_ask_for_kind() -> None:
    result = run("--csv", str(SAMPLE))
    assert result.returncode == 1
    assert b"choose it with --kind" in result.stderr


def test_kind_writes_one_kind_from_every_input_and_still_checks_the_other(
    tmp_path: Path,
) -> None:
    lines = SAMPLE.read_bytes().splitlines()
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"
    first.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")
    second.write_bytes(b"\n".join(lines[len(lines) // 2 :]) + b"\n")
    result = run("--kind", "event", str(first), str(second))
    assert result.returncode == 0, result.stderr
    events = [line for line in lines if b'"event_type"' in line]
    assert [orjson.loads(line)["id"] for line in result.stdout.splitlines()] == [
        orjson.loads(line)["id"] for line in events
    ]

    usage = next(line for line in lines if b'"traffic_type"' in line)
    second.write_bytes(usage.replace(b'"volume"', b'"volume_gone"') + b"\n")
    refused = run("--kind", "event", str(first), str(second))
    assert refused.returncode == 1
    assert refused.stderr.decode().startswith(
        f"streamer convert: {second}: record 0: field 'volume' is required"
    )


def test_convert_loads_neither_the_service_nor_its_settings() -> None:
    """What keeps its start-up short: the command line imports the rest only for the commands
    that need it."""
    script = (
        "import sys\n"
        "from streamer.cli import main\n"
        f"main(['convert', '--to', 'old', {str(SAMPLE)!r}])\n"
        "heavy = ('asyncio', 'pydantic', 'aiohttp', 'streamer.app', 'streamer.config')\n"
        "print(sorted(name for name in heavy if name in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b"[]\n"
    assert len(result.stdout.splitlines()) == len(SAMPLE.read_bytes().splitlines())
