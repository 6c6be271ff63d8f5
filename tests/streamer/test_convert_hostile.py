"""``streamer convert`` on hostile input: one clear line naming the record and the field, exit 1,
never a traceback, whatever the bytes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Kind, Shape, Version
from streamer.convert import ConvertError, convert
from tests.schemas.hostile import HOSTILE, Hostile

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "records.ndjson"
LINES = SAMPLE.read_bytes().splitlines()

FUZZ_EXAMPLES = int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "300"))
"""Examples per fuzz run; raise it for a long run (RELIABILITY.md, "Hostile input")."""


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", "convert", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_record_stops_convert_with_its_position_and_field(case: Hostile) -> None:
    result = run("--to", "old", stdin=LINES[0] + b"\n" + case.body + b"\n" + LINES[1] + b"\n")
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert stderr.startswith("streamer convert: <stdin>: record 1: ")
    where = "" if case.field == "$" else f"field {case.field!r} "
    assert where in stderr
    assert case.message_has in stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1


fragments = st.sampled_from(
    [
        b"7" * 4301,
        b"1" * 25,
        b"[" * 1100,
        b'{"a":' * 70,
        b'"\\ud800"',
        b"\xff",
        b"null",
        b'{"description":{}}',
        b'"balance":true,',
        b"\n",
        b",",
        b"-",
        b"1e999",
        b"NaN",
    ]
)


@st.composite
def mutated_inputs(draw: st.DrawFn) -> bytes:
    """The sample NDJSON (or a JSON array of it) with a few byte-level edits and splices."""
    lines = draw(st.lists(st.sampled_from(LINES), min_size=1, max_size=4))
    data = bytearray(
        b"[" + b",".join(lines) + b"]" if draw(st.booleans()) else b"\n".join(lines) + b"\n"
    )
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["splice", "cut", "byte"]))
        if edit == "splice":
            data[at:at] = draw(fragments)
        elif edit == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        else:
            data[at:at] = bytes([draw(st.integers(0, 255))])
    return bytes(data)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=mutated_inputs(),
    version=st.sampled_from(list(Version)),
    shape=st.sampled_from(list(Shape)),
    as_csv=st.booleans(),
    kind=st.sampled_from([None, *Kind]),
)
def test_convert_fuzz_ends_in_output_or_one_convert_error(
    data: bytes, version: Version, shape: Shape, as_csv: bool, kind: Kind | None
) -> None:
    with tempfile.NamedTemporaryFile(suffix=".ndjson") as file:
        file.write(data)
        file.flush()
        out = io.BytesIO()
        message = ""
        try:
            convert([file.name], out, version, as_csv=as_csv, kind=kind, shape=shape)
        except ConvertError as exc:
            message = str(exc)
        assert message == "" or message.startswith(file.name + ": ")
        assert "\n" not in message
