"""Parse + render throughput of the format layer against raw orjson on the same records.

Run: ``python3 -m bench.formats [--records N] [--write]``. Each figure is records per second
(best of several rounds) over a 50/50 mix of realistic event and usage records of ~800 bytes,
and its ratio to the baseline ``orjson.loads`` + ``orjson.dumps`` of the same input bytes,
measured in the same run:

- ingest: bytes of any version in, checked and canonical bytes out, with the routing facts
  (``canonical``: the C pass, the reference reader for what it leaves); the same records in
  NDJSON bodies of 500 of one kind, read as the service reads an ingest body (``read_body``,
  records per second); the reference reader alone (``parse_record``) for comparison;
- rendering: a stored record (canonical bytes) in, a stream's rendering out, as the fan-out
  renders it (``render_payload``);
- ``streamer convert``: whole processes over a file of the records, against a process that runs
  the orjson loop over the same file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.report import write_section
from connectors.base import Form, Rendering
from schemas import Kind, Shape, Version, canonical, dumps, loads, parse_record
from streamer.fanout.pages import render_payload
from streamer.records import read_body
from streamer.simulate import Fleet

Case = Callable[[bytes, Kind], object]
BODY = 500  # records per ingest body
_FLOOR = (
    "import sys, orjson\n"
    "out = sys.stdout.buffer\n"
    "for line in open(sys.argv[1], 'rb'):\n"
    "    out.write(orjson.dumps(orjson.loads(line)) + b'\\n')\n"
)


def _records(count: int) -> list[tuple[dict[str, object], Kind]]:
    fleet = Fleet(seed=7)
    return [
        (fleet.event(), Kind.EVENT) if i % 2 else (fleet.usage(), Kind.USAGE) for i in range(count)
    ]


def baseline(raw: bytes, kind: Kind) -> object:
    return orjson.dumps(orjson.loads(raw))


def ingest(raw: bytes, kind: Kind) -> object:
    return canonical(raw, kind)


def reference(raw: bytes, kind: Kind) -> object:
    return dumps(parse_record(loads(raw), kind), kind, Version.NEW)


def body(raw: bytes, kind: Kind) -> object:
    return read_body(raw, kind, None, None)


def _bodies(inputs: list[tuple[bytes, Kind]]) -> list[tuple[bytes, Kind]]:
    """The records as NDJSON bodies of ``BODY`` records of one kind, as producers post them."""
    bodies = []
    for kind in Kind:
        raws = [raw for raw, of in inputs if of is kind]
        bodies += [(b"\n".join(raws[i : i + BODY]), kind) for i in range(0, len(raws), BODY)]
    return bodies


def rendered(rendering: Rendering) -> Case:
    def case(stored: bytes, kind: Kind) -> object:
        return render_payload(kind, stored, rendering)

    return case


def _rate(case: Case, inputs: list[tuple[bytes, Kind]], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for raw, kind in inputs:
            case(raw, kind)
        best = min(best, time.perf_counter() - start)
    return len(inputs) / best


def _process_rate(command: list[str], count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return count / best


_RENDERINGS = [
    ("migrated", Rendering(Version.MIGRATED)),
    ("old", Rendering(Version.OLD)),
    ("KeenIO migrated", Rendering(Version.MIGRATED, Shape.KEEN)),
    ("KeenIO old", Rendering(Version.OLD, Shape.KEEN)),
    ("CSV new", Rendering(Version.NEW, form=Form.CSV)),
    ("CSV migrated", Rendering(Version.MIGRATED, form=Form.CSV)),
    ("CSV old", Rendering(Version.OLD, form=Form.CSV)),
]


def _in_process(args: argparse.Namespace) -> list[str]:
    records = _records(args.records)
    new = [(orjson.dumps(r), k) for r, k in records]
    old = [(dumps(r, k, Version.OLD), k) for r, k in records]
    cases: list[tuple[str, Case, list[tuple[bytes, Kind]], float | None]] = [
        ("baseline: orjson.loads + dumps (new input)", baseline, new, None),
        ("ingest: new → new", ingest, new, 0.8),
        ("ingest: old → new", ingest, old, 0.5),
        (f"ingest: new → new, {BODY}-record NDJSON bodies (`read_body`)", body, _bodies(new), 0.8),
        (f"ingest: old → new, {BODY}-record NDJSON bodies (`read_body`)", body, _bodies(old), 0.5),
        ("… the reference reader alone (Python around msgspec): new → new", reference, new, None),
        ("… the reference reader alone: old → new", reference, old, None),
    ]
    cases += [(f"stored → {name}", rendered(r), new, 0.5) for name, r in _RENDERINGS]
    rows = []
    base = 0.0
    for name, case, inputs, target in cases:
        rate = _rate(case, inputs, args.rounds) * len(records) / len(inputs)  # records/s
        base = base or rate
        rows.append(_row(name, rate, base, target))
    return rows


def _processes(args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.ndjson"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r, _ in _records(args.files)))
        floor = [sys.executable, "-c", _FLOOR, str(path)]
        base = _process_rate(floor, args.files, args.rounds)
        rows = [_row("baseline: a process of the orjson loop over the file", base, base, None)]
        for version in Version:
            command = [sys.executable, "-m", "streamer", "convert", "--to", version, str(path)]
            rate = _process_rate(command, args.files, args.rounds)
            rows.append(_row(f"`streamer convert --to {version}`", rate, base, 0.5))
    return rows


def _row(name: str, rate: float, base: float, target: float | None) -> str:
    goal = f"≥ {target}×" if target else ""
    row = f"| {name} | {rate:,.0f} | {rate / base:.2f}× | {goal} |"
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=100_000, help="records in the file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    rows = _in_process(args)
    processes = _processes(args)
    header = ["| case | records/s | vs baseline | target |", "|---|---:|---:|---:|"]
    table = "\n".join(
        [
            "## Formats: parse + render (`bench/formats.py`)",
            "",
            f"Command: `python3 -m bench.formats --records {args.records} --files {args.files}"
            " --write` — a 50/50 mix of ~800-byte event and usage records; best of "
            f"{args.rounds} rounds; ratio against the orjson baseline of the same run. Ingest:"
            " bytes in, checked canonical bytes and routing facts out, as the service stores"
            " them. Stored → X: a stored record rendered as a stream asks, as the fan-out does"
            " it.",
            "",
            *header,
            *rows,
            "",
            f"Whole processes over an NDJSON file of {args.files:,} of the records (start-up"
            " included; output to /dev/null):",
            "",
            *header,
            *processes,
        ]
    )
    if args.write:
        write_section("formats", table)


if __name__ == "__main__":
    main()
