"""A secrets sweep: a destination that echoes every secret of its stream back in its error
replies, and every answer, log line and metric is searched for every secret value; the data
directory and database are owner-only."""

from __future__ import annotations

import base64
import stat
from urllib.parse import urlsplit, urlunsplit

from schemas import Kind, Version
from tests.e2e.harness import (
    NewReceiver,
    Reply,
    Response,
    StartDaemon,
    fleet_records,
    ndjson,
)

HEADER_SECRET = "hdr-secret-4f1c9a"
URL_USER = "hook-user-77"
URL_PASSWORD = "url-p4ss-word-93"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"sweep signing key of 32 bytes..!").decode()


def with_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{URL_USER}:{URL_PASSWORD}@{parts.netloc}"))


async def test_secrets_echoed_by_a_destination_appear_nowhere(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await start_daemon(STREAMER_LOG_LEVEL="debug", STREAMER_RETRY_MAX_SECS="1")
    secrets = [
        daemon.token,
        HEADER_SECRET,
        URL_PASSWORD,
        f"{URL_USER}:{URL_PASSWORD}",
        SIGNING_SECRET,
        SIGNING_SECRET.removeprefix("whsec_"),
    ]
    answers: list[Response] = []

    async def call(method: str, path: str, **options: object) -> Response:
        response = await daemon.request(method, path, **options)  # type: ignore[arg-type]
        answers.append(response)
        return response

    made = await daemon.request(  # the one answer that shows a token, by design
        "POST", "/api/v1/application_token", json={"role": "observer", "name": "o"}
    )
    observer = made.json()["token"]
    secrets.append(observer)
    receiver = await new_receiver()
    echo = (
        f"refused X-Api-Key: {HEADER_SECRET}; you are {URL_USER}:{URL_PASSWORD};"
        f" signed with {SIGNING_SECRET}"
    ).encode()
    receiver.script(Reply(503, body=echo), Reply(400, body=echo))
    stream_id = await daemon.create_stream(
        with_userinfo(receiver.url),
        size=10,
        name="sweep",  # the harness's default name holds the URL
        credentials={"headers": [f"X-Api-Key:{HEADER_SECRET}"], "signing_secret": SIGNING_SECRET},
    )
    records = fleet_records(90, 5, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(records, Kind.EVENT, Version.NEW), 5, ndjson=True)
    failed = await daemon.reaches_status(stream_id, 3)
    assert "refused X-Api-Key: ****; you are ****; signed with ****" in failed["error"]["message"]
    assert receiver.exchanges[0].headers["X-Api-Key"] == HEADER_SECRET  # it did travel there

    one = await call("GET", f"/api/v2/data_stream/{stream_id}", token=observer)
    assert one.status == 200
    assert "****@" in one.json()["destination"]["credentials"]["url"]
    await call("GET", "/api/v2/data_stream")
    legacy = await call("GET", "/api/v1/data_stream")
    [item] = legacy.json()
    assert item["api_callback"].startswith("http://****@127.0.0.1:")
    await call("GET", f"/api/v1/data_stream/{stream_id}")
    await call("GET", "/metrics", token=None)
    await call("GET", "/api/v1/application_token")
    restarted = await call("POST", f"/api/v2/data_stream/{stream_id}/restart")
    assert restarted.status < 300, restarted.text
    await daemon.reaches_status(stream_id, 3)  # the 400 echo, after the restart
    await call("GET", f"/api/v2/data_stream/{stream_id}", token=observer)

    code, _ = await daemon.stop()
    assert code == 0
    for secret in secrets:
        for response in answers:
            assert secret not in response.text, (secret[:4], response.text[:200])
            assert all(secret not in value for value in response.headers.values())
        for line in daemon.output:
            assert secret not in line, (secret[:4], line[:200])


async def test_the_data_directory_and_database_are_owner_only(start_daemon: StartDaemon) -> None:
    daemon = await start_daemon()
    await daemon.ingest_ok(
        Kind.EVENT,
        ndjson(fleet_records(91, 2, Kind.EVENT), Kind.EVENT, Version.NEW),
        2,
        ndjson=True,
    )
    assert stat.S_IMODE(daemon.data_dir.stat().st_mode) == 0o700
    files = [path for path in daemon.data_dir.iterdir() if path.name.startswith("streamer.db")]
    assert {path.name for path in files} >= {"streamer.db", "streamer.db-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
