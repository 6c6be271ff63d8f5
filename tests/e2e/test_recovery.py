"""One bad record, one bad stream, a full disk: the rest keeps going, and each recovers by itself.

``streamer run`` as a real subprocess; webhooks on the suite's receivers, KeenIO and Datadog on
their protocol-faithful fakes, Kinesis on moto, the data directory on a small tmpfs where the
disk must fill (RELIABILITY.md names each guarantee and its test here).
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import Kind, Version
from streamer.log.base import Entry
from streamer.log.sqlite import SqliteLog
from tests.aws import REGION, Aws
from tests.connectors.fakes import (
    DATADOG_API_KEY,
    KEEN_PROJECT,
    KEEN_WRITE_KEY,
    FakeDatadog,
    FakeKeen,
)
from tests.e2e.harness import (
    API_POLL_SECS,
    Daemon,
    NewReceiver,
    Reply,
    StartDaemon,
    eventually,
    fleet_records,
    ids_of,
    ndjson,
)

RUNNING, PAUSED, ERROR, PENDING = 1, 2, 3, 4
EVENTS = 2
COLLECTION = "sim_events"


async def letters_of(daemon: Daemon, stream_id: int, count: int) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]] | None:
        letters = await daemon.dead_letters(stream_id)
        return letters if len(letters) >= count else None

    found: list[dict[str, Any]] = await eventually(
        listed, what=f"{count} dead letters of stream {stream_id}", interval_secs=API_POLL_SECS
    )
    return found


async def no_pending(daemon: Daemon, stream_id: int) -> dict[str, Any]:
    """Wait until nothing is pending and the stream is no longer Pending (its first batch
    acknowledged, or failed)."""

    async def done() -> dict[str, Any] | None:
        stream = await daemon.stream(stream_id)
        settled = stream["stats"]["pending_records"] == 0 and stream["status"]["id"] != PENDING
        return stream if settled else None

    stream: dict[str, Any] = await eventually(
        done, what=f"stream {stream_id} with nothing pending", interval_secs=API_POLL_SECS
    )
    return stream


async def create_kinesis_stream(aws: Aws, name: str) -> None:
    async with aws.account.client("kinesis") as kinesis:
        await kinesis.create_stream(StreamName=name, ShardCount=1)
        waiter = kinesis.get_waiter("stream_exists")
        await waiter.wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


# --- poison records ------------------------------------------------------------------------------


async def put_poison_in_the_log(daemon: Daemon) -> list[int]:
    """Two events in the log that only the ``new`` rendering (the canonical bytes as they are)
    can deliver: their ``timestamp`` is a number. Ingest refuses such records, and the parser
    and the renderers agree on everything ingest accepts (tests/schemas/test_render_agreement.py),
    so the poison is written into the log of the stopped daemon, as a log written by an older
    version, or a renderer bug, would hold it. Returns their ids."""
    code, _ = await daemon.stop()
    assert code == 0
    poison = [copy.deepcopy(r) for r in fleet_records(77, 2, Kind.EVENT)]
    for record in poison:
        record["timestamp"] = 1_700_000_000
    log = await SqliteLog.open(daemon.data_dir, "normal")
    try:
        await log.append([Entry(Kind.EVENT, 1, 1, 0, orjson.dumps(r)) for r in poison])
    finally:
        await log.aclose()
    await daemon.restart()
    return [record["id"] for record in poison]


async def test_poison_records_are_dead_letters_and_every_stream_goes_on(
    aws: Aws,
    start_daemon: StartDaemon,
    new_receiver: NewReceiver,
    keen: FakeKeen,
    datadog: FakeDatadog,
) -> None:
    await create_kinesis_stream(aws, "poison")
    daemon = await start_daemon(
        **aws.account.environment(),
        STREAMER_KEENIO_URL=keen.url,
        STREAMER_DATADOG_URL=datadog.url,
    )
    webhooks = {version: await new_receiver() for version in Version}
    streams: dict[str, int] = {}
    for version, receiver in webhooks.items():
        streams[f"RestAPI {version}"] = await daemon.create_stream(
            receiver.url, version=version, type_id=EVENTS, size=50
        )
        keen_credentials = {
            "project_id": KEEN_PROJECT,
            "write_key": KEEN_WRITE_KEY,
            "collection_name": COLLECTION,
            "size": 50,
        }
        streams[f"KeenIO {version}"] = await daemon.create_destination_stream(
            "KeenIO", keen_credentials, version=version, type_id=EVENTS
        )
        kinesis = {"region": REGION, "stream_name": "poison", "role_arn": aws.account.role_arn}
        streams[f"AwsKinesis {version}"] = await daemon.create_destination_stream(
            "AwsKinesis", kinesis, version=version, type_id=EVENTS
        )
    streams["Datadog"] = await daemon.create_destination_stream(
        "Datadog", {"api_key": DATADOG_API_KEY, "region": "EU"}, type_id=EVENTS
    )
    good = fleet_records(78, 10, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(good[:5], Kind.EVENT, Version.NEW), 5, ndjson=True)
    for stream_id in streams.values():
        await no_pending(daemon, stream_id)
    poison_ids = await put_poison_in_the_log(daemon)
    await daemon.ingest_ok(Kind.EVENT, ndjson(good[5:], Kind.EVENT, Version.NEW), 5, ndjson=True)

    for name, stream_id in streams.items():
        stream = await no_pending(daemon, stream_id)
        assert stream["status"]["id"] == RUNNING, (name, stream)
        assert stream["error"] is None, (name, stream)
        letters = await daemon.dead_letters(stream_id)
        if name.endswith((" old", " migrated")):
            assert sorted(letter["record"]["id"] for letter in letters) == sorted(poison_ids), name
            for letter in letters:
                assert letter["reason"].startswith("the record cannot be rendered as JSON in"), (
                    letter["reason"]
                )
            assert stream["stats"]["delivered_records"] == 10, (name, stream)
        else:
            assert stream["stats"]["delivered_records"] + len(letters) == 12, (name, letters)
    for version in (Version.OLD, Version.MIGRATED):
        assert webhooks[version].id_set() == set(ids_of(good))
    assert webhooks[Version.NEW].id_set() == {*ids_of(good), *poison_ids}

    later = fleet_records(79, 4, Kind.EVENT)  # the streams go on
    await daemon.ingest_ok(Kind.EVENT, ndjson(later, Kind.EVENT, Version.NEW), 4, ndjson=True)
    for name in ("RestAPI old", "KeenIO old", "AwsKinesis old", "RestAPI migrated"):
        await daemon.settled(streams[name], 14)
    assert webhooks[Version.OLD].id_set() == set(ids_of(good + later))
    assert "stream worker crashed" not in "\n".join(daemon.output)


# --- streams that cannot be built ----------------------------------------------------------------


async def test_a_stream_whose_destination_is_refused_after_a_restart_is_in_error_alone(
    aws: Aws, start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    await create_kinesis_stream(aws, "kept")
    daemon = await start_daemon(**aws.account.environment())  # private destinations allowed
    receiver = await new_receiver()
    private = await daemon.create_stream(receiver.url, type_id=EVENTS)
    credentials = {"region": REGION, "stream_name": "kept", "role_arn": aws.account.role_arn}
    kept = await daemon.create_destination_stream("AwsKinesis", credentials, type_id=EVENTS)
    first = fleet_records(80, 5, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(first, Kind.EVENT, Version.NEW), 5, ndjson=True)
    await daemon.settled(private, 5)
    await daemon.settled(kept, 5)
    await daemon.reaches_status(private, RUNNING)  # Pending until the first batch is stored
    await daemon.reaches_status(kept, RUNNING)

    code, _ = await daemon.stop()
    assert code == 0
    daemon.env["STREAMER_ALLOW_PRIVATE_DESTINATIONS"] = "false"
    await daemon.restart()

    then = fleet_records(81, 7, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(then, Kind.EVENT, Version.NEW), 7, ndjson=True)
    stream = await daemon.settled(kept, 12)
    assert stream["status"]["id"] == RUNNING
    failed = await daemon.stream(private)
    assert failed["status"]["id"] == ERROR
    reason = failed["error"]["message"]
    assert reason.startswith("the destination cannot be built: destination refused: 127.0.0.1")
    assert "STREAMER_ALLOW_PRIVATE_DESTINATIONS=true" in reason
    assert failed["stats"]["pending_records"] == 7  # kept for when it can be built again

    restart = await daemon.request("POST", f"/api/v2/data_stream/{private}/restart")
    assert restart.status == 422, restart.text
    assert reason in restart.text
    pause = {"status": {"id": PAUSED}}
    response = await daemon.request("PATCH", f"/api/v2/data_stream/{private}", json=pause)
    assert response.status == 202, response.text
    resume = {"status": {"id": RUNNING}}
    response = await daemon.request("PATCH", f"/api/v2/data_stream/{private}", json=resume)
    assert response.status == 422, response.text
    assert reason in response.text
    assert (await daemon.status(private)) == ERROR
    assert "Traceback" not in "\n".join(daemon.output)
    assert (await daemon.request("GET", "/health/ready")).status == 200


# --- the service's own errors: a full disk -------------------------------------------------------

DISK_MB = 24
BALLAST_MB = 12


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A ``DISK_MB`` tmpfs at ``tmp_path / "disk"``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        ci = (
            " (CI=true: this guarantee goes untested in this CI run)"
            if os.environ.get("CI")
            else ""
        )
        pytest.skip(
            f"THE DISK-FULL GUARANTEE IS NOT TESTED: mounting a {DISK_MB} MiB tmpfs was refused"
            f" ({done.stderr.strip() or done.returncode}); run as root{ci}"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> int:
    """Write zeros to ``path`` until the disk is full; return the bytes written."""
    written = 0
    with path.open("ab", buffering=0) as ballast:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    written += ballast.write(b"\0" * chunk)
            except OSError:
                continue
    return written


async def test_a_full_disk_holds_a_lagging_stream_up_and_it_catches_up_by_itself(
    small_disk: Path, bootstrap_token: str, new_receiver: NewReceiver
) -> None:
    ballast = small_disk / "ballast"
    with ballast.open("wb") as file:
        file.write(b"\0" * (BALLAST_MB << 20))
    daemon = Daemon(
        small_disk / "data",
        bootstrap_token,
        {"STREAMER_RETRY_CAP_SECS": "0.5", "STREAMER_SYNC": "full"},
    )
    receiver = await new_receiver()
    receiver.script(*[Reply(delay_secs=0.05)] * 100_000)  # slower than ingest: it lags
    try:
        await daemon.start()
        stream_id = await daemon.create_stream(receiver.url, type_id=EVENTS, size=100)
        first = fleet_records(98, 10, Kind.EVENT)
        await daemon.ingest_ok(Kind.EVENT, ndjson(first, Kind.EVENT, Version.NEW), 10, ndjson=True)
        await daemon.reaches_status(stream_id, RUNNING)  # Pending until its first batch
        acknowledged = ids_of(first)
        refused = None
        for seed in range(1000):
            records = fleet_records(100 + seed, 500, Kind.EVENT)
            body = ndjson(records, Kind.EVENT, Version.NEW)
            response = await daemon.ingest(Kind.EVENT, body, ndjson=True)
            if response.status == 202:
                acknowledged += ids_of(records)
                continue
            refused = response
            break
        assert refused is not None, "the disk never filled"
        assert refused.status == 503, refused.text
        assert "full" in refused.text
        assert int(refused.headers["Retry-After"]) > 0
        fill(small_disk / "more-ballast")  # not a byte left

        async def held() -> dict[str, Any] | None:
            assert await daemon.status(stream_id) == RUNNING  # never Error on the way
            ready = (await daemon.request("GET", "/health/ready")).json()
            return ready if str(stream_id) in ready.get("delivery_held", {}) else None

        ready = await eventually(held, what="delivery held up by the full disk", interval_secs=0.2)
        assert "full" in ready["delivery_held"][str(stream_id)]
        assert await daemon.status(stream_id) == RUNNING
        errors = await daemon.metric(
            "streamer_delivery_service_errors_total", stream=str(stream_id)
        )
        assert errors is not None
        assert errors >= 1

        ballast.unlink()  # space returns; nothing is restarted
        (small_disk / "more-ballast").unlink()
        stream = await daemon.settled(stream_id, len(acknowledged))
        assert stream["status"]["id"] == RUNNING
        assert stream["error"] is None
        assert receiver.id_set() >= set(acknowledged)
        ready = (await daemon.request("GET", "/health/ready")).json()
        assert ready == {"status": "ready"}
        more = ndjson(fleet_records(99, 3, Kind.EVENT), Kind.EVENT, Version.NEW)
        await daemon.ingest_ok(Kind.EVENT, more, 3, ndjson=True)
    finally:
        if daemon.running:
            await daemon.stop()
        await daemon.aclose()


# --- destinations that disappear (the HTTP side of the rule; Kinesis: test_aws.py) ---------------


async def test_a_webhook_that_answers_404_after_deliveries_is_retried_and_loses_nothing(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(receiver.url, type_id=EVENTS, size=100)
    first = fleet_records(90, 5, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(first, Kind.EVENT, Version.NEW), 5, ndjson=True)
    await daemon.settled(stream_id, 5)
    await daemon.reaches_status(stream_id, RUNNING)
    receiver.script(404, 410, 404)  # gone for a moment (a redeploy), then back

    then = fleet_records(91, 6, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(then, Kind.EVENT, Version.NEW), 6, ndjson=True)
    stream = await daemon.settled(stream_id, 11)

    assert stream["status"]["id"] == RUNNING
    assert [e.status for e in receiver.exchanges][-4:] == [404, 410, 404, 200]
    assert receiver.id_set() == set(ids_of(first + then))


async def test_a_new_webhook_stream_whose_first_send_is_404_fails_fast(
    daemon: Daemon, new_receiver: NewReceiver
) -> None:
    receiver = await new_receiver()
    receiver.script(404)
    stream_id = await daemon.create_stream(receiver.url, type_id=EVENTS)
    records = fleet_records(92, 3, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 3, ndjson=True)

    stream = await daemon.reaches_status(stream_id, ERROR)

    assert stream["error"]["http_status"] == 404
    assert len(receiver.exchanges) == 1
