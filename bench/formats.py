"""Parse + render throughput of the format layer against raw orjson on the same records.

Run: ``python3 -m bench.formats [--records N] [--write]``. Each figure is records per second
(best of several rounds) over a 50/50 mix of realistic event and usage records of ~800 bytes,
and its ratio to the baseline ``orjson.loads`` + ``orjson.dumps`` of the same input bytes,
measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from bench.report import write_section
from schemas import Kind, Version, csv_row, dumps, loads, parse_record
from streamer.simulate import Fleet

Case = Callable[[bytes, Kind], object]


def _records(count: int) -> list[tuple[dict[str, object], Kind]]:
    fleet = Fleet(seed=7)
    return [
        (fleet.event(), Kind.EVENT) if i % 2 else (fleet.usage(), Kind.USAGE) for i in range(count)
    ]


def baseline(raw: bytes, kind: Kind) -> object:
    return orjson.dumps(orjson.loads(raw))


def to_version(version: Version) -> Case:
    def case(raw: bytes, kind: Kind) -> object:
        return dumps(parse_record(loads(raw), kind), kind, version)

    return case


def to_csv(raw: bytes, kind: Kind) -> object:
    return csv_row(parse_record(loads(raw), kind), kind, Version.NEW)


def _rate(case: Case, inputs: list[tuple[bytes, Kind]], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for raw, kind in inputs:
            case(raw, kind)
        best = min(best, time.perf_counter() - start)
    return len(inputs) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    records = _records(args.records)
    new = [(orjson.dumps(r), k) for r, k in records]
    old = [(dumps(r, k, Version.OLD), k) for r, k in records]
    cases: list[tuple[str, Case, list[tuple[bytes, Kind]], float | None]] = [
        ("baseline: orjson.loads + dumps (new input)", baseline, new, None),
        ("new → new", to_version(Version.NEW), new, 0.5),
        ("old → new", to_version(Version.NEW), old, 0.35),
        ("new → migrated", to_version(Version.MIGRATED), new, None),
        ("new → old", to_version(Version.OLD), new, None),
        ("new → CSV (new)", to_csv, new, None),
    ]
    rows = []
    base = 0.0
    for name, case, inputs, target in cases:
        rate = _rate(case, inputs, args.rounds)
        base = base or rate
        goal = f"≥ {target}×" if target else ""
        rows.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}× | {goal} |")
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            "## Formats: parse + render (`bench/formats.py`)",
            "",
            f"Command: `python3 -m bench.formats --records {args.records} --write` — "
            "a 50/50 mix of ~800-byte event and usage records; best of "
            f"{args.rounds} rounds; ratio against the orjson baseline of the same run.",
            "",
            "| case | records/s | vs baseline | target |",
            "|---|---:|---:|---:|",
            *rows,
        ]
    )
    if args.write:
        write_section("formats", table)


if __name__ == "__main__":
    main()
