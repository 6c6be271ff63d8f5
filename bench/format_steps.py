"""Where the time of the reference reader goes (the Python layer that reads what the C pass of
``schemas._canonical`` leaves): each step alone, per record.

Run: ``python3 -m bench.format_steps [--records N]``. The records are those of
``bench.formats`` (a 50/50 mix of event and usage records), written as ``new`` and as ``old``;
each step is timed alone over all of them, best of several rounds (each round times every
step), in µs per record.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import orjson

from bench.formats import _records
from schemas import Kind, Version, dumps, loads, parse_record
from schemas.decode import _DECODER, _LONG_RUN, _MASK
from schemas.fields import FIELDS
from schemas.parse import _event, _usage


def _time(step: Callable[[Any, Kind], object], make: Callable[[], Iterable[Any]]) -> float:
    """µs per record of one pass of ``step`` over fresh inputs (some steps change theirs)."""
    inputs = list(make())
    start = time.perf_counter()
    for value, kind in inputs:
        step(value, kind)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def _bounds(raw: bytes, kind: Kind) -> object:
    mask = raw.translate(_MASK)
    return mask.count(b"{"), mask.find(_LONG_RUN)


def _c_calls(raw: bytes, kind: Kind) -> object:
    """Every C call of ingest, and nothing between them: what ingest would cost with no Python."""
    value = _DECODER.decode(raw)
    _bounds(raw, kind)
    msgspec.convert(value, FIELDS[kind])
    return orjson.dumps(value)


def _normalise(record: dict[str, Any], kind: Kind) -> None:
    (_event if kind is Kind.EVENT else _usage)(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    records = _records(args.records)
    print("| step | `new` input, µs | `old` input, µs |\n|---|---:|---:|")
    inputs = {v: [(dumps(r, k, v), k) for r, k in records] for v in (Version.NEW, Version.OLD)}

    def raw(version: Version) -> Callable[[], Iterable[Any]]:
        return lambda: inputs[version]

    def decoded(version: Version) -> Callable[[], Iterable[Any]]:
        return lambda: [(_DECODER.decode(x), k) for x, k in inputs[version]]

    def canonical(version: Version) -> Callable[[], Iterable[Any]]:
        return lambda: [(parse_record(_DECODER.decode(x), k), k) for x, k in inputs[version]]

    steps: list[tuple[str, Callable[[Any, Kind], object], Callable[[Version], Any]]] = [
        (
            "baseline: `orjson.loads` + `orjson.dumps`",
            lambda x, k: orjson.dumps(orjson.loads(x)),
            raw,
        ),
        ("msgspec decode", lambda x, k: _DECODER.decode(x), raw),
        ("input bounds (translate, count, find)", _bounds, raw),
        ("type checks (`msgspec.convert`)", lambda d, k: msgspec.convert(d, FIELDS[k]), decoded),
        ("normalisation in Python", _normalise, decoded),
        ("`orjson.dumps` of the canonical record", lambda d, k: orjson.dumps(d), canonical),
        ("the C calls alone, back to back (decode, bounds, type checks, dump)", _c_calls, raw),
        ("whole ingest", lambda x, k: dumps(parse_record(loads(x), k), k, Version.NEW), raw),
    ]
    best: dict[tuple[str, Version], float] = {}
    for _ in range(args.rounds):  # a round of every step, then the next: a slow spell of the
        for name, step, make in steps:  # machine falls on all of them, not on one
            for version in (Version.NEW, Version.OLD):
                took = _time(step, make(version))
                best[name, version] = min(best.get((name, version), took), took)
    for name, _, _ in steps:
        print(f"| {name} | {best[name, Version.NEW]:.1f} | {best[name, Version.OLD]:.1f} |")


if __name__ == "__main__":
    main()
