"""Real AWS peers for tests: moto in server mode on loopback, an account set up in it, and a
recording reverse proxy between the client under test and moto.

    moto = Moto.start()                              # once per session
    account = await Account.create(moto.url)         # per test: resets moto first
    async with AwsProxy(moto.url) as proxy: ...       # point AWS_ENDPOINT_URL_<SERVICE> at it

Guarantees: moto listens only on 127.0.0.1, on a port the kernel picks. ``Account.create``
empties every moto backend, then creates an ``admin`` IAM user (allowed everything; the tests
act as it), a ``streamer`` IAM user (the service's own identity, allowed only ``sts:AssumeRole``)
and the customer's role ``data-stream-writer``, which trusts only ``streamer`` with
``sts:ExternalId = org-<organisation>`` and may only write to Kinesis and S3.
``Moto.enforce_iam()`` makes moto check signatures, policies and trust relationships for the
rest of the test (off by default: moto does not check them unless told to).

The proxy forwards every request unchanged — body and ``Host`` header too, so signatures still
verify — records it, and can, per request, answer by itself (``answer``), fail chosen
``PutRecords`` entries the way Kinesis does (``fail_entries``: those entries are *not*
forwarded, so they are not written, and the response marks them failed in their positions with
``FailedRecordCount`` counting them), or rewrite a response body (``rewrite``). ``hold``, when
set, is awaited first with each request: a test keeps a request in flight for as long as it
likes (to kill the client meanwhile), and then has it forwarded (``True``) or answered 503
without reaching moto (``False``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web
from moto.server import ThreadedMotoServer
from multidict import CIMultiDict, CIMultiDictProxy

from connectors.aws import new_session

__all__ = [
    "ACCOUNT_ID",
    "BUCKET",
    "REGION",
    "Account",
    "Aws",
    "AwsProxy",
    "Moto",
    "Seen",
    "kinesis_error",
    "read_bucket",
    "read_stream",
    "s3_error",
    "sts_error",
    "trust_policy",
]

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
ROLE_NAME = "data-stream-writer"
BUCKET = "my-data-stream"  # the only bucket the role may write to
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class Moto:
    """moto's threaded server on ``127.0.0.1`` and a free port."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    @classmethod
    def start(cls) -> Moto:
        moto = cls()
        moto._server.start()
        return moto

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    async def reset(self) -> None:
        """Empty every backend and switch IAM checks off."""
        await self._post("/moto-api/reset", b"")
        await self._post("/moto-api/reset-auth", b"inf")

    async def enforce_iam(self) -> None:
        """From now on moto checks each request's signature, its identity's policies and, for
        ``AssumeRole``, the role's trust policy with its ``sts:ExternalId`` condition."""
        await self._post("/moto-api/reset-auth", b"0")

    async def _post(self, path: str, body: bytes) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, data=body) as response,
        ):
            response.raise_for_status()


@dataclass(frozen=True, slots=True)
class Keys:
    access_key_id: str
    secret_access_key: str


@dataclass(slots=True)
class Account:
    """The moto account of one test; see the module docstring."""

    moto_url: str
    organisation: int
    admin: Keys
    service: Keys
    role_arn: str
    service_arn: str

    @classmethod
    async def create(cls, moto: Moto, organisation: int = 42) -> Account:
        await moto.reset()
        async with new_session().create_client(
            "iam",
            region_name=REGION,
            endpoint_url=moto.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ) as iam:
            admin = await _user(iam, "admin", {"Effect": "Allow", "Action": "*", "Resource": "*"})
            service = await _user(
                iam, "streamer", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
            )
            service_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/streamer"
            role = await iam.create_role(
                RoleName=ROLE_NAME,
                AssumeRolePolicyDocument=trust_policy(service_arn, f"org-{organisation}"),
            )
            await iam.put_role_policy(
                RoleName=ROLE_NAME,
                PolicyName="write",
                PolicyDocument=_policy(
                    {
                        "Effect": "Allow",
                        "Action": ["kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
                        "Resource": "*",  # moto checks Kinesis actions against "*" only
                    },
                    {
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{BUCKET}/*",
                    },
                    {  # HeadBucket: AWS checks s3:ListBucket, moto "s3:HeadBucket"
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:HeadBucket"],
                        "Resource": f"arn:aws:s3:::{BUCKET}",
                    },
                ),
            )
        return cls(moto.url, organisation, admin, service, role["Role"]["Arn"], service_arn)

    def environment(self, **endpoints: str) -> dict[str, str]:
        """The ``AWS_*`` settings of a service process (``streamer run`` as a subprocess, a
        benchmark's daemon) acting as the ``streamer`` user against this moto: its keys,
        ``AWS_ENDPOINT_URL`` moto, no shared config or credentials file, no instance metadata.
        ``endpoints`` adds ``AWS_ENDPOINT_URL_<SERVICE>`` entries (``KINESIS=proxy.url``)."""
        settings = {
            "AWS_ACCESS_KEY_ID": self.service.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.service.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for service, url in endpoints.items():
            settings[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
        return settings

    def client(self, service: str) -> Any:
        """An aiobotocore client of ``service`` acting as ``admin``, straight to moto."""
        return new_session().create_client(
            service,
            region_name=REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id=self.admin.access_key_id,
            aws_secret_access_key=self.admin.secret_access_key,
        )


@dataclass(frozen=True, slots=True)
class Aws:
    """One test's AWS: the moto server, the account in it, and the proxy in front of it."""

    moto: Moto
    account: Account
    proxy: AwsProxy


def trust_policy(principal_arn: str, external_id: str) -> str:
    """A role trust policy letting ``principal_arn`` assume it with ``external_id`` only."""
    return _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }
    )


def _policy(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


async def _user(iam: Any, name: str, statement: Mapping[str, Any]) -> Keys:
    await iam.create_user(UserName=name)
    await iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=_policy(statement))
    key = (await iam.create_access_key(UserName=name))["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


async def read_stream(kinesis: Any, stream_name: str) -> dict[str, list[tuple[str, bytes]]]:
    """Every record of a Kinesis stream as ``(partition key, data)``, by shard, in sequence
    order (GetShardIterator from the trim horizon, then GetRecords until the shard is read)."""
    shards = (await kinesis.list_shards(StreamName=stream_name))["Shards"]
    found: dict[str, list[tuple[str, bytes]]] = {}
    for shard in shards:
        shard_id = shard["ShardId"]
        iterator = (
            await kinesis.get_shard_iterator(
                StreamName=stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )
        )["ShardIterator"]
        records: list[tuple[str, bytes]] = []
        while iterator:
            page = await kinesis.get_records(ShardIterator=iterator, Limit=10000)
            records += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
        found[shard_id] = records
    return found


async def read_bucket(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every object of ``bucket`` and its bytes as stored, every page of the listing."""
    found: dict[str, bytes] = {}
    token: dict[str, str] = {}
    while True:
        listed = await s3.list_objects_v2(Bucket=bucket, **token)
        for item in listed.get("Contents", []):
            response = await s3.get_object(Bucket=bucket, Key=item["Key"])
            async with response["Body"] as body:
                found[item["Key"]] = await body.read()
        if not listed.get("IsTruncated"):
            return found
        token = {"ContinuationToken": listed["NextContinuationToken"]}


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def action(self) -> str:
        """``PutRecords`` (JSON protocols' target), ``AssumeRole`` (query protocol), or the
        HTTP method for REST protocols (S3)."""
        target = self.headers.get("X-Amz-Target")
        if target:
            return target.rpartition(".")[2]
        if self.body.startswith(b"Action="):
            return self.body.split(b"&", 1)[0].removeprefix(b"Action=").decode()
        return self.method

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Seen], web.Response | None]
Hold = Callable[[Seen], Awaitable[bool]]
FailEntries = Callable[[list[dict[str, Any]]], Mapping[int, str]]
Rewrite = Callable[[Seen, bytes], bytes]


class AwsProxy:
    """An aiohttp reverse proxy on ``127.0.0.1`` in front of ``upstream``; see the module
    docstring. ``requests`` holds every request received, in order."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[Seen] = []
        self.answer: Answer | None = None
        self.fail_entries: FailEntries | None = None
        self.rewrite: Rewrite | None = None
        self.hold: Hold | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def seen(self, action: str) -> list[Seen]:
        return [request for request in self.requests if request.action == action]

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # bodies pass as they came: a gzip body is not for the proxy to undo
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, auto_decompress=False
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path_qs, request.headers, await request.read())
        self.requests.append(seen)
        if self.hold is not None and not await self.hold(seen):
            return web.Response(status=503, text="held and dropped by the test")
        if self.answer is not None and (answered := self.answer(seen)) is not None:
            return answered
        if self.fail_entries is not None and seen.action == "PutRecords":
            return await self._put_records(seen, self.fail_entries)
        status, headers, body = await self._forward(seen, seen.body)
        if self.rewrite is not None:
            body = self.rewrite(seen, body)
        return web.Response(status=status, headers=headers, body=body)

    async def _forward(self, seen: Seen, body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
        assert self._session is not None
        headers = CIMultiDict(
            (k, v) for k, v in seen.headers.items() if k.lower() not in _HOP_HEADERS
        )
        async with self._session.request(
            seen.method, self.upstream + seen.path, data=body, headers=headers
        ) as response:
            content = await response.read()
            back = CIMultiDict(
                (k, v) for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS
            )
            return response.status, back, content

    async def _put_records(self, seen: Seen, fail_entries: FailEntries) -> web.StreamResponse:
        """Forward the entries that are not to fail, and answer for all of them in order."""
        document = seen.json()
        records: list[dict[str, Any]] = document["Records"]
        failing = fail_entries(records)
        kept = [record for index, record in enumerate(records) if index not in failing]
        results: list[dict[str, Any]] = []
        if kept:
            status, headers, body = await self._forward(
                seen, json.dumps({**document, "Records": kept}).encode()
            )
            if status != 200:
                return web.Response(status=status, headers=headers, body=body)
            results = json.loads(body)["Records"]
        merged = []
        accepted = iter(results)
        for index in range(len(records)):
            if index in failing:
                merged.append(
                    {
                        "ErrorCode": failing[index],
                        "ErrorMessage": f"Rate exceeded for shard shardId-000000000000 in "
                        f"stream {document.get('StreamName')} under account {ACCOUNT_ID}.",
                    }
                )
            else:
                merged.append(next(accepted))
        failed = sum("ErrorCode" in result for result in merged)
        return web.json_response(
            {"FailedRecordCount": failed, "Records": merged},
            content_type="application/x-amz-json-1.1",
        )


def kinesis_error(status: int, code: str, message: str = "") -> web.Response:
    """An error answer in Kinesis's JSON protocol."""
    return web.json_response(
        {"__type": code, "message": message or code},
        status=status,
        content_type="application/x-amz-json-1.1",
    )


def s3_error(status: int, code: str, message: str = "") -> web.Response:
    """An error answer in S3's REST-XML protocol."""
    body = f"<Error><Code>{code}</Code><Message>{message or code}</Message></Error>"
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def sts_error(status: int, code: str, message: str = "") -> web.Response:
    """An error answer in STS's query protocol (AWS's own shape, ``Type`` ``Sender``)."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message or code}</Message>"
        "</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return web.Response(status=status, body=body.encode(), content_type="text/xml")
