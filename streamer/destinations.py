"""Part of the composition root: a stream's stored spec in, its connector out.

The only module (with ``streamer.app``) that knows the concrete connectors. Each builder maps
the validated credentials (``streamer.spec``) onto the connector's own config; a destination
that cannot be built raises ``ValueError`` with a reason fit for an API answer. Every
connector comes wrapped so that its errors and refusal reasons never carry the destination's
secrets (a receiver's error reply may echo a header value back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, assert_never

from connectors.base import Batch, Connector, DeliveryError, SendResult
from connectors.datadog import DatadogConfig
from connectors.http import PrivateDestinationError, Sessions
from connectors.keenio import DEFAULT_BASE_URL as KEEN_URL
from connectors.keenio import KeenConfig
from connectors.kinesis import KinesisConfig
from connectors.s3 import S3Config
from connectors.webhook import WebhookConfig
from streamer.config import Settings
from streamer.redact import redact, secret_values
from streamer.spec import (
    AwsKinesisCredentials,
    DatadogCredentials,
    KeenIOCredentials,
    RestApiCredentials,
    S3Credentials,
    StreamSpec,
)

__all__ = ["connector_factory"]


@dataclass(frozen=True, slots=True)
class _Service:
    """What destinations take from the service: its settings and its HTTP client sessions."""

    settings: Settings
    sessions: Sessions


def _http(service: _Service) -> dict[str, Any]:
    """What every HTTP destination takes from the service."""
    return {
        "allow_private": service.settings.allow_private_destinations,
        "timeout_secs": service.settings.request_timeout_secs,
        "sessions": service.sessions,
    }


def _build(spec: StreamSpec, stream_id: int | None, service: _Service) -> Connector:
    """The connector of the destination ``spec`` names."""
    credentials = spec.destination.credentials
    match credentials:
        case RestApiCredentials():
            return _webhook(spec, credentials, service)
        case DatadogCredentials():
            return _datadog(credentials, service)
        case KeenIOCredentials():
            return _keen(spec, credentials, service)
        case AwsKinesisCredentials():
            return KinesisConfig(
                stream_name=credentials.stream_name, **_aws(spec, stream_id, credentials)
            ).build()
        case S3Credentials():
            return _s3(spec, stream_id, credentials, service)
    assert_never(credentials)


def _aws(
    spec: StreamSpec, stream_id: int | None, credentials: AwsKinesisCredentials | S3Credentials
) -> dict[str, Any]:
    """Who an AWS destination acts as: the role, assumed for the stream's organisation."""
    if spec.organisation is None:
        raise ValueError("the stream names no organisation (an AWS role is assumed for it)")
    return {
        "region": credentials.region,
        "role_arn": credentials.role_arn,
        "organisation": spec.organisation.id,
        "stream_id": "new" if stream_id is None else stream_id,
        "version": spec.format_version,
    }


def _webhook(spec: StreamSpec, credentials: RestApiCredentials, service: _Service) -> Connector:
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (h.partition(":") for h in credentials.headers)
    )
    return WebhookConfig(
        url=str(credentials.url),
        version=spec.format_version,
        method=credentials.method,
        headers=headers,
        size=credentials.size,
        signing_secret=credentials.signing_secret,
        **_http(service),
    ).build()


def _datadog(credentials: DatadogCredentials, service: _Service) -> Connector:
    return DatadogConfig(
        api_key=credentials.api_key,
        region=credentials.region,
        base_url=service.settings.datadog_url,
        **_http(service),
    ).build()


def _keen(spec: StreamSpec, credentials: KeenIOCredentials, service: _Service) -> Connector:
    return KeenConfig(
        project_id=credentials.project_id,
        write_key=credentials.write_key,
        collection_name=credentials.collection_name,
        version=spec.format_version,
        size=credentials.size,
        base_url=service.settings.keenio_url or KEEN_URL,
        **_http(service),
    ).build()


def _s3(
    spec: StreamSpec, stream_id: int | None, credentials: S3Credentials, service: _Service
) -> Connector:
    return S3Config(
        bucket_name=credentials.bucket_name,
        **_aws(spec, stream_id, credentials),
        flush_size=credentials.flush_size,
        rotate_interval_ms=credentials.rotate_interval,
        key_prefix=credentials.key_prefix,
        compression=credentials.compression,
        server_side_encryption=service.settings.s3_server_side_encryption,
        kms_key_id=service.settings.s3_kms_key_id,
    ).build()


class _Redacting:
    """``inner`` with every secret value taken out of its error messages and refusal reasons."""

    def __init__(self, inner: Connector, secrets: list[str]) -> None:
        self._inner = inner
        self._secrets = secrets
        self.rendering = inner.rendering
        self.max_batch = inner.max_batch
        self.linger_secs = inner.linger_secs
        self.stable_batches = inner.stable_batches

    async def send(self, batch: Batch) -> SendResult:
        try:
            result = await self._inner.send(batch)
        except DeliveryError as error:
            self._scrub(error)
            raise
        if not result.rejected:
            return result
        rejected = [(index, redact(reason, self._secrets)) for index, reason in result.rejected]
        return replace(result, rejected=rejected)

    async def healthcheck(self) -> None:
        try:
            await self._inner.healthcheck()
        except DeliveryError as error:
            self._scrub(error)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _scrub(self, error: DeliveryError) -> None:
        error.message = redact(error.message, self._secrets)
        error.args = (error.message,)


def connector_factory(
    settings: Settings, sessions: Sessions
) -> Callable[[StreamSpec, int | None], Connector]:
    """Build a stream's connector from its definition and id (``None``: not stored yet);
    ``ValueError`` says why it cannot be. HTTP destinations send through ``sessions``."""
    service = _Service(settings, sessions)

    def build(stream: StreamSpec, stream_id: int | None) -> Connector:
        secrets = secret_values(stream.destination.credentials.model_dump(mode="json"))
        try:
            connector = _build(stream, stream_id, service)
        except PrivateDestinationError as exc:
            raise ValueError(
                redact(
                    f"destination refused: {exc} (an operator may allow private destinations"
                    " with STREAMER_ALLOW_PRIVATE_DESTINATIONS=true)",
                    secrets,
                )
            ) from None
        except ValueError as exc:
            raise ValueError(redact(str(exc), secrets)) from None
        return _Redacting(connector, secrets)

    return build
