"""Records ingested in any version arrive at each stream in exactly that stream's version.

API.md §5 (ingest, ``format=auto``) and §6 (webhook body and headers): every record of every
version and kind, sent as a JSON array, NDJSON or gzip NDJSON, reaches a ``new``, a
``migrated`` and an ``old`` stream as JSON arrays of at most ``size`` records that validate
against that version's JSON Schema, with the version's ``User-Agent``.
"""

from __future__ import annotations

from typing import Any

import orjson
from jsonschema import Draft202012Validator

from schemas import Kind, Version, dumps, json_schema, parse_record
from streamer.simulate import Fleet
from tests.e2e.harness import Daemon, NewReceiver, eventually, fleet_records, json_array, ndjson
from tests.log.backends import ON_BOTH_BACKENDS

pytestmark = ON_BOTH_BACKENDS

SIZE = 7
PER_KIND_AND_VERSION = 15
USER_AGENT = {Version.NEW: "DataStreamer/2.0", Version.MIGRATED: "DataStreamer/2.0",
              Version.OLD: "TLD"}  # fmt: skip


async def test_every_version_in_arrives_in_each_streams_version(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receivers = {version: await new_receiver() for version in Version}
    streams = [
        await daemon.create_stream(receiver.url, version=version, size=SIZE)
        for version, receiver in receivers.items()
    ]

    # What was sent, by id: its kind and the JSON value the producer posted.
    sent: dict[int, tuple[Kind, Any]] = {}
    seed = 100
    for kind in Kind:
        for version in Version:
            seed += 1
            records = fleet_records(seed, PER_KIND_AND_VERSION, kind)
            for record in records:
                sent[record["id"]] = (kind, orjson.loads(dumps(record, kind, version)))
            # Each version in a different framing: array, NDJSON, gzip NDJSON.
            if version is Version.OLD:
                await daemon.ingest_ok(kind, json_array(records, kind, version), len(records))
            elif version is Version.MIGRATED:
                body = ndjson(records, kind, version)
                await daemon.ingest_ok(kind, body, len(records), ndjson=True)
            else:
                body = ndjson(records, kind, version)
                await daemon.ingest_ok(kind, body, len(records), ndjson=True, gzipped=True)
    assert len(sent) == 2 * 3 * PER_KIND_AND_VERSION  # ids are distinct across seeds

    for version, receiver in receivers.items():
        await eventually(
            lambda r=receiver: r.id_set() == set(sent), what=f"every record at the {version} stream"
        )

    for version, receiver in receivers.items():
        validators = {kind: Draft202012Validator(json_schema(kind, version)) for kind in Kind}
        delivered: list[int] = []
        for exchange in receiver.exchanges:
            assert exchange.acknowledged
            assert exchange.method == "POST"
            assert exchange.path == "/hook"
            assert exchange.headers["Content-Type"] == "application/json"
            assert exchange.headers["User-Agent"] == USER_AGENT[version]
            assert exchange.headers["Accept"] == "application/json"
            assert exchange.headers.get("Idempotency-Key")
            records = exchange.records()
            assert isinstance(records, list)
            assert 1 <= len(records) <= SIZE
            for record in records:
                kind, original = sent[record["id"]]
                errors = [e.message for e in validators[kind].iter_errors(record)]
                assert not errors, (version, kind, record["id"], errors[:5])
                # Exactly what the format layer makes of what was posted: nothing is lost or
                # changed on the way through the log, the batching and the connector.
                expected = orjson.loads(dumps(parse_record(original, kind), kind, version))
                assert record == expected, (version, kind, record["id"])
                delivered.append(record["id"])
        # No failure happened, so nothing was sent twice.
        assert sorted(delivered) == sorted(sent), version

    # The streams report what they delivered.
    for stream_id in streams:
        stream = await daemon.settled(stream_id, len(sent))
        assert stream["status"]["id"] == 1, stream
        assert stream["error"] is None
        assert stream["stats"]["last_result_code"] == 200


async def test_a_stream_gets_only_its_organisation_kinds_filters_and_records_since_it_began(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    """API.md §2 and §3: a stream receives only its own organisation's records, of its
    ``data_stream_type``, passing its filters, and (without ``stream_historic_data``) only
    records stored after it was created; with it, the older ones too."""
    fleet = Fleet(90, organisations=3)
    early = [fleet.event() for _ in range(30)]
    await daemon.ingest_ok(Kind.EVENT, ndjson(early, Kind.EVENT, Version.NEW), 30, ndjson=True)

    receivers = [await new_receiver() for _ in range(5)]
    streams = [
        await daemon.create_stream(receivers[0].url, type_id=3),  # org 1, both kinds
        await daemon.create_stream(receivers[1].url, type_id=1),  # org 1, usage only
        await daemon.create_stream(
            receivers[2].url, type_id=2, filters=[{"field": "alert", "value": [True]}]
        ),
        await daemon.create_stream(
            receivers[3].url,
            type_id=2,
            filters=[{"field": "event_type_id", "value": [1, 2]}],
            organisation={"id": 2},
        ),
        await daemon.create_stream(receivers[4].url, type_id=2, stream_historic_data=True),
    ]

    events = [fleet.event() for _ in range(300)]
    usage = [fleet.usage() for _ in range(300)]
    await daemon.ingest_ok(Kind.EVENT, ndjson(events, Kind.EVENT, Version.NEW), 300, ndjson=True)
    await daemon.ingest_ok(Kind.USAGE, ndjson(usage, Kind.USAGE, Version.NEW), 300, ndjson=True)

    def org(records: list[Any], organisation: int) -> list[Any]:
        return [r for r in records if r["organisation"]["id"] == organisation]

    expected = [
        org(events, 1) + org(usage, 1),
        org(usage, 1),
        [r for r in org(events, 1) if r["alert"]],
        [r for r in org(events, 2) if r["event_type"]["id"] in (1, 2)],
        org(early, 1) + org(events, 1),
    ]
    for stream_id, receiver, records in zip(streams, receivers, expected, strict=True):
        assert records  # the fleet makes some of each
        # Settled: the stream has looked at every record in the log, and counted these.
        await daemon.settled(stream_id, len(records))
        assert sorted(receiver.ids()) == sorted(r["id"] for r in records), stream_id
