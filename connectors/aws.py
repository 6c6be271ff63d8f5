"""What the AWS connectors share: clients that act as a stream's role, and botocore's errors
mapped onto the connector error tree.

Credentials
    The service's own credentials come from the standard AWS chain (environment, shared files,
    web identity, container and instance metadata), never from the stream. With them each stream
    assumes its customer's role: ``AssumeRole`` on ``role_arn`` with
    ``ExternalId=org-<organisation id>`` and ``RoleSessionName=streamer-<stream id>``. The role's
    credentials are botocore's own deferred refreshable credentials
    (``AioDeferredRefreshableCredentials`` fed by ``AioAssumeRoleCredentialFetcher``): fetched on
    the first request and cached. A request that finds them within 15 minutes of expiry
    refreshes them first; if that refresh fails the current ones still serve, but within 10
    minutes of expiry a failed refresh fails the request (→ ``FatalError``, the role cannot be
    assumed). No credential is put into an error message; keep the ``botocore`` and
    ``aiobotocore`` loggers above DEBUG, whose request dumps carry the signed headers.

Endpoints
    Only the SDK's own settings: ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``
    (``_S3``, ``_KINESIS``, ``_STS``) or ``endpoint_url`` in the shared config file. Without
    them the regional AWS endpoints are used.

Errors
    ``error_for`` turns a botocore exception into a ``DeliveryError``:

    - throttling, throughput, internal and timeout codes, HTTP 408, 429 and 5xx, and network
      errors → ``RetryableError``;
    - a role that cannot be assumed (any non-transient failure of ``AssumeRole``) →
      ``FatalError`` naming the role and the external id;
    - a destination that does not exist (``ResourceNotFoundException``, ``NoSuchBucket``) →
      ``DestinationMissing``;
    - every other AWS error code (``AccessDenied``, ``KMS…``, ``InvalidArgumentException``,
      ``ExpiredToken`` — which only reaches us once a refresh could not help …) →
      ``FatalError``;
    - missing service credentials, invalid parameters → ``FatalError``.

    The message always carries the AWS error code, and ``http_status`` is the status AWS
    answered with.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

# botocore and aiobotocore ship no type information: what crosses from them is ``Any`` and is
# narrowed right here, at the boundary.
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.credentials import (  # type: ignore[import-untyped]
    AioAssumeRoleCredentialFetcher,
    AioCredentialResolver,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)
from botocore.loaders import create_loader  # type: ignore[import-untyped]

from connectors.base import DeliveryError, DestinationMissing, FatalError, RetryableError

__all__ = ["AWS_ERRORS", "AssumedRole", "RoleClients", "check_role_arn", "error_for", "new_session"]

AWS_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError, OSError)
"""What an AWS call may raise; catch these and hand them to ``error_for``."""

RETRYABLE_CODES = frozenset(
    {
        "BandwidthLimitExceeded",
        "IDPCommunicationError",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "KMSThrottlingException",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)
"""AWS error codes that are worth another try whatever the HTTP status says."""

MISSING_CODES = frozenset({"ResourceNotFoundException", "NoSuchBucket"})
"""AWS error codes that say the destination (a Kinesis stream, an S3 bucket) does not exist."""

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")


def check_role_arn(role_arn: str) -> None:
    """Refuse a role ARN that AWS would refuse (``ValueError``): ``arn:aws:iam::<12-digit
    account>:role/<name>``. Only the shape is checked; whether it can be assumed is not."""
    if not _ROLE_ARN.fullmatch(role_arn):
        raise ValueError(
            f"role_arn {role_arn!r} is not an IAM role ARN "
            "(expected arn:aws:iam::<12-digit account id>:role/<role name>)"
        )


@dataclass(frozen=True, slots=True)
class AssumedRole:
    """Who a stream's clients act as, and where."""

    region: str
    role_arn: str
    organisation: int
    stream_id: int | str

    @property
    def external_id(self) -> str:
        return f"org-{self.organisation}"

    @property
    def session_name(self) -> str:
        """``streamer-<stream id>``, cut to what STS takes (2–64 of ``[\\w+=,.@-]``)."""
        return _SESSION_NAME_BAD.sub("-", f"streamer-{self.stream_id}")[:64]


class _AssumeRoleProvider:
    """A credential provider (botocore's duck type) that yields the role's refreshable
    credentials, fetched with the service's own credentials from the standard chain."""

    METHOD = "assume-role"
    CANONICAL_NAME = "custom-assume-role"

    def __init__(self, role: AssumedRole, source: Any, config: Any) -> None:
        self._role = role
        self._source = source
        self._config = config

    async def load(self) -> Any:
        source_credentials = await self._source.get_credentials()
        if source_credentials is None:
            raise NoCredentialsError()
        role = self._role

        def client_creator(service_name: str, **kwargs: Any) -> Any:
            return self._source.create_client(
                service_name, region_name=role.region, config=self._config, **kwargs
            )

        fetcher = AioAssumeRoleCredentialFetcher(
            client_creator=client_creator,
            source_credentials=source_credentials,
            role_arn=role.role_arn,
            extra_args={"ExternalId": role.external_id, "RoleSessionName": role.session_name},
        )
        return AioDeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method=self.METHOD
        )


class RoleClients:
    """The aiobotocore clients of one stream, all acting as its ``AssumedRole``.

    Clients are created on first use and kept until ``aclose``; the role is assumed on the
    first request, not before. ``max_attempts`` is botocore's own retry budget per call
    (standard mode: throttling, 5xx and network errors, with its backoff); what is still failing
    after it is the delivery engine's to retry.
    """

    def __init__(
        self,
        role: AssumedRole,
        *,
        max_attempts: int = 3,
        connect_timeout_secs: float = 10.0,
        read_timeout_secs: float = 60.0,
    ) -> None:
        self.role = role
        self._config = AioConfig(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout_secs,
            read_timeout=read_timeout_secs,
            user_agent_appid="streamer",
            warm_up_loader_caches=True,  # read the service models in a thread, not the loop
        )
        self._session: Any = None
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}

    async def client(self, service: str) -> Any:
        """The client for ``service`` (``"kinesis"``, ``"s3"``) in the role's region."""
        client = self._clients.get(service)
        if client is None:
            if self._session is None:
                self._session = self._role_session()
            context = self._session.create_client(
                service, region_name=self.role.region, config=self._config
            )
            # a concurrent first use may have created it meanwhile: keep the first one
            created = await self._stack.enter_async_context(context)
            client = self._clients.setdefault(service, created)
        return client

    async def aclose(self) -> None:
        """Close every client; safe to call more than once."""
        self._clients.clear()
        await self._stack.aclose()

    def _role_session(self) -> Any:
        source = new_session()  # the service's own credentials: the standard chain
        session = new_session()
        provider = _AssumeRoleProvider(self.role, source, self._config)
        session.register_component("credential_provider", AioCredentialResolver([provider]))
        return session


@functools.cache
def _data_loader() -> Any:
    return create_loader()


def new_session() -> Any:
    """An ``AioSession`` reading the SDK's data files (service models, endpoint rules) through
    one loader per process, so that each stream's clients do not parse them again."""
    session = AioSession()
    session.register_component("data_loader", _data_loader())
    return session


def error_for(
    exc: BaseException,
    action: str,
    role: AssumedRole | None = None,
    bodiless_codes: Mapping[str, str] | None = None,
) -> DeliveryError:
    """The ``DeliveryError`` that ``exc``, raised by ``action`` (e.g. ``"Kinesis PutRecords"``),
    means. ``bodiless_codes`` names the error codes of answers without a body (a ``HEAD``),
    whose code botocore can only give as the bare HTTP status (``{"404": "NoSuchBucket"}``)."""
    if isinstance(exc, ClientError):
        return _client_error(exc, action, role, bodiless_codes or {})
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return FatalError(
            f"{action}: the service has no AWS credentials of its own "
            f"(standard chain: environment, shared files, web identity, metadata): {exc}"
        )
    if isinstance(exc, SSLError):
        return FatalError(f"{action}: TLS verification failed: {exc}")
    if isinstance(exc, ConnectionError | HTTPClientError | CredentialRetrievalError):
        return RetryableError(f"{action}: network error: {exc}")
    if isinstance(exc, TimeoutError):
        return RetryableError(f"{action}: the request timed out")
    if isinstance(exc, OSError):
        return RetryableError(f"{action}: network error: {exc}")
    return FatalError(f"{action}: {type(exc).__name__}: {exc}")


def _client_error(
    exc: Any, action: str, role: AssumedRole | None, bodiless_codes: Mapping[str, str]
) -> DeliveryError:
    response: dict[str, Any] = exc.response
    error: dict[str, Any] = response.get("Error") or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    http_status = status if isinstance(status, int) else None
    code = str(error.get("Code") or "")
    code = bodiless_codes.get(code, code) or f"HTTP {http_status}"
    detail = str(error.get("Message") or "").strip()
    described = code + (f": {detail}" if detail else "")
    transient = code in RETRYABLE_CODES or http_status in (408, 429) or (http_status or 0) >= 500
    if exc.operation_name == "AssumeRole":
        who = f"role {role.role_arn} (external id {role.external_id})" if role else "the role"
        if transient:
            return RetryableError(f"{action}: assuming {who} failed: {described}", http_status)
        return FatalError(f"{action}: {who} cannot be assumed: {described}", http_status)
    if transient:
        return RetryableError(f"{action}: {described}", http_status)
    if code in MISSING_CODES:
        return DestinationMissing(f"{action}: {described}", http_status)
    return FatalError(f"{action}: {described}", http_status)
