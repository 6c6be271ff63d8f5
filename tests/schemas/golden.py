"""The golden corpus: generated records and every output the format layer wrote for them.

``python3 -m tests.schemas.golden`` writes ``golden.ndjson.gz`` beside this file, once, from a
fixed derandomised Hypothesis run; ``test_golden.py`` then holds every later version of the
format layer to those exact bytes. Each line is one input and what became of it: its kind, the
input bytes (as text), and either the reader's error or every rendering (old, migrated and new,
in the full and the KeenIO shape), the CSV row of each version and that row read back.

The inputs are canonical records (new), those records as old and migrated write them, legacy
records the way producers send them (0/1 alerts, digit identifiers as numbers, timestamps with
offsets and long fractions, ``name`` beside ``description``), and records with one field
replaced by any value, removed, or joined by another (accepted or refused).
"""

from __future__ import annotations

import copy
import gzip
import random
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas import (
    Kind,
    Record,
    RecordError,
    Shape,
    Version,
    csv_header,
    csv_row,
    dumps,
    parse_json,
    read_csv,
)
from schemas.render import to_json
from tests.schemas.strategies import records

__all__ = ["CORPUS", "outputs"]

CORPUS = Path(__file__).with_name("golden.ndjson.gz")
_PER_KIND = 400


def outputs(raw: bytes, kind: Kind) -> dict[str, str]:
    """What the format layer makes of ``raw``: ``{"error": message}`` or every rendering."""
    [record] = list(parse_json([raw], kind))
    if isinstance(record, RecordError):
        return {"error": f"{type(record).__name__}: {record}"}
    written = {
        f"{version}/{shape}": dumps(record, kind, version, shape).decode()
        for version in Version
        for shape in Shape
    }
    for version in Version:
        row = csv_row(record, kind, version)
        written[f"csv/{version}"] = row
        try:
            back: Any = to_json(list(read_csv([csv_header(kind, version), row])))
            written[f"csv/{version}/read"] = back.decode()
        except RecordError as exc:
            written[f"csv/{version}/read"] = f"{type(exc).__name__}: {exc}"
    return written


def _legacy(record: Record, kind: Kind, rng: random.Random) -> Record:
    """``record`` as a producer of old/migrated records may write it."""
    out: dict[str, Any] = orjson.loads(
        dumps(record, kind, rng.choice([Version.OLD, Version.MIGRATED]))
    )
    stamp = "timestamp" if kind is Kind.EVENT else "start_timestamp"
    if rng.random() < 0.3:
        out[stamp] += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 7)))
    if rng.random() < 0.3:
        out[stamp] = out[stamp].replace(" ", "T") + rng.choice(["Z", "+00:00", "+0200", "-0530"])
    if kind is Kind.EVENT and type(out.get("alert")) is int and rng.random() < 0.3:
        out["alert"] = bool(out["alert"])
    sim = out.get("sim")
    if isinstance(sim, dict):
        for key in ("iccid", "msisdn"):
            if isinstance(sim.get(key), str) and sim[key].isdigit() and rng.random() < 0.5:
                sim[key] = int(sim[key])
    named = out.get("event_source" if kind is Kind.EVENT else "traffic_type")
    if isinstance(named, dict) and rng.random() < 0.2:
        named["description"] = "kept"
    return out


def _paths(record: Record, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for key, value in record.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found.extend(_paths(value, (*prefix, key)))
    return found


_ODD = [True, False, 0, 1, -1, 2**64, 10**40, "", "x", "2020-01-01 00:00:00", [], {}, None, 1.5]


def _mutated(record: Record, rng: random.Random) -> Record:
    out = copy.deepcopy(record)
    path = rng.choice(_paths(out))
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    action = rng.choice(["replace", "remove", "add"])
    if action == "replace":
        parent[path[-1]] = rng.choice(_ODD)
    elif action == "remove":
        del parent[path[-1]]
    else:
        parent[rng.choice(["balance", "keen", "x_new", "name"])] = rng.choice(_ODD)
    return out


def _inputs(kind: Kind) -> list[bytes]:
    drawn: list[Record] = []

    @settings(
        max_examples=_PER_KIND,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        drawn.append(data.draw(records(kind)))

    draw()
    rng = random.Random(14)
    inputs = []
    for index, record in enumerate(drawn):
        inputs.append(to_json(record))
        if index % 2 == 0:
            inputs.append(dumps(record, kind, rng.choice([Version.OLD, Version.MIGRATED])))
        inputs.append(to_json(_legacy(record, kind, rng)))
        inputs.append(to_json(_mutated(record, rng)))
    return inputs


def main() -> None:
    lines = [
        orjson.dumps({"kind": str(kind), "input": raw.decode(), **outputs(raw, kind)})
        for kind in Kind
        for raw in _inputs(kind)
    ]
    CORPUS.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))


if __name__ == "__main__":
    main()
