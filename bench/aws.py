"""End to end to AWS (moto): ingest → log → Kinesis / S3 stream, against aiobotocore directly.

Run: ``python3 -m bench.aws [--kinesis-records N] [--records N] [--flush-size N] [--write]``.

moto runs in server mode as its own process on loopback (``python -m moto.server``); the daemon
(``streamer run``) is another, reaching moto through ``AWS_ENDPOINT_URL`` with the real
aiobotocore client and a role assumed through STS; this process generates the load (8
concurrent 500-record NDJSON POSTs of ~750-byte event records) and watches moto. Figures in
records/s, all in the same run against the same moto process:

1. baseline Kinesis: aiobotocore ``PutRecords`` of the same records in 500-record calls (the
   connector's batch), one call at a time like one stream, straight from this process, until
   the last record is read back;
2. streamer, one ``AwsKinesis`` stream: from the first ingest request to the last record
   readable in Kinesis. In both, every shard is tailed with GetRecords while records land, so
   moto carries the same reading load;
3. baseline S3: aiobotocore ``PutObject`` (with ``Content-MD5``, SSE ``AES256``) of the CSV
   files the stream writes — header + ``--flush-size`` rows each — one at a time, until the
   bucket lists them all;
4. streamer, one ``S3`` stream (``flush_size`` = ``--flush-size``): from the first ingest request
   to the last object listed in the bucket.

For each destination also "delivery alone": the same records ingested first, timed from the
creation of a stream with ``stream_historic_data`` to the last record readable — the service's
own cost per record (log read, render, connector) without ingest competing for its CPU.

Every run checks what landed: each record exactly once. moto keeps everything in memory, checks
no IAM policy here (its auth is off unless told) and hands out role credentials for any ARN;
it models no throttling and no network latency, so the ratios are the service's own cost. Its
Kinesis looks a shard's last sequence number up in O(shard size) per record, and GetRecords scans
the shard from its start, so Kinesis gets fewer records than S3.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.e2e import BATCH, Daemon, batches, free_port, post_all, wait_until_up
from bench.report import write_section
from connectors.aws import new_session
from connectors.kinesis import partition_key
from connectors.s3 import object_key
from schemas import Kind, Version, csv_header, csv_row

REGION = "eu-west-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/bench-writer"
STREAM = "bench-stream"
DIRECT_STREAM = "bench-direct"
SHARDS = 4
DIRECT_BUCKET = "bench-direct"
DAEMON_BUCKET = "bench-daemon"
POLL_SECS = 0.02


def safe_environment(moto: str) -> dict[str, str]:
    """Every ``AWS_*`` setting of this process and its children: dummy keys, moto as the only
    endpoint, no shared files, no instance metadata — nothing can reach AWS itself."""
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def client(service: str) -> Any:
    """An aiobotocore client straight to moto (``AWS_ENDPOINT_URL``)."""
    return new_session().create_client(service, region_name=REGION)


# --- what is sent -------------------------------------------------------------------------------


def lines_of(bodies: Sequence[bytes]) -> list[bytes]:
    """The records of the NDJSON bodies: the ``new`` rendering the stream sends too."""
    return [line for body in bodies for line in body.split(b"\n")]


def csv_files(lines: Sequence[bytes], flush_size: int) -> dict[str, tuple[bytes, str]]:
    """The CSV files of ``flush_size`` records the S3 stream writes for ``lines`` (log offsets
    from 1, in order), with their ``Content-MD5``."""
    files = {}
    header = csv_header(Kind.EVENT, Version.NEW).encode()
    for start in range(0, len(lines), flush_size):
        rows = [
            csv_row(orjson.loads(line), Kind.EVENT, Version.NEW).encode()
            for line in lines[start : start + flush_size]
        ]
        first, last = start + 1, start + len(rows)
        key = object_key("", Kind.EVENT, Version.NEW, rows[0], first, last)
        body = header + b"".join(rows)
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        files[key] = (body, md5)
    return files


# --- baselines: aiobotocore from this process ---------------------------------------------------


async def direct_kinesis(lines: Sequence[bytes]) -> float:
    """PutRecords of ``lines`` in ``BATCH``-record calls, one after the other, into a stream
    tailed like the daemon's; records/s until the last one was read."""
    calls = [
        [
            {"Data": line, "PartitionKey": partition_key(line, start + index)}
            for index, line in enumerate(lines[start : start + BATCH])
        ]
        for start in range(0, len(lines), BATCH)
    ]
    async with client("kinesis") as kinesis:
        await kinesis.create_stream(StreamName=DIRECT_STREAM, ShardCount=SHARDS)
        landed: list[bytes] = []
        tail = asyncio.ensure_future(tail_kinesis(DIRECT_STREAM, len(lines), landed))
        started = time.perf_counter()
        for records in calls:
            response = await kinesis.put_records(StreamName=DIRECT_STREAM, Records=records)
            if response["FailedRecordCount"]:
                raise RuntimeError(f"{response['FailedRecordCount']} records failed")
        elapsed = await asyncio.wait_for(tail, 600) - started
        await kinesis.delete_stream(StreamName=DIRECT_STREAM)  # moto keeps it in memory
    if sorted(landed) != sorted(lines):
        raise RuntimeError("the baseline's own records did not land exactly once")
    return len(lines) / elapsed


async def direct_s3(files: dict[str, tuple[bytes, str]], records: int) -> float:
    """PutObject of ``files``, one after the other; records/s until the bucket lists them."""
    async with client("s3") as s3:
        started = time.perf_counter()
        for key, (body, md5) in files.items():
            await s3.put_object(
                Bucket=DIRECT_BUCKET,
                Key=key,
                Body=body,
                ContentMD5=md5,
                ContentType="text/csv",
                ServerSideEncryption="AES256",
            )
    elapsed = await wait_objects(DIRECT_BUCKET, len(files)) - started
    return records / elapsed


# --- the streamer -------------------------------------------------------------------------------


async def tail_kinesis(stream: str, count: int, found: list[bytes]) -> float:
    """Read every shard of ``stream`` as records land until ``count`` are read; return the
    ``perf_counter`` at which the last one was read. ``found`` collects the records."""
    async with client("kinesis") as kinesis:
        shards = (await kinesis.list_shards(StreamName=stream))["Shards"]
        iterators = {}
        for shard in shards:
            response = await kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )
            iterators[shard["ShardId"]] = response["ShardIterator"]
        while True:
            empty = True
            for shard_id, iterator in iterators.items():
                page = await kinesis.get_records(ShardIterator=iterator, Limit=10000)
                iterators[shard_id] = page["NextShardIterator"]
                found.extend(record["Data"] for record in page["Records"])
                empty = empty and not page["Records"]
            if len(found) >= count:
                return time.perf_counter()
            if empty:
                await asyncio.sleep(POLL_SECS)


async def wait_objects(bucket: str, count: int) -> float:
    """Poll ``bucket`` until it lists ``count`` objects; the ``perf_counter`` it did."""
    async with client("s3") as s3:
        while (await s3.list_objects_v2(Bucket=bucket))["KeyCount"] < count:
            await asyncio.sleep(POLL_SECS)
        return time.perf_counter()


async def bucket_ids(bucket: str) -> Counter[int]:
    """How often each record id (a row's first cell) occurs in the bucket's CSV files."""
    ids: Counter[int] = Counter()
    async with client("s3") as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
        for item in listed.get("Contents", []):
            response = await s3.get_object(Bucket=bucket, Key=item["Key"])
            async with response["Body"] as body:
                rows = (await body.read()).split(b"\n")[1:]
            ids.update(int(row.split(b",", 1)[0].strip(b'"')) for row in rows if row)
    return ids


Watch = Callable[[], Awaitable[float]]


async def run_streamer(
    session: aiohttp.ClientSession,
    bodies: list[bytes],
    destination: dict[str, Any],
    watch: Watch,
    *,
    backlog: bool = False,
) -> dict[str, float]:
    """One daemon, one stream to ``destination``; ``watch`` waits for the last record to be
    readable. Live: the stream exists first and the clock runs from the first ingest request.
    ``backlog``: ``bodies`` are ingested first and the clock runs from the creation of a stream
    with ``stream_historic_data``. Records/s, ingest alone, daemon CPU while timed."""
    records = sum(body.count(b"\n") + 1 for body in bodies)
    with tempfile.TemporaryDirectory() as data:
        token = secrets.token_urlsafe(32)
        daemon = Daemon(Path(data), token, STREAMER_SYNC="full")  # the default, said
        try:
            await wait_until_up(session, f"{daemon.url}/health/ready")
            auth = {"Authorization": f"Bearer {token}"}
            spec = {
                "name": "bench",
                "data_stream_type": {"id": 2},
                "destination": destination,
                "organisation": {"id": 1},
                "stream_historic_data": backlog,
            }

            async def create() -> None:
                url = f"{daemon.url}/api/v2/data_stream"
                async with session.post(url, json=spec, headers=auth) as response:
                    if response.status != 201:
                        text = await response.text()
                        raise RuntimeError(f"create stream: {response.status} {text}")

            async def ingest() -> float:
                url = f"{daemon.url}/api/v1/ingest/events"
                headers = {**auth, "Content-Type": "application/x-ndjson"}
                return await post_all(session, url, bodies, headers)

            if backlog:
                ingest_secs = await ingest()
            else:
                await create()
            watching = asyncio.ensure_future(watch())
            cpu_before = daemon.cpu_secs()
            started = time.perf_counter()
            if backlog:
                await create()
            else:
                ingest_secs = await ingest()
            done = await asyncio.wait_for(watching, 600)
            return {
                "rate": records / (done - started),
                "ingest_rate": records / ingest_secs,
                "cpu_secs": daemon.cpu_secs() - cpu_before,
            }
        finally:
            daemon.stop()


# --- the run ------------------------------------------------------------------------------------


async def kinesis_runs(
    session: aiohttp.ClientSession, bodies: list[bytes]
) -> tuple[float, dict[str, float], dict[str, float], int]:
    """The baseline, the live and the backlog run; and how many records landed other than
    exactly once in the streamer's runs."""
    lines = lines_of(bodies)
    sent = Counter(orjson.loads(line)["id"] for line in lines)
    print("Kinesis: baseline PutRecords …", flush=True)
    baseline = await direct_kinesis(lines)
    runs = []
    wrong = 0
    for backlog in (False, True):
        print(f"Kinesis: streamer, {'backlog' if backlog else 'live'} …", flush=True)
        stream = f"{STREAM}-{'backlog' if backlog else 'live'}"
        async with client("kinesis") as kinesis:
            await kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
        landed: list[bytes] = []
        credentials = {"region": REGION, "stream_name": stream, "role_arn": ROLE_ARN}
        runs.append(
            await run_streamer(
                session,
                bodies,
                {"connection_type": "AwsKinesis", "credentials": credentials},
                functools.partial(tail_kinesis, stream, len(lines), landed),
                backlog=backlog,
            )
        )
        wrong += check(Counter(orjson.loads(data)["id"] for data in landed), sent)
        async with client("kinesis") as kinesis:
            await kinesis.delete_stream(StreamName=stream)
    return baseline, runs[0], runs[1], wrong


async def s3_runs(
    session: aiohttp.ClientSession, bodies: list[bytes], flush_size: int
) -> tuple[float, dict[str, float], dict[str, float], int, int]:
    """The baseline, the live and the backlog run; how many records landed other than exactly
    once in the streamer's runs; how many files each wrote."""
    lines = lines_of(bodies)
    sent = Counter(orjson.loads(line)["id"] for line in lines)
    files = csv_files(lines, flush_size)
    async with client("s3") as s3:
        for bucket in (DIRECT_BUCKET, f"{DAEMON_BUCKET}-live", f"{DAEMON_BUCKET}-backlog"):
            await s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
    print("S3: baseline PutObject …", flush=True)
    baseline = await direct_s3(files, len(lines))
    if check(await bucket_ids(DIRECT_BUCKET), sent):
        raise RuntimeError("the baseline's own files do not hold every record once")
    runs = []
    wrong = 0
    for backlog in (False, True):
        print(f"S3: streamer, {'backlog' if backlog else 'live'} …", flush=True)
        bucket = f"{DAEMON_BUCKET}-{'backlog' if backlog else 'live'}"
        credentials = {
            "region": REGION,
            "bucket_name": bucket,
            "role_arn": ROLE_ARN,
            "flush_size": flush_size,
        }
        runs.append(
            await run_streamer(
                session,
                bodies,
                {"connection_type": "S3", "credentials": credentials},
                functools.partial(wait_objects, bucket, len(files)),
                backlog=backlog,
            )
        )
        wrong += check(await bucket_ids(bucket), sent)
    return baseline, runs[0], runs[1], wrong, len(files)


async def bench(args: argparse.Namespace, moto: str) -> str:
    bodies = batches(max(args.records, args.kinesis_records), Kind.EVENT)
    async with aiohttp.ClientSession() as session:
        await wait_until_up(session, f"{moto}/moto-api/")
        k_base, k_live, k_backlog, k_wrong = await kinesis_runs(
            session, bodies[: args.kinesis_records // BATCH]
        )
        s3_base, s3_live, s3_backlog, s3_wrong, files = await s3_runs(
            session, bodies[: args.records // BATCH], args.flush_size
        )
    lines = lines_of(bodies)
    size = sum(len(line) for line in lines) / len(lines)
    rows: list[tuple[str, float | dict[str, float], float]] = [
        (f"baseline: aiobotocore PutRecords, {BATCH}/call, one at a time", k_base, k_base),
        ("streamer, 1 AwsKinesis stream: ingest → readable in Kinesis", k_live, k_base),
        ("… delivery alone: a backlog, from the stream's creation", k_backlog, k_base),
        (f"baseline: aiobotocore PutObject of the same {files} CSV files", s3_base, s3_base),
        (
            f"streamer, 1 S3 stream (flush_size {args.flush_size}): ingest → listed",
            s3_live,
            s3_base,
        ),
        ("… delivery alone: a backlog, from the stream's creation", s3_backlog, s3_base),
    ]
    table = [
        "## End to end to AWS (moto): ingest → log → Kinesis / S3 (`bench/aws.py`)",
        "",
        f"Command: `python3 -m bench.aws --kinesis-records {args.kinesis_records} --records"
        f" {args.records} --flush-size {args.flush_size} --write` — event records of"
        f" ~{size:.0f} bytes, {BATCH} per NDJSON POST, 8 in flight; moto (server mode), the"
        " daemon (`STREAMER_SYNC=full`) and this load generator are separate processes on the"
        " same 2-core machine; the baselines are the real aiobotocore client in the benchmark"
        " process against the same moto in the same run. Kinesis: streams of"
        f" {SHARDS} shards tailed with GetRecords in every case, {args.kinesis_records:,} records"
        f" (moto's Kinesis slows down as a shard grows, so fewer than S3's {args.records:,})."
        " moto models no throttling and no network latency: the ratios are the service's own"
        " cost per record; the live figures include ingest, which the baselines do not do.",
        "",
        "| case | records/s | vs baseline | ingest alone (202s) | daemon CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures, baseline in rows:
        if isinstance(figures, float):
            table.append(f"| {name} | {figures:,.0f} | 1.00× | | |")
        else:
            ingest = "" if "backlog" in name else f"{figures['ingest_rate']:,.0f}"
            table.append(
                f"| {name} | {figures['rate']:,.0f} | {figures['rate'] / baseline:.2f}×"
                f" | {ingest} | {figures['cpu_secs']:.1f} s |"
            )
    table += [
        "",
        "Records landed other than exactly once (streamer runs): "
        f"Kinesis {k_wrong}, S3 {s3_wrong}.",
    ]
    return "\n".join(table)


def check(landed: Counter[Any], sent: Counter[Any]) -> int:
    """How many records landed other than exactly once (duplicates + missing)."""
    return sum(((landed - sent) + (sent - landed)).values())


def start_moto(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="records sent to S3")
    parser.add_argument(
        "--kinesis-records", type=int, default=20_000, help="records sent to Kinesis"
    )
    parser.add_argument("--flush-size", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if args.records % BATCH or args.records % args.flush_size or args.kinesis_records % BATCH:
        parser.error(f"record counts must be multiples of {BATCH}, --records of --flush-size")
    if args.records // args.flush_size > 1000:
        parser.error("at most 1000 files (one bucket listing): raise --flush-size")
    port = free_port()
    moto = f"http://127.0.0.1:{port}"
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(safe_environment(moto))  # the daemons inherit it
    process = start_moto(port)
    try:
        table = asyncio.run(bench(args, moto))
    finally:
        process.terminate()
        process.wait()
    print(table)
    if args.write:
        write_section("aws", table)


if __name__ == "__main__":
    main()
