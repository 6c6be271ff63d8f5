"""The Webhook connector over real HTTP on loopback (API.md §6, connectors/webhook.py).

Every request goes to a ``Receiver`` on 127.0.0.1 or ::1; addresses that are not loopback
appear only in ``build()`` calls, which check the URL and never connect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.base import Batch, DestinationMissing, FatalError, RetryableError, SendResult
from connectors.http import PrivateDestinationError, Sessions
from connectors.webhook import Webhook, WebhookConfig, _check_redirect
from schemas import Version
from tests.receivers import Receiver, Reply, eventually

# A session, socket or transport left open fails the test that leaked it.
pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

PAYLOADS = (b'{"id":1,"alert":true}', b'{"id":2,"name":"caf\xc3\xa9"}', b'{"id":3,"cost":0.0015}')
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()

MakeWebhook = Callable[..., Webhook]


def batch(*payloads: bytes, key: str = "stream-7:1200-1202") -> Batch:
    payloads = payloads or PAYLOADS
    n = len(payloads)
    return Batch(key, payloads, ["event"] * n, list(range(1200, 1200 + n)))


@pytest.fixture
async def webhooks() -> AsyncIterator[MakeWebhook]:
    """Build webhooks through ``WebhookConfig.build()`` (loopback allowed unless told
    otherwise) and close every one of them after the test."""
    built: list[Webhook] = []

    def make(url: str, **options: Any) -> Webhook:
        options.setdefault("allow_private", True)
        hook = WebhookConfig(url=url, **options).build()
        built.append(hook)
        return hook

    yield make
    for hook in built:
        await hook.aclose()


@pytest.fixture(scope="module")
def loopback_name() -> str:
    """A name other than ``localhost`` that resolves only to loopback here (from /etc/hosts)."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        address, *names = line.partition("#")[0].split() or [""]
        if address != "127.0.0.1":
            continue
        for name in names:
            if name == "localhost" or name.endswith(".localhost"):
                continue  # refused by name already, before any resolution
            try:
                found = {info[4][0] for info in socket.getaddrinfo(name, None)}
            except OSError:
                continue
            if found and all(ipaddress.ip_address(a).is_loopback for a in found):
                return name
    pytest.skip("no name other than localhost resolves to loopback here (/etc/hosts)")


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the spec rather than from the connector:
    ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, space-separated candidates."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    candidates = (part.partition(",") for part in headers["webhook-signature"].split())
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, _, sig in candidates)


# --- what the destination receives -------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
async def test_body_is_a_json_array_of_the_payloads(
    receiver: Receiver, webhooks: MakeWebhook, count: int
) -> None:
    payloads = PAYLOADS[:count]
    await webhooks(receiver.url + "/hook").send(batch(*payloads))

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.body == b"[" + b",".join(payloads) + b"]"
    assert request.json() == [json.loads(p) for p in payloads]
    assert request.headers["Content-Length"] == str(len(request.body))


async def test_size_1_posts_one_json_object_per_request(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    hook = webhooks(receiver.url + "/hook", size=1)
    assert hook.max_batch == 1
    for payload in PAYLOADS:
        await hook.send(batch(payload))

    assert [request.body for request in receiver.requests] == list(PAYLOADS)
    assert [request.json() for request in receiver.requests] == [json.loads(p) for p in PAYLOADS]


@pytest.mark.parametrize(
    ("version", "user_agent"),
    [
        (Version.OLD, "TLD"),
        (Version.MIGRATED, "DataStreamer/2.0"),
        (Version.NEW, "DataStreamer/2.0"),
    ],
)
async def test_standard_headers(
    receiver: Receiver, webhooks: MakeWebhook, version: Version, user_agent: str
) -> None:
    await webhooks(receiver.url, version=version).send(batch())

    headers = receiver.requests[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["Accept-Encoding"] == "gzip, deflate"
    assert headers.getall("User-Agent") == [user_agent]


async def test_custom_headers_are_sent(receiver: Receiver, webhooks: MakeWebhook) -> None:
    custom = (("Authorization", "Bearer t0ken"), ("X-Tenant", "org-2"))
    await webhooks(receiver.url, headers=custom).send(batch())

    headers = receiver.requests[0].headers
    assert [(name, headers.getall(name)) for name, _ in custom] == [
        ("Authorization", ["Bearer t0ken"]),
        ("X-Tenant", ["org-2"]),
    ]
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_configured_method(receiver: Receiver, webhooks: MakeWebhook, method: str) -> None:
    await webhooks(receiver.url, method=method).send(batch())

    [request] = receiver.requests
    assert request.method == method
    assert request.body == b"[" + b",".join(PAYLOADS) + b"]"


async def test_idempotency_key_is_the_batch_key_and_survives_a_retry(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    hook = webhooks(receiver.url)
    receiver.script(503)
    with pytest.raises(RetryableError):
        await hook.send(batch(key="stream-7:1200-1202"))
    await hook.send(batch(key="stream-7:1200-1202"))
    await hook.send(batch(key="stream-7:1203-1205"))

    keys = [r.headers.getall("Idempotency-Key") for r in receiver.requests]
    assert keys == [["stream-7:1200-1202"], ["stream-7:1200-1202"], ["stream-7:1203-1205"]]


async def test_signed_requests_verify(receiver: Receiver, webhooks: MakeWebhook) -> None:
    hook = webhooks(receiver.url, signing_secret=SECRET)
    receiver.script(500)
    with pytest.raises(RetryableError):
        await hook.send(batch())
    await hook.send(batch())

    for request in receiver.requests:
        headers = request.headers
        assert headers["webhook-id"] == "stream-7:1200-1202"
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert headers["webhook-signature"].startswith("v1,")
        assert verify_signature(SECRET, headers, request.body)
        other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
        assert not verify_signature(other, headers, request.body)
        assert not verify_signature(SECRET, headers, request.body + b" ")


async def test_no_signature_headers_without_a_secret(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    await webhooks(receiver.url).send(batch())

    headers = receiver.requests[0].headers
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"}.isdisjoint(
        name.lower() for name in headers
    )
    assert headers["Idempotency-Key"] == "stream-7:1200-1202"


# --- what the answer means ---------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_delivered(receiver: Receiver, webhooks: MakeWebhook, status: int) -> None:
    receiver.script(Reply(status, body=b"" if status == 204 else b'{"ok":true}'))

    result = await webhooks(receiver.url).send(batch())

    assert result == SendResult(http_status=status)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses(receiver: Receiver, webhooks: MakeWebhook, status: int) -> None:
    receiver.script(Reply(status, body=b"try later"))

    with pytest.raises(RetryableError) as caught:
        await webhooks(receiver.url).send(batch())

    assert caught.value.http_status == status
    assert caught.value.retry_after is None
    assert caught.value.message.startswith(str(status))
    assert "try later" in caught.value.message


def _in_an_hour() -> str:
    return formatdate(time.time() + 3600, usegmt=True)


def _an_hour_ago() -> str:
    return formatdate(time.time() - 3600, usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (lambda: "2", 2.0, 2.0),
        (_in_an_hour, 3500.0, 3600.0),
        (_an_hour_ago, 0.0, 0.0),
        (lambda: "soon", None, None),
    ],
    ids=["seconds", "future-date", "past-date", "garbage"],
)
async def test_retry_after(
    receiver: Receiver,
    webhooks: MakeWebhook,
    status: int,
    retry_after: Callable[[], str],
    low: float | None,
    high: float | None,
) -> None:
    """The header is made when the test runs (a date made at collection would age)."""
    receiver.script(Reply(status, headers={"Retry-After": retry_after()}))

    with pytest.raises(RetryableError) as caught:
        await webhooks(receiver.url).send(batch())

    assert caught.value.http_status == status
    if low is None or high is None:
        assert caught.value.retry_after is None
    else:
        assert caught.value.retry_after is not None
        assert low <= caught.value.retry_after <= high


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (410, "Gone"),
        (413, "Request Entity Too Large"),
        (422, "Unprocessable Entity"),
    ],
)
async def test_fatal_statuses(
    receiver: Receiver, webhooks: MakeWebhook, status: int, phrase: str
) -> None:
    receiver.script(Reply(status, body=b"  no such hook  "))

    with pytest.raises(FatalError) as caught:
        await webhooks(receiver.url).send(batch())

    assert caught.value.http_status == status
    assert isinstance(caught.value, DestinationMissing) == (status in (404, 410))
    assert caught.value.message == f"{status} {phrase}: no such hook"
    assert len(receiver.requests) == 1


async def test_connection_refused_is_retryable(refused_port: int, webhooks: MakeWebhook) -> None:
    with pytest.raises(RetryableError) as caught:
        await webhooks(f"http://127.0.0.1:{refused_port}/hook").send(batch())

    assert caught.value.http_status is None
    assert "network error" in caught.value.message


async def test_a_receiver_hanging_past_the_timeout_is_retryable(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    receiver.script(Reply(hang=True))
    started = time.monotonic()

    with pytest.raises(RetryableError) as caught:
        await webhooks(receiver.url, timeout_secs=0.3).send(batch())

    assert time.monotonic() - started < 5
    assert caught.value.http_status is None
    assert "timed out" in caught.value.message
    assert len(receiver.requests) == 1


async def test_an_outage_is_retryable_and_the_connector_recovers(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    hook = webhooks(receiver.url + "/hook")
    await hook.send(batch(key="before"))
    await receiver.close()

    with pytest.raises(RetryableError):
        await hook.send(batch(key="during"))

    await receiver.start()  # the same port again
    assert (await hook.send(batch(key="after"))).http_status == 200
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert keys == ["before", "after"]
    assert receiver.requests[0].at < receiver.requests[1].at


# --- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_are_followed_with_method_and_body(
    receiver: Receiver, webhooks: MakeWebhook, status: int, method: str
) -> None:
    receiver.script(Reply.redirect("/moved?v=2", status), Reply(202))

    result = await webhooks(receiver.url + "/hook", method=method).send(batch())

    assert result.http_status == 202
    first, second = receiver.requests
    assert (first.path, second.path) == ("/hook", "/moved?v=2")
    assert second.method == first.method == method
    assert second.body == first.body == b"[" + b",".join(PAYLOADS) + b"]"
    assert second.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert second.headers["Content-Type"] == "application/json"


async def test_a_redirect_to_another_host_is_followed(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    async with Receiver("::1") as elsewhere:
        receiver.script(Reply.redirect(elsewhere.url + "/new", 308))

        result = await webhooks(receiver.url, signing_secret=SECRET).send(batch())

        assert result.http_status == 200
        [moved] = elsewhere.requests
        assert moved.path == "/new"
        assert moved.body == receiver.requests[0].body
        assert verify_signature(SECRET, moved.headers, moved.body)


async def test_custom_headers_stay_with_their_host_across_a_redirect(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    async with Receiver("::1") as elsewhere:
        receiver.script(Reply.redirect("/same-host", 307), Reply.redirect(elsewhere.url, 307))

        hook = webhooks(receiver.url, headers=(("X-Api-Key", "s3cr3t"),))
        assert (await hook.send(batch())).http_status == 200

        first, same_host = receiver.requests
        [other_host] = elsewhere.requests
        assert first.headers["X-Api-Key"] == same_host.headers["X-Api-Key"] == "s3cr3t"
        assert "X-Api-Key" not in other_host.headers
        assert other_host.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]


def test_a_redirect_from_https_to_http_is_refused() -> None:
    with pytest.raises(FatalError, match="from HTTPS"):
        _check_redirect("https://example.com/hook", "http://example.com/hook")
    _check_redirect("https://example.com/hook", "https://example.net/hook")
    _check_redirect("http://example.com/hook", "https://example.com/hook")


async def test_custom_headers_never_replace_the_standard_ones(
    receiver: Receiver, webhooks: MakeWebhook
) -> None:
    custom = (("content-type", "text/plain"), ("User-Agent", "mine"), ("X-Team", "ops"))

    await webhooks(receiver.url, headers=custom).send(batch())

    [seen] = receiver.requests
    assert seen.headers.getall("Content-Type") == ["application/json"]
    assert seen.headers.getall("User-Agent") == ["DataStreamer/2.0"]
    assert seen.headers["X-Team"] == "ops"


@pytest.mark.parametrize(
    "reply",
    [
        Reply.redirect("/moved", 301),
        Reply.redirect("/moved", 302),
        Reply.redirect("/moved", 303),
        Reply(307),  # no Location: nothing to follow
    ],
    ids=["301", "302", "303", "307-without-location"],
)
async def test_other_redirects_are_fatal(
    receiver: Receiver, webhooks: MakeWebhook, reply: Reply
) -> None:
    receiver.script(reply)

    with pytest.raises(FatalError) as caught:
        await webhooks(receiver.url).send(batch())

    assert caught.value.http_status == reply.status
    assert caught.value.message.startswith(str(reply.status))
    assert [r.path for r in receiver.requests] == ["/"]


@pytest.mark.parametrize("status", [307, 308])
async def test_a_redirect_loop_is_fatal(
    receiver: Receiver, webhooks: MakeWebhook, status: int
) -> None:
    receiver.default = Reply.redirect("/loop", status)

    with pytest.raises(FatalError) as caught:
        await webhooks(receiver.url + "/loop").send(batch())

    assert "redirects" in caught.value.message
    assert caught.value.http_status == status
    assert len(receiver.requests) == 6  # the request and five hops


# --- private destinations ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.0.0.1./hook",
        "http://10.0.0.1/",
        "http://192.168.1.20/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://localhost/",
        "http://LOCALHOST:9000/",
        "http://localhost./",
        "http://hooks.localhost/",
        "https://user:pw@127.0.0.1/",
    ],
)
def test_build_refuses_private_destinations(url: str) -> None:
    with pytest.raises(PrivateDestinationError):
        WebhookConfig(url=url, allow_private=False).build()


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/in", "https://93.184.215.14/in", "https://[2606:4700::1]/"]
)
def test_build_accepts_public_destinations(url: str) -> None:
    # build() only checks the URL; nothing is sent to these addresses.
    assert isinstance(WebhookConfig(url=url, allow_private=False).build(), Webhook)


async def test_a_name_resolving_to_loopback_is_refused_at_send(
    receiver: Receiver, webhooks: MakeWebhook, loopback_name: str
) -> None:
    url = f"http://{loopback_name}:{receiver.port}/hook"
    guarded = webhooks(url, allow_private=False)  # a name: build() cannot know yet

    with pytest.raises(FatalError) as caught:
        await guarded.send(batch())

    assert "refused" in caught.value.message
    assert "127.0.0.1" in caught.value.message
    assert receiver.requests == []
    # The same name reaches the receiver once private destinations are allowed.
    assert (await webhooks(url).send(batch())).http_status == 200
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/inner",
        "http://[::1]:{port}/inner",
        "http://localhost:{port}/inner",
        "http://{name}:{port}/inner",
    ],
)
async def test_a_redirect_to_a_private_destination_is_refused(
    request: pytest.FixtureRequest, receiver: Receiver, target: str
) -> None:
    name = request.getfixturevalue("loopback_name") if "{name}" in target else ""
    receiver.script(Reply.redirect(target.format(port=receiver.port, name=name), 307))
    # build() would refuse the loopback receiver itself; constructing the connector directly
    # skips that one check, so the first hop lands here, standing in for a public destination
    # that redirects inwards.
    hook = Webhook(WebhookConfig(url=receiver.url + "/hook", allow_private=False))
    try:
        with pytest.raises(FatalError) as caught:
            await hook.send(batch())
    finally:
        await hook.aclose()

    assert "refused" in caught.value.message
    assert [r.path for r in receiver.requests] == ["/hook"]


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamer test receiver")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


async def test_tls_is_verified(self_signed: tuple[Path, Path], webhooks: MakeWebhook) -> None:
    cert_path, key_path = self_signed
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    async with Receiver(ssl_context=server_context) as tls_receiver:
        assert tls_receiver.url.startswith("https://127.0.0.1:")

        with pytest.raises(FatalError) as caught:
            await webhooks(tls_receiver.url + "/hook").send(batch())

        assert "TLS" in caught.value.message
        assert "certificate" in caught.value.message.lower()
        assert tls_receiver.requests == []
        # Control: a client that trusts this certificate is served, so the refusal above is
        # certificate verification and not a broken receiver.
        trusting = ssl.create_default_context(cafile=cert_path)
        async with (
            aiohttp.ClientSession() as session,
            session.post(tls_receiver.url + "/hook", data=b"[]", ssl=trusting) as response,
        ):
            assert response.status == 200
        assert [r.path for r in tls_receiver.requests] == ["/hook"]


# --- lifecycle ---------------------------------------------------------------------------


async def test_aclose_closes_the_session(receiver: Receiver) -> None:
    hook = WebhookConfig(url=receiver.url, allow_private=True).build()
    await hook.send(batch(key="a"))
    await hook.send(batch(key="b"))
    first, second = receiver.requests
    assert first.peer == second.peer  # one kept-alive connection from one session
    assert receiver.open_connections() == 1

    await hook.aclose()

    await eventually(lambda: receiver.open_connections() == 0)
    await hook.aclose()  # a second close is harmless


async def test_aclose_before_any_send_is_harmless() -> None:
    hook = WebhookConfig(url="https://hooks.example.com/in").build()
    await hook.aclose()
    await hook.aclose()


async def test_webhooks_sharing_sessions_reuse_one_connection(receiver: Receiver) -> None:
    """Streams to one host send over its kept-alive connection instead of each opening one;
    a stream's close leaves the shared session to its owner."""
    sessions = Sessions()
    hooks = [
        WebhookConfig(url=f"{receiver.url}/hook/{i}", allow_private=True, sessions=sessions).build()
        for i in range(3)
    ]
    try:
        for i, hook in enumerate(hooks):
            await hook.send(batch(key=f"k{i}"))
        assert len({request.peer for request in receiver.requests}) == 1
        assert receiver.open_connections() == 1

        await hooks[0].aclose()
        await hooks[1].send(batch(key="after"))  # still open for the others
        assert len({request.peer for request in receiver.requests}) == 1
    finally:
        await sessions.aclose()

    await eventually(lambda: receiver.open_connections() == 0)
    assert [request.path for request in receiver.requests] == [
        "/hook/0",
        "/hook/1",
        "/hook/2",
        "/hook/1",
    ]


async def test_shared_sessions_never_make_a_stream_wait_for_a_connection(
    receiver: Receiver,
) -> None:
    """A destination that holds its connection does not hold back another stream on the
    same host: the shared session opens another connection."""
    receiver.script(Reply(hang=True))
    sessions = Sessions()
    hung = WebhookConfig(url=f"{receiver.url}/slow", allow_private=True, sessions=sessions)
    fine = WebhookConfig(url=f"{receiver.url}/fine", allow_private=True, sessions=sessions)
    try:
        stuck = asyncio.ensure_future(hung.build().send(batch(key="slow")))
        await receiver.wait_for_requests(1)
        assert await asyncio.wait_for(fine.build().send(batch(key="fine")), 10) == SendResult(
            http_status=200
        )
        assert not stuck.done()
        stuck.cancel()
    finally:
        await sessions.aclose()


async def test_a_cookie_one_destination_sets_is_never_sent_for_another_stream(
    receiver: Receiver, loopback_name: str
) -> None:
    """Streams of every organisation share client sessions; a cookie that one stream's
    destination sets is not kept, so no other stream's request to that host carries it."""
    receiver.script(Reply(headers={"Set-Cookie": "session=organisation-a; Path=/"}), Reply(200))
    url = receiver.url.replace("127.0.0.1", loopback_name)
    sessions = Sessions()
    try:
        for organisation in ("a", "b"):
            hook = WebhookConfig(url=f"{url}/{organisation}", allow_private=True, sessions=sessions)
            assert await hook.build().send(batch(key=organisation)) == SendResult(http_status=200)
    finally:
        await sessions.aclose()
    assert [request.path for request in receiver.requests] == ["/a", "/b"]
    assert "Cookie" not in receiver.requests[1].headers
