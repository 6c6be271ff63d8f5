"""The test suite's own nats-server: it starts, answers JetStream, and keeps its store across a
restart on the same port."""

from __future__ import annotations

import nats

from tests.nats_server import NatsServer


async def test_the_server_keeps_its_store_and_port_across_a_restart(
    nats_server: NatsServer,
) -> None:
    client = await nats.connect(nats_server.url)
    js = client.jetstream()
    await js.add_stream(name="probe", subjects=["probe.>"])
    ack = await js.publish("probe.one", b"kept")
    await client.close()
    url = nats_server.url

    nats_server.restart()

    assert nats_server.url == url
    client = await nats.connect(nats_server.url)
    stored = await client.jetstream().get_msg("probe", ack.seq)
    await client.close()
    assert stored.data == b"kept"
