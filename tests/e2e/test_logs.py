"""What the daemon logs. In JSON mode every line is one JSON object, whatever happens: a request
with a NUL byte in a header (aiohttp's parser logs it), a client that drops its connection
mid-upload, and an AWS destination that cannot be reached (botocore and the retry loop log it).
A client going away is not an error of the service's. Streams that moved get a delivery line."""

from __future__ import annotations

import asyncio

import orjson

from schemas import Kind, Version
from tests.e2e.harness import (
    Daemon,
    NewReceiver,
    Reply,
    StartDaemon,
    eventually,
    fleet_records,
    ndjson,
)

ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/streamer"


async def _raw(daemon: Daemon, data: bytes, *, read: bool) -> bytes:
    host, port = daemon.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10) if read else b""
    writer.close()
    await writer.wait_closed()
    return answer


async def test_every_line_is_json_through_hostile_requests_and_failures(
    start_daemon: StartDaemon,
) -> None:
    daemon = await start_daemon(STREAMER_LOG_LEVEL="debug")  # the libraries' lines too
    answer = await _raw(
        daemon, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", read=True
    )
    assert b" 400 " in answer.split(b"\r\n")[0]

    await _raw(
        daemon,
        b"POST /api/v1/ingest/events HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {daemon.token}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{",
        read=False,
    )

    stream_id = await daemon.create_destination_stream(
        "AwsKinesis",
        {"region": "eu-west-1", "stream_name": "nowhere", "role_arn": ACCOUNT_ROLE},
    )
    records = fleet_records(7, 20, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 20, ndjson=True)
    failed = await daemon.reaches_status(stream_id, 3)
    assert failed["error"]["message"]

    code, _ = await daemon.stop()
    assert code == 0
    lines = [line for line in daemon.output if line.strip()]
    assert len(lines) >= 5
    events = []
    for line in lines:
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"not one JSON object: {line!r}") from None
    assert all(isinstance(event, dict) for event in events)
    errors = [e for e in events if e.get("level") == "error" and "ingest" in str(e)]
    assert errors == [], [e.get("exception", "")[-600:] for e in errors]
    libraries = {e["logger"].split(".")[0] for e in events if "logger" in e}
    assert libraries & {"asyncio", "aiohttp", "botocore", "aiobotocore"}, "the libraries' lines"


async def test_streams_that_moved_get_a_delivery_line(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await start_daemon(STREAMER_SUMMARY_INTERVAL_SECS="0.2")
    busy, quiet = await new_receiver(), await new_receiver()
    busy_id = await daemon.create_stream(busy.url, size=10)
    quiet_id = await daemon.create_stream(quiet.url, type_id=1)  # usage only: gets nothing
    records = fleet_records(8, 30, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 30, ndjson=True)

    def delivered_in_lines() -> int:
        lines = [orjson.loads(x) for x in daemon.output if '"delivery"' in x]
        return sum(e["records"] for e in lines if e["stream"] == busy_id)

    await eventually(lambda: delivered_in_lines() == 30, what="delivery lines adding up to 30")
    summaries = [orjson.loads(x) for x in daemon.output if '"delivery"' in x]
    assert {e["stream"] for e in summaries} == {busy_id}, "a quiet stream writes no line"
    assert sum(e["requests"] for e in summaries) == len(busy.acknowledged())
    assert summaries[-1]["pending"] == 0
    assert summaries[-1]["status"] == "Running"
    assert quiet_id != busy_id


async def test_each_change_of_a_stream_is_an_info_line(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    records = fleet_records(9, 20, Kind.EVENT)
    await daemon.ingest_ok(
        Kind.EVENT, ndjson(records[:10], Kind.EVENT, Version.NEW), 10, ndjson=True
    )
    await daemon.settled(stream_id, 10)
    receiver.script(503)  # one retryable failure once the stream delivers: then recovered
    await daemon.ingest_ok(
        Kind.EVENT, ndjson(records[10:], Kind.EVENT, Version.NEW), 10, ndjson=True
    )
    await daemon.settled(stream_id, 20)
    await daemon.patch_status(stream_id, 2)
    await daemon.patch_status(stream_id, 1)
    response = await daemon.request("POST", f"/api/v2/data_stream/{stream_id}/restart")
    assert response.status == 202
    receiver.default = Reply(400)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records[:1], Kind.EVENT, Version.NEW), 1, ndjson=True)
    await daemon.reaches_status(stream_id, 3)
    response = await daemon.request("DELETE", f"/api/v2/data_stream/{stream_id}")
    assert response.status == 202

    def told() -> list[str]:
        events = [orjson.loads(x) for x in daemon.output if x.startswith("{")]
        return [
            e["event"] for e in events if e.get("stream") == stream_id and e["level"] != "debug"
        ]

    expected = ["stream created", "stream recovered", "stream paused", "stream resumed",
                "stream restarted", "stream failed", "stream deleted"]  # fmt: skip
    await eventually(
        lambda: [e for e in told() if e in expected] == expected, what="the stream's story"
    )
