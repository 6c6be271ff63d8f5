"""``streamer streams`` and ``streamer top`` read a running daemon through its API."""

from __future__ import annotations

import re

import pytest

from schemas import Kind, Version
from streamer.client import ServiceError
from streamer.status import show_streams, top
from tests.e2e.harness import Daemon, NewReceiver, fleet_records, ndjson


async def test_streams_lists_status_pending_and_delivered(
    daemon: Daemon, new_receiver: NewReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    records = fleet_records(3, 25, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 25, ndjson=True)
    await daemon.settled(stream_id, 25)

    await show_streams(daemon.base_url, daemon.token)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:8] == [
        "ID", "NAME", "ORG", "DESTINATION", "VERSION", "STATUS", "PENDING", "DELIVERED"
    ]  # fmt: skip
    row = next(line for line in out[1:] if line.startswith(str(stream_id)))
    assert re.search(r"RestAPI\s+new\s+Running\s+0\s+25\s+200", row), row


async def test_top_shows_a_rate_per_stream(
    daemon: Daemon, new_receiver: NewReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, size=10)
    await top(daemon.base_url, daemon.token, interval=0.01, rounds=1)
    records = fleet_records(4, 40, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 40, ndjson=True)
    await daemon.settled(stream_id, 40)
    capsys.readouterr()

    await top(daemon.base_url, daemon.token, interval=0.01, rounds=2)
    frames = capsys.readouterr().out.split("streamer top — ")[1:]
    assert len(frames) == 2
    assert "RATE/S" in frames[0]
    assert re.search(rf"^{stream_id}\s.*Running\s+0\s+40\s+\d+\s+200", frames[-1], re.M), frames


async def test_a_wrong_token_is_one_clear_error(daemon: Daemon) -> None:
    with pytest.raises(ServiceError, match="401"):
        await show_streams(daemon.base_url, "not-a-token")
