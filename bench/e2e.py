"""End to end: ingest → durable log → Webhook stream(s), on loopback.

Run: ``python3 -m bench.e2e [--records N] [--backlog N] [--write]``.

Five measurements, each with the daemon (``streamer run``) and a receiver (``bench.receiver``)
as separate processes and this process as the load generator (4 concurrent 500-record POSTs):

1. baseline: a plain aiohttp client posting the same batches straight to the same receiver;
2. streamer, one ``new`` stream, ``STREAMER_SYNC=full``: records/s from the first ingest to
   the last record at the receiver, ingest-only records/s, peak RSS, duplicates;
3. fan-out CPU: daemon CPU seconds to ingest and deliver the records to 10 streams, against
   the same with 1 stream;
4. many organisations: the same records dealt over 97 organisations, one stream (size 3000)
   each, ``STREAMER_SYNC=full``: records/s, CPU per record and peak RSS of the daemon and its
   ingest workers, and records per webhook request; three runs, the median one reported (a
   run here can take half again the CPU of the one before it);
5. backlog: peak RSS after ingesting ``--backlog`` records behind a paused stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path

import aiohttp

from bench.report import write_section
from schemas import Kind, Version, dumps
from streamer.simulate import Fleet

BATCH = 500
CONCURRENCY = 8  # requests in flight from the load generator
SIZE = 3000  # records per webhook request at most, in the organisations case
ORGANISATIONS = 97
RUNS = 3  # of the many-organisations case (its median is reported)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def batches(count: int, kind: Kind, organisations: int = 1) -> list[bytes]:
    """NDJSON bodies of ``BATCH`` realistic records, ``new`` format, of organisations
    1..``organisations`` dealt round-robin (otherwise the same records)."""
    fleet = Fleet(seed=11, organisations=1)
    make = fleet.event if kind is Kind.EVENT else fleet.usage
    lines = []
    for index in range(count):
        record = make()
        record["organisation"]["id"] = 1 + index % organisations
        lines.append(dumps(record, kind, Version.NEW))
    return [b"\n".join(lines[i : i + BATCH]) for i in range(0, count, BATCH)]


class Daemon:
    def __init__(self, data_dir: Path, token: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamer", "run"],
            env={
                **os.environ,
                "STREAMER_DATA_DIR": str(data_dir),
                "STREAMER_LISTEN": f"127.0.0.1:{self.port}",
                "STREAMER_BOOTSTRAP_TOKEN": token,
                "STREAMER_ALLOW_PRIVATE_DESTINATIONS": "true",
                "STREAMER_LOG_LEVEL": "warning",
                **env,
            },
            stderr=subprocess.DEVNULL,
        )

    def cpu_secs(self) -> float:
        """CPU seconds of the daemon and its ingest worker processes."""
        return sum(_cpu_secs(pid) for pid in _tree(self.process.pid))

    def peak_rss_mb(self) -> float:
        """Peak RSS of the daemon process."""
        return _peak_rss_mb(self.process.pid)

    def tree_peak_rss_mb(self) -> float:
        """Peak RSS of the daemon plus that of each of its ingest worker processes."""
        return sum(_peak_rss_mb(pid) for pid in _tree(self.process.pid))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *(p for child in children for p in _tree(child))]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_until_up(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def post_all(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    in_flight: int = CONCURRENCY,
) -> float:
    """POST every body with ``in_flight`` requests in flight; return the seconds it took."""
    queue = list(reversed(bodies))

    async def worker() -> None:
        while queue:
            body = queue.pop()
            async with session.post(url, data=body, headers=headers) as response:
                if response.status >= 300:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - started


async def receiver_stats(session: aiohttp.ClientSession, receiver: str) -> dict[str, int]:
    async with session.get(f"{receiver}/stats") as response:
        stats: dict[str, int] = await response.json()
        return stats


async def wait_records(session: aiohttp.ClientSession, receiver: str, count: int) -> None:
    deadline = time.monotonic() + 600
    while (await receiver_stats(session, receiver))["records"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the receiver did not get every record in time")
        await asyncio.sleep(0.02)


async def create_stream(
    session: aiohttp.ClientSession,
    daemon: Daemon,
    url: str,
    organisation: int = 1,
    size: int = BATCH,
) -> str:
    body = {
        "name": f"bench {organisation}",
        "data_stream_type": {"id": 3},
        "destination": {"connection_type": "RestAPI", "credentials": {"url": url, "size": size}},
        "organisation": {"id": organisation},
    }
    async with session.post(
        f"{daemon.url}/api/v2/data_stream", json=body, headers=_auth(daemon)
    ) as response:
        if response.status != 201:
            raise RuntimeError(f"create stream: {response.status} {await response.text()}")
        return f"{daemon.url}{response.headers['Location']}"


def _auth(daemon: Daemon) -> dict[str, str]:
    return {"Authorization": f"Bearer {daemon.token}"}


def _ingest_headers(daemon: Daemon) -> dict[str, str]:
    return {**_auth(daemon), "Content-Type": "application/x-ndjson"}


async def run_streamer(
    session: aiohttp.ClientSession,
    receiver: str,
    bodies: list[bytes],
    count: int,
    streams: int,
    sync: str,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        daemon = Daemon(Path(data), secrets.token_urlsafe(32), STREAMER_SYNC=sync)
        try:
            await wait_until_up(session, f"{daemon.url}/health/ready")
            for index in range(streams):
                await create_stream(session, daemon, f"{receiver}/hook/{index}")
            await session.post(f"{receiver}/reset")
            cpu_before = daemon.cpu_secs()
            started = time.perf_counter()
            ingest_secs = await post_all(
                session, f"{daemon.url}/api/v1/ingest/events", bodies, _ingest_headers(daemon)
            )
            await wait_records(session, receiver, count * streams)
            elapsed = time.perf_counter() - started
            stats = await receiver_stats(session, receiver)
            return {
                "rate": count / elapsed,
                "ingest_rate": count / ingest_secs,
                "cpu_secs": daemon.cpu_secs() - cpu_before,
                "rss_mb": daemon.peak_rss_mb(),
                "duplicates": stats["records"] - stats["unique"] * streams,
            }
        finally:
            daemon.stop()


async def run_organisations(
    session: aiohttp.ClientSession,
    receiver: str,
    count: int,
    organisations: int,
    in_flight: int = CONCURRENCY,
    sync: str = "normal",
    **env: str,
) -> dict[str, float]:
    """``count`` event records over ``organisations``, one Webhook stream (size ``SIZE``)
    each, ``STREAMER_SYNC=sync`` and ``env``: records/s end to end, CPU of the daemon and its
    ingest workers, their peak RSS, records per webhook request; and the seconds and CPU
    seconds until the last ingest answer (the rest is delivery after ingest)."""
    bodies = batches(count, Kind.EVENT, organisations)
    with tempfile.TemporaryDirectory() as data:
        daemon = Daemon(Path(data), secrets.token_urlsafe(32), STREAMER_SYNC=sync, **env)
        try:
            await wait_until_up(session, f"{daemon.url}/health/ready")
            for organisation in range(1, organisations + 1):
                hook = f"{receiver}/hook/{organisation}"
                await create_stream(session, daemon, hook, organisation, SIZE)
            await session.post(f"{receiver}/reset")
            cpu_before = daemon.cpu_secs()
            started = time.perf_counter()
            url = f"{daemon.url}/api/v1/ingest/events"
            await post_all(session, url, bodies, _ingest_headers(daemon), in_flight)
            ingest_secs = time.perf_counter() - started
            ingest_cpu = daemon.cpu_secs() - cpu_before
            await wait_records(session, receiver, count)
            elapsed = time.perf_counter() - started
            cpu = daemon.cpu_secs() - cpu_before
            rss = daemon.tree_peak_rss_mb()
            stats = await receiver_stats(session, receiver)
        finally:
            daemon.stop()
    return {
        "rate": count / elapsed,
        "rss_mb": rss,
        "cpu_secs": cpu,
        "cpu_us": cpu / count * 1e6,
        "ingest_secs": ingest_secs,
        "ingest_cpu_secs": ingest_cpu,
        "per_request": stats["records"] / stats["requests"],
        "duplicates": stats["records"] - stats["unique"],
    }


async def run_backlog(session: aiohttp.ClientSession, receiver: str, count: int) -> float:
    bodies = batches(count, Kind.EVENT)
    with tempfile.TemporaryDirectory() as data:
        daemon = Daemon(Path(data), secrets.token_urlsafe(32), STREAMER_SYNC="normal")
        try:
            await wait_until_up(session, f"{daemon.url}/health/ready")
            stream = await create_stream(session, daemon, f"{receiver}/hook/backlog")
            async with session.patch(
                stream, json={"status": {"id": 2}}, headers=_auth(daemon)
            ) as response:
                assert response.status == 202, await response.text()
            await post_all(
                session, f"{daemon.url}/api/v1/ingest/events", bodies, _ingest_headers(daemon)
            )
            return daemon.peak_rss_mb()
        finally:
            daemon.stop()


async def bench(args: argparse.Namespace) -> str:
    bodies = batches(args.records, Kind.EVENT)
    arrays = [b"[" + body.replace(b"\n", b",") + b"]" for body in bodies]
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)])
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_until_up(session, f"{receiver}/stats")
            json = {"Content-Type": "application/json"}
            base_secs = await post_all(session, f"{receiver}/baseline", arrays, json)
            baseline = args.records / base_secs
            one = await run_streamer(session, receiver, bodies, args.records, 1, "full")
            single = await run_streamer(session, receiver, bodies, args.records, 1, "normal")
            ten = await run_streamer(session, receiver, bodies, args.records, 10, "normal")
            runs = [
                await run_organisations(session, receiver, args.records, ORGANISATIONS, sync="full")
                for _ in range(RUNS)
            ]
            runs.sort(key=itemgetter("rate"))
            tenants = runs[RUNS // 2]
            backlog_rss = await run_backlog(session, receiver, args.backlog)
    finally:
        process.terminate()
        process.wait()
    cpu_ratio = ten["cpu_secs"] / single["cpu_secs"]
    rows = [
        ("baseline: aiohttp client → receiver", f"{baseline:,.0f}", "1.00×", ""),
        (
            "streamer, 1 stream, sync=full: ingest → delivered",
            f"{one['rate']:,.0f}",
            f"{one['rate'] / baseline:.2f}×",
            "≥ 60,000 records/s",
        ),
        ("… ingest alone (202s)", f"{one['ingest_rate']:,.0f}", "", ""),
        ("streamer, 1 stream, sync=normal", f"{single['rate']:,.0f}", "", ""),
        ("streamer, 10 streams, sync=normal (records/s per stream)", f"{ten['rate']:,.0f}", "", ""),
        (
            f"streamer, {ORGANISATIONS} organisations, one stream (size {SIZE}) each,"
            f" sync=full: {tenants['per_request']:,.0f} records per webhook request; the median"
            f" of {RUNS} runs (slowest first: {_listed(runs, 'rate', ',.0f')})",
            f"{tenants['rate']:,.0f}",
            f"{tenants['rate'] / baseline:.2f}×",
            "≥ 80,000 records/s",
        ),
    ]
    table = [
        "## End to end: ingest → log → Webhook (`bench/e2e.py`)",
        "",
        f"Command: `python3 -m bench.e2e --records {args.records} --backlog {args.backlog}"
        " --write` — ~750-byte event records, 500 per NDJSON POST, "
        f"{CONCURRENCY} in flight; daemon,"
        " receiver and load generator are separate processes on the same 2-core machine.",
        "",
        "| case | records/s | vs baseline | target |",
        "|---|---:|---:|---:|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "| resource | measured | target |",
        "|---|---:|---:|",
        f"| CPU per record, {ORGANISATIONS} organisations (daemon + ingest workers), the median"
        f" run (the runs, slowest first: {_listed(runs, 'cpu_us', '.1f')})"
        f" | {tenants['cpu_us']:.1f} µs | ≤ 15 µs |",
        f"| peak RSS, {ORGANISATIONS} organisations (daemon + ingest workers)"
        f" | {tenants['rss_mb']:.0f} MB | |",
        f"| peak RSS, 1 stream, {args.records:,} records | {one['rss_mb']:.0f} MB | |",
        f"| peak RSS, {args.backlog:,}-record backlog behind a paused stream"
        f" | {backlog_rss:.0f} MB | ≤ 250 MB |",
        f"| daemon CPU, 10 streams vs 1 (same records) | {cpu_ratio:.2f}×"
        f" ({ten['cpu_secs']:.1f} s vs {single['cpu_secs']:.1f} s) | ≤ 3× |",
        f"| duplicates delivered (no crash) | {one['duplicates'] + single['duplicates']} | 0 |",
    ]
    return "\n".join(table)


def _listed(runs: list[dict[str, float]], key: str, spec: str) -> str:
    """Each run's ``key``, formatted by ``spec``."""
    return ", ".join(format(run[key], spec) for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    table = asyncio.run(bench(args))
    print(table)
    if args.write:
        write_section("e2e", table)


if __name__ == "__main__":
    main()
