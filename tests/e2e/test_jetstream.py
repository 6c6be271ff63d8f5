"""The service on JetStream when NATS goes away and comes back (file storage, killed with
SIGKILL): ingest and the API's writes (a pause, a new token) answer 503, not 500, while it is
away, and a pause refused so leaves the stream delivering, also once NATS is back; the replica
lets the stream go once its lease lapsed and takes it again; what was acknowledged before is
delivered; the service reconnects by itself and takes records again; the stream stays Running
(the service's own failures never put a stream in Error)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from schemas import Kind, Version
from streamer.log.leases import LEASE_SECS
from tests.e2e.harness import NewReceiver, StartDaemon, eventually, fleet_records, ndjson
from tests.nats_server import NatsServer

pytestmark = pytest.mark.parametrize(
    "log_backend", [pytest.param("nats", marks=pytest.mark.nats)], indirect=True
)


async def test_nats_away_is_503_and_nats_back_loses_nothing_acknowledged(
    start_daemon: StartDaemon, new_receiver: NewReceiver, daemon_nats: NatsServer
) -> None:
    daemon = await start_daemon()
    receiver = await new_receiver()
    stream = await daemon.create_stream(receiver.url, size=50)
    before = fleet_records(60, 200, Kind.USAGE)
    await daemon.ingest_ok(Kind.USAGE, ndjson(before, Kind.USAGE, Version.NEW), 200, ndjson=True)
    acknowledged = {record["id"] for record in before}

    daemon_nats.kill()
    await eventually(
        lambda: {e["connection"] for e in daemon.events(_LOST)} == {"log", "store", "leases"},
        30,
        what="every NATS connection of the daemon lost",
    )
    away = fleet_records(61, 100, Kind.USAGE)
    refused = await daemon.ingest(Kind.USAGE, ndjson(away, Kind.USAGE, Version.NEW), ndjson=True)
    assert refused.status == 503, (refused.status, refused.text)
    assert "Retry-After" in refused.headers
    for method, path, body in [
        ("PATCH", f"/api/v2/data_stream/{stream}", {"status": {"id": 2}}),  # a pause
        ("POST", "/api/v1/application_token", {"role": "ingest", "organisation": {"id": 1}}),
    ]:
        answer = await daemon.request(method, path, json=body)
        assert answer.status == 503, (method, path, answer.status, answer.text)
        assert "Retry-After" in answer.headers
    await eventually(
        lambda: _span(daemon.events(_RENEWALS_FAILED)) >= LEASE_SECS and daemon.events(_HALTED),
        3 * LEASE_SECS,
        what="NATS away for longer than a lease, and the stream halted for it",
    )
    daemon_nats.start()

    after = fleet_records(62, 300, Kind.USAGE)
    body = ndjson(after, Kind.USAGE, Version.NEW)

    async def taken() -> bool:
        response = await daemon.ingest(Kind.USAGE, body, ndjson=True)
        assert response.status in (202, 503), (response.status, response.text)
        return response.status == 202

    await eventually(taken, 30, what="ingest taken again once NATS is back")
    acknowledged |= {record["id"] for record in after}
    await eventually(
        lambda: acknowledged <= receiver.id_set(), 30, what="every acknowledged record delivered"
    )
    assert not {record["id"] for record in away} & receiver.id_set()  # refused, not held back
    assert (await daemon.stream(stream))["status"]["id"] == 1


_LOST = "NATS connection lost, reconnecting"
_RENEWALS_FAILED = "renewing streams' leases failed"
_HALTED = "stream halted: its lease is not this replica's"


def _span(events: list[dict[str, Any]]) -> float:
    """Seconds from the first of ``events`` to the last."""
    times = [datetime.fromisoformat(event["timestamp"]) for event in events]
    return (times[-1] - times[0]).total_seconds() if times else 0.0


async def test_a_replica_stopped_while_nats_is_away_exits_cleanly(
    start_daemon: StartDaemon, new_receiver: NewReceiver, daemon_nats: NatsServer
) -> None:
    daemon = await start_daemon()
    receiver = await new_receiver()
    await daemon.create_stream(receiver.url, size=50)
    daemon_nats.kill()
    code, _ = await daemon.stop()
    assert code == 0, "\n".join(daemon.output[-30:])
