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
from typing import Any

from connectors.base import Batch, Connector, DeliveryError, SendResult
from connectors.datadog import DatadogConfig
from connectors.http import PrivateDestinationError, Sessions
from connectors.keenio import DEFAULT_BASE_URL as KEEN_URL
from connectors.keenio import KeenConfig
from connectors.kinesis import KinesisConfig
from connectors.s3 import S3Config
from connectors.webhook import WebhookConfig
from schemas import Version
from streamer.config import Settings
from streamer.redact import redact, secret_values
from streamer.spec import StreamSpec

__all__ = ["connector_factory"]


@dataclass(frozen=True, slots=True)
class _Service:
    """What destinations take from the service: its settings and its HTTP client sessions."""

    settings: Settings
    sessions: Sessions


Builder = Callable[[dict[str, Any], dict[str, Any], _Service], Connector]


def _http(service: _Service) -> dict[str, Any]:
    """What every HTTP destination takes from the service."""
    return {
        "allow_private": service.settings.allow_private_destinations,
        "timeout_secs": service.settings.request_timeout_secs,
        "sessions": service.sessions,
    }


def _aws(spec: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    """Who an AWS destination acts as: the role, assumed for the stream's organisation."""
    return {
        "region": credentials["region"],
        "role_arn": credentials["role_arn"],
        "organisation": spec["organisation"]["id"],
        "stream_id": spec.get("id", "new"),
        "version": Version(spec["format_version"]),
    }


def _webhook(spec: dict[str, Any], credentials: dict[str, Any], service: _Service) -> Connector:
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (h.partition(":") for h in credentials.get("headers") or ())
    )
    return WebhookConfig(
        url=credentials["url"],
        version=Version(spec["format_version"]),
        method=credentials.get("method", "POST"),
        headers=headers,
        size=credentials.get("size", 3000),
        signing_secret=credentials.get("signing_secret"),
        **_http(service),
    ).build()


def _datadog(spec: dict[str, Any], credentials: dict[str, Any], service: _Service) -> Connector:
    return DatadogConfig(
        api_key=credentials["api_key"],
        region=credentials.get("region", "US"),
        base_url=service.settings.datadog_url,
        **_http(service),
    ).build()


def _keen(spec: dict[str, Any], credentials: dict[str, Any], service: _Service) -> Connector:
    return KeenConfig(
        project_id=credentials["project_id"],
        write_key=credentials["write_key"],
        collection_name=credentials["collection_name"],
        version=Version(spec["format_version"]),
        size=credentials.get("size", 3000),
        base_url=service.settings.keenio_url or KEEN_URL,
        **_http(service),
    ).build()


def _kinesis(spec: dict[str, Any], credentials: dict[str, Any], service: _Service) -> Connector:
    return KinesisConfig(
        stream_name=credentials["stream_name"],
        **_aws(spec, credentials),
    ).build()


def _s3(spec: dict[str, Any], credentials: dict[str, Any], service: _Service) -> Connector:
    return S3Config(
        bucket_name=credentials["bucket_name"],
        **_aws(spec, credentials),
        flush_size=credentials.get("flush_size", 10000),
        rotate_interval_ms=credentials.get("rotate_interval", 10000),
        key_prefix=credentials.get("key_prefix", ""),
        compression=credentials.get("compression", "none"),
        server_side_encryption=service.settings.s3_server_side_encryption,
        kms_key_id=service.settings.s3_kms_key_id,
    ).build()


_BUILDERS: dict[str, Builder] = {
    "RestAPI": _webhook,
    "Datadog": _datadog,
    "KeenIO": _keen,
    "AwsKinesis": _kinesis,
    "S3": _s3,
}


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
        spec = stream.model_dump(mode="json")
        if stream_id is not None:
            spec["id"] = stream_id
        destination = spec["destination"]
        builder = _BUILDERS.get(destination["connection_type"])
        if builder is None:
            raise ValueError(f"connection type {destination['connection_type']} is not supported")
        secrets = secret_values(destination["credentials"])
        try:
            connector = builder(spec, destination["credentials"], service)
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
