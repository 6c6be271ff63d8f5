"""Many organisations, one service: the same records over 1, 100 and 1,000 organisations.

Run: ``python3 -m bench.tenants [--records N] [--organisations 1,100,1000] [--max-wait-ms N]
[--repeat N] [--write]``.

For each organisation count, a fresh daemon (``streamer run``, ``STREAMER_SYNC=normal``) gets
one Webhook stream per organisation (``size`` 3000, all to one receiver, ``bench.receiver``,
each at its own path), then the same ``--records`` event records, their organisation ids dealt
round-robin, in 500-record NDJSON POSTs with 4 in flight through a platform token. Measured
from the first POST to the last record at the receiver: records/s end to end, the daemon's
CPU seconds (its ingest worker processes included) per record, and the records per webhook
request. The 1-organisation run is the baseline of the ratios. Each run's figures go to
standard error as it ends, with the seconds and the CPU seconds until the last ingest answer
(the rest is delivery after ingest). With ``--repeat N`` the counts are run in turn N times
(1, 100, 1,000, 1, 100, …, so a slower spell of the shared machine weighs on each alike); each
figure is the median of its N runs, and the table also gives each round's ratios at the
largest count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys

import aiohttp

from bench.e2e import BATCH, SIZE, free_port, run_organisations, wait_until_up
from bench.report import write_section

IN_FLIGHT = 4


async def bench(args: argparse.Namespace) -> str:
    counts = [int(n) for n in args.organisations.split(",")]
    env = {} if args.max_wait_ms is None else {"STREAMER_BATCH_MAX_WAIT_MS": str(args.max_wait_ms)}
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)])
    runs: dict[int, list[dict[str, float]]] = {count: [] for count in counts}
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, f"{receiver}/stats")
            for round_ in range(1, args.repeat + 1):
                for count in counts:
                    result = await run_organisations(
                        session, receiver, args.records, count, IN_FLIGHT, **env
                    )
                    runs[count].append(result)
                    print(f"round {round_}, {count} organisations: {result}", file=sys.stderr)
    finally:
        process.terminate()
        process.wait()
    return _table(args, runs)


def _table(args: argparse.Namespace, runs: dict[int, list[dict[str, float]]]) -> str:
    results = {count: _medians(each) for count, each in runs.items()}
    base = results[min(results)]
    rows = [
        f"| {count:,} | {r['rate']:,.0f} | {r['rate'] / base['rate']:.2f}× | {r['cpu_secs']:.1f} s"
        f" | {r['cpu_us']:.0f} µs | {r['cpu_us'] / base['cpu_us']:.2f}× | {r['per_request']:,.0f}"
        f" | {r['duplicates']:.0f} |"
        for count, r in results.items()
    ]
    if args.max_wait_ms is None:
        option, batching = "", "default batching (linger 20 ms, max wait 5 s)"
    else:
        option = f" --max-wait-ms {args.max_wait_ms}"
        batching = f"linger 20 ms, `STREAMER_BATCH_MAX_WAIT_MS={args.max_wait_ms}`"
    repeat = f" --repeat {args.repeat}" if args.repeat > 1 else ""
    medians = f" Medians of {args.repeat} rounds, the counts run in turn in each." if repeat else ""
    largest, rounds = max(runs), zip(runs[min(runs)], runs[max(runs)], strict=True)
    each = "; ".join(
        f"{mine['rate'] / first['rate']:.2f}× and {mine['cpu_us'] / first['cpu_us']:.2f}×"
        for first, mine in rounds
    )
    return "\n".join(
        [
            f"## Many organisations, {batching} (`bench/tenants.py`)",
            "",
            f"Command: `python3 -m bench.tenants --records {args.records}"
            f" --organisations {args.organisations}{option}{repeat} --write` — ~750-byte event"
            f" records, their organisations dealt round-robin, {BATCH} per NDJSON POST,"
            f" {IN_FLIGHT} in flight; one Webhook stream per organisation (size {SIZE}) to one"
            " receiver; `STREAMER_SYNC=normal`; daemon, receiver and load generator are separate"
            " processes on the same 2-core machine. Targets at 1,000 organisations: end to end"
            f" ≥ 0.8× and CPU per record ≤ 1.25× of the 1-organisation run.{medians}",
            "",
            "| organisations / streams | end to end, records/s | vs 1 | daemon CPU"
            " | CPU per record | vs 1 | records per webhook request | duplicates |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            *(
                [
                    "",
                    f"Each round at {largest:,}, end to end and CPU per record against the"
                    f" round's own 1-organisation run: {each}.",
                ]
                if repeat
                else []
            ),
        ]
    )


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--organisations", default="1,100,1000")
    parser.add_argument(
        "--max-wait-ms", type=int, help="STREAMER_BATCH_MAX_WAIT_MS for the daemons"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; figures are medians")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    table = asyncio.run(bench(args))
    print(table)
    if args.write:
        suffix = "" if args.max_wait_ms is None else f"-wait-{args.max_wait_ms}"
        write_section(f"tenants{suffix}", table)


if __name__ == "__main__":
    main()
