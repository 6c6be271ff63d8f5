"""The SQLite log's appends by page size: CPU per record of the service process.

Run: ``python3 -m bench.log_pages [--records N] [--write]``. The records are ~750-byte
canonical event records (``bench.e2e``'s), appended through ``SqliteLog.append`` in segments
of 500 (one ingest request each), ``STREAMER_SYNC=full``, into a new data directory per
round; CPU is the process's (every thread's, user and system) over all appends. The price of
larger pages is paid by small appends: 3,000 appends of one record each are measured too. The
page size the log makes its database with is the only change between rows (the WAL is
checkpointed at 4 MiB in each); SQLite's default, 4 KiB, is the baseline, measured in the
same run. Rounds
alternate the page sizes; each row is the best of its rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
from pathlib import Path

import streamer.log.sqlite as sqlite_module
from bench.e2e import BATCH, batches
from bench.report import write_section
from schemas import Kind
from streamer.log.base import Entry
from streamer.log.sqlite import SqliteLog
from streamer.records import read_body

PAGES = (4096, 16384, 32768, 65536)
SMALL_APPENDS = 3000


def _cpu_secs() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _append_all(segments: list[list[Entry]], page: int) -> float:
    """CPU seconds to append every segment to a new log made with ``page``-byte pages."""
    sqlite_module._PAGE_BYTES = page
    with tempfile.TemporaryDirectory() as data:
        log = await SqliteLog.open(Path(data), sync="full")
        try:
            started = _cpu_secs()
            for entries in segments:
                await log.append(entries)
            return _cpu_secs() - started
        finally:
            await log.aclose()


async def bench(records: int, rounds: int) -> tuple[dict[int, float], dict[int, float]]:
    """µs of CPU per record appended in segments, and per one-record append, by page size."""
    bodies = batches(records, Kind.EVENT)
    segments = [read_body(body, Kind.EVENT, None, None).entries() for body in bodies]
    singles = [[entry] for entry in segments[0]] * (SMALL_APPENDS // BATCH)
    kept = sqlite_module._PAGE_BYTES
    best = dict.fromkeys(PAGES, float("inf"))
    best_small = dict.fromkeys(PAGES, float("inf"))
    try:
        for _ in range(rounds):
            for page in PAGES:
                best[page] = min(best[page], await _append_all(segments, page))
                best_small[page] = min(best_small[page], await _append_all(singles, page))
    finally:
        sqlite_module._PAGE_BYTES = kept
    return (
        {page: secs / records * 1e6 for page, secs in best.items()},
        {page: secs / len(singles) * 1e6 for page, secs in best_small.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    per_record, per_small = asyncio.run(bench(args.records, args.rounds))
    baseline, small_baseline = per_record[PAGES[0]], per_small[PAGES[0]]
    rows = [
        f"| {page // 1024} KiB{' (SQLite default, baseline)' if page == PAGES[0] else ''}"
        f"{' (the log)' if page == sqlite_module._PAGE_BYTES else ''}"
        f" | {us:.2f} µs | {us / baseline:.2f}× | {per_small[page]:.0f} µs"
        f" | {per_small[page] / small_baseline:.2f}× |"
        for page, us in per_record.items()
    ]
    table = "\n".join(
        [
            "## The log's page size (`bench/log_pages.py`)",
            "",
            f"Command: `python3 -m bench.log_pages --records {args.records} --rounds"
            f" {args.rounds} --write` — {BATCH}-record segments of ~750-byte event records"
            " appended with `sync=full`; CPU (user + system, every thread) per record, best of"
            f" the rounds; and {SMALL_APPENDS:,} appends of one record each.",
            "",
            "| page size | CPU per record, 500-record appends | vs baseline"
            " | CPU per one-record append | vs baseline |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(table)
    if args.write:
        write_section("log_pages", table)


if __name__ == "__main__":
    main()
