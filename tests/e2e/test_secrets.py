"""Secrets stay secret (API.md §2, §3; logs.py): the bootstrap token, an application token, a
stream's custom header value and its signing secret reach the destination where they belong,
and never appear in the daemon's output or in what the API shows (masked as ``****``)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from schemas import Kind, Version
from tests.e2e.harness import NewReceiver, Reply, StartDaemon, eventually, fleet_records, ndjson

HEADER_SECRET = "s3cr3t-value"
NEW_HEADER_SECRET = "an0ther-s3cr3t"
SIGNING_KEY = b"e2e signing key of 32 bytes!!..."
SIGNING_SECRET = "whsec_" + base64.b64encode(SIGNING_KEY).decode()


async def test_secrets_never_appear_in_logs_or_api_answers(
    start_daemon: StartDaemon, new_receiver: NewReceiver
) -> None:
    daemon = await start_daemon(STREAMER_LOG_LEVEL="debug")
    made = await daemon.request(
        "POST", "/api/v1/application_token", json={"role": "ingest", "name": "e2e"}
    )
    assert made.status == 201, made.text
    app_token = made.json()["token"]
    secrets = [daemon.token, app_token, HEADER_SECRET, NEW_HEADER_SECRET, SIGNING_SECRET]
    receiver = await new_receiver()
    stream_id = await daemon.create_stream(
        receiver.url,
        size=10,
        credentials={"headers": [f"X-Api-Key:{HEADER_SECRET}"], "signing_secret": SIGNING_SECRET},
    )
    path = f"/api/v2/data_stream/{stream_id}"

    # Deliveries, with a failure and a retry on the way, so the delivery path logs too.
    records = fleet_records(80, 5, Kind.EVENT)
    taken = await daemon.request(
        "POST",
        "/api/v1/ingest/events",
        data=ndjson(records, Kind.EVENT, Version.NEW),
        headers={"Content-Type": "application/x-ndjson"},
        token=app_token,  # the new token works, and is used in a request the daemon sees
    )
    assert taken.status == 202, taken.text
    await eventually(lambda: len(receiver.ids()) == 5, what="the first records")
    receiver.script(Reply(503, body=b"try later"))
    more = fleet_records(81, 5, Kind.EVENT)
    await daemon.ingest_ok(Kind.EVENT, ndjson(more, Kind.EVENT, Version.NEW), 5, ndjson=True)
    await eventually(lambda: len(receiver.ids()) == 10, what="the records after a retry")

    # The destination gets the header and a valid Standard Webhooks signature.
    for exchange in receiver.exchanges:
        assert exchange.headers["X-Api-Key"] == HEADER_SECRET
        signed = f"{exchange.headers['webhook-id']}.{exchange.headers['webhook-timestamp']}."
        assert exchange.body is not None
        digest = hmac.new(SIGNING_KEY, signed.encode() + exchange.body, hashlib.sha256).digest()
        assert exchange.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()

    # Requests that a careless service might log with their credentials.
    basic = base64.b64encode(f"admin:{daemon.token}".encode()).decode()
    refused = await daemon.request(
        "GET", "/api/v2/data_stream", token=None, headers={"Authorization": f"Basic {basic}"}
    )
    assert refused.status == 401
    bad_patch = await daemon.request(
        "PATCH", path, json={"destination": {"credentials": {"headers": [HEADER_SECRET]}}}
    )
    assert bad_patch.status == 422
    changed = await daemon.request(
        "PATCH",
        path,
        json={
            "destination": {
                "connection_type": "RestAPI",
                "credentials": {
                    "url": receiver.url,
                    "size": 10,
                    "headers": [f"X-Api-Key:{NEW_HEADER_SECRET}"],
                    "signing_secret": SIGNING_SECRET,
                },
            }
        },
    )
    assert changed.status == 202, changed.text

    # What the API shows: masked.
    one = await daemon.request("GET", path)
    listing = await daemon.request("GET", "/api/v2/data_stream")
    metrics = await daemon.request("GET", "/metrics")
    tokens = await daemon.request("GET", "/api/v1/application_token")
    for response in (one, listing, metrics, tokens):
        assert response.status == 200
        for secret in secrets:
            assert secret not in response.text
    credentials = one.json()["destination"]["credentials"]
    assert credentials["headers"] == ["X-Api-Key:****"]
    assert credentials["signing_secret"] == "****"
    assert [s["destination"]["credentials"]["headers"] for s in listing.json()] == [
        ["X-Api-Key:****"]
    ]

    code, _ = await daemon.stop()
    assert code == 0
    output = "\n".join(daemon.output)
    assert '"listening"' in output
    assert '"stopped"' in output
    assert "send failed, retrying" in output  # ... the delivery path's too
    for secret in secrets:
        assert secret not in output, f"a secret appears in the daemon's output: {secret[:4]}…"
