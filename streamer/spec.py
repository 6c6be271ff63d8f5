"""A data stream's definition, as the v2 API takes it (API.md §3), validated with pydantic.

The stored form is ``StreamSpec.model_dump(mode="json")`` with secrets in clear (the database
is the service's own); every representation that leaves the service goes through ``masked``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    field_validator,
    model_validator,
)

from schemas import Kind, Version
from streamer import filters
from streamer.filters import Matcher
from streamer.redact import mask_url

__all__ = [
    "EVENT",
    "KINDS_OF_TYPE",
    "USAGE",
    "Filter",
    "RestApiCredentials",
    "StreamSpec",
    "masked",
]

USAGE, EVENT = 1, 2  # data_stream_type ids; 3 is both
STREAM_TYPES = {1: "Usage Data", 2: "Event Data", 3: "Usage Data & Events"}
KINDS_OF_TYPE = {1: (Kind.USAGE,), 2: (Kind.EVENT,), 3: (Kind.EVENT, Kind.USAGE)}
MASK = "****"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _integer(value: Any) -> Any:
    """Before a ``Literal`` of integers, which takes ``true`` for 1 and ``1.0`` too."""
    if type(value) is not int:
        raise ValueError("must be an integer")
    return value


Id = Annotated[int, Field(strict=True, gt=0, le=2**63 - 1)]
"""An id: a positive 64-bit integer; ``true``, ``"7"`` and ``7.0`` are not ids."""


class Ref(_Body):
    id: Id


class StreamType(_Body):
    id: Annotated[Literal[1, 2, 3], BeforeValidator(_integer)]
    description: str | None = None


_MAX_URL = 2083
"""HttpUrl's own bound on the text of a URL."""


_B64 = "[A-Za-z0-9+/]"
_WHSEC = (  # what ``_whsec`` takes: the base64 of 24 to 64 bytes, padded
    f"^whsec_(?:(?:{_B64}{{4}}){{8,20}}(?:{_B64}{{2}}==|{_B64}{{3}}=)?"
    f"|(?:{_B64}{{4}}){{21}}(?:{_B64}{{2}}==)?)$"
)


class RestApiCredentials(_Body):
    url: HttpUrl = Field(
        description=f"At most {_MAX_URL} characters as stored: percent-encoded, and with '/'"
        " for a bare host (hence one less as written here)",
        json_schema_extra={"maxLength": _MAX_URL - 1},
    )
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: list[
        Annotated[str, Field(json_schema_extra={"pattern": r"^[^: \t\r\n]*[^:\s][^: \t\r\n]*:"})]
    ] = Field(default_factory=list)
    size: int = Field(3000, strict=True, ge=1, le=10000)
    signing_secret: Annotated[str, Field(json_schema_extra={"pattern": _WHSEC})] | None = Field(
        None, description="Standard Webhooks secret (whsec_<base64>); signs every request"
    )

    @field_validator("url")
    @classmethod
    def _fits_once_written(cls, url: HttpUrl) -> HttpUrl:
        """The URL as stored (percent-encoded, with its path) must read back as valid, or the
        stream could never be changed or loaded again."""
        if len(str(url)) > _MAX_URL:
            raise ValueError(f"is over {_MAX_URL} characters once percent-encoded")
        return url

    @field_validator("headers")
    @classmethod
    def _name_value(cls, headers: list[str]) -> list[str]:
        for header in headers:
            name, sep, _ = header.partition(":")
            if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
                shown = (name.split() or [""])[0]
                raise ValueError(f"{shown!r}…: headers are 'Name:value' strings")
        return headers

    @field_validator("signing_secret")
    @classmethod
    def _whsec(cls, secret: str | None) -> str | None:
        """Standard Webhooks: ``whsec_`` and the base64 of a key of 24 to 64 bytes. The messages
        never repeat the secret."""
        if secret is None:
            return None
        if not secret.startswith("whsec_"):
            raise ValueError("a signing secret is 'whsec_' followed by base64")
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ValueError(
                "a signing secret is 'whsec_' followed by standard base64 (A-Z a-z 0-9 + /)"
                " with its '=' padding"
            ) from None
        if not 24 <= len(key) <= 64:
            raise ValueError(
                f"a signing secret's key is 24 to 64 bytes (Standard Webhooks); this one has"
                f" {len(key)}"
            )
        return secret


_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+")


def _role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise ValueError(
            "is not an IAM role ARN: expected arn:aws:iam::<12-digit account id>:role/<name>"
        )
    return value


RoleArn = Annotated[
    str,
    AfterValidator(_role_arn),
    Field(json_schema_extra={"pattern": f"^{_ROLE_ARN.pattern}$"}),
]
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"


class AwsKinesisCredentials(_Body):
    region: str = Field(pattern=_REGION, examples=["eu-west-1"])
    stream_name: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_.-]+$")
    role_arn: RoleArn


class S3Credentials(_Body):
    region: str = Field(pattern=_REGION, examples=["eu-west-1"])
    bucket_name: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    role_arn: RoleArn
    flush_size: int = Field(10000, strict=True, ge=10, le=100000, description="records per file")
    rotate_interval: int = Field(
        10000, strict=True, ge=10000, le=900000, description="ms before a file is written"
    )
    key_prefix: str = Field("", max_length=512)
    compression: Literal["none", "gzip"] = "none"


_KEY = Field(min_length=1, json_schema_extra={"pattern": "^[!-~]+$"})
"""A key sent in a header: printable ASCII without spaces (the connector checks it)."""


class KeenIOCredentials(_Body):
    project_id: str = Field(min_length=1, max_length=100)
    write_key: str = _KEY
    collection_name: str = Field(min_length=1, max_length=256)
    size: int = Field(3000, strict=True, ge=1, le=10000)


class DatadogCredentials(_Body):
    api_key: str = _KEY
    region: Literal["US", "US3", "US5", "EU", "US1FED", "AP1"] = "US"


Format = Literal["Json", "JSON", "json", "Csv", "CSV", "csv"]


class RestApiDestination(_Body):
    connection_type: Literal["RestAPI"]
    format: Format = "Json"
    credentials: RestApiCredentials


class AwsKinesisDestination(_Body):
    connection_type: Literal["AwsKinesis"]
    format: Format = "Json"
    credentials: AwsKinesisCredentials


class S3Destination(_Body):
    connection_type: Literal["S3"]
    format: Format = "Csv"
    credentials: S3Credentials


class KeenIODestination(_Body):
    connection_type: Literal["KeenIO"]
    format: Format = "Json"
    credentials: KeenIOCredentials


class DatadogDestination(_Body):
    connection_type: Literal["Datadog"]
    format: Format = "Json"
    credentials: DatadogCredentials


CONNECTION_TYPES = {
    "RestAPI": "Webhook",
    "AwsKinesis": "AWS Kinesis",
    "S3": "AWS S3",
    "KeenIO": "KeenIO",
    "Datadog": "Datadog",
}
_NOT_SUPPORTED = ("EventHubs", "PubSub")

Destination = Annotated[
    RestApiDestination
    | AwsKinesisDestination
    | S3Destination
    | KeenIODestination
    | DatadogDestination,
    Field(discriminator="connection_type"),
]


FilterValue = StrictBool | StrictInt | StrictStr


def _one_or_more(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


_EVENT_TYPE_ID = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        {"type": "string", "pattern": "^[0-9]{1,18}$"},
    ]
}
_ALERT = {
    "anyOf": [
        {"type": "boolean"},
        {"enum": [0, 1]},
        {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[01])$"},
    ]
}


class Filter(_Body):
    """``value``: one value or a list, numbers or strings as the platform types them (``"1"`` ≡
    ``1``, ``"true"`` ≡ ``true``); read by ``streamer.filters``, stored as sent."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"field": {"const": name}, "value": _one_or_more(item)}}
                for name, item in (("event_type_id", _EVENT_TYPE_ID), ("alert", _ALERT))
            ]
        },
    )

    field: Literal["event_type_id", "alert"]
    value: FilterValue | Annotated[list[FilterValue], Field(min_length=1)]

    @model_validator(mode="after")
    def _fits_field(self) -> Filter:
        read = filters.event_type_ids if self.field == "event_type_id" else filters.alerts
        read(self.value)
        return self


class AnyOf(BaseModel):
    """``{"or": [filter, …]}``: matches when any member does (the platform's Kinesis example)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)
    any_of: Annotated[list[AnyFilter], Field(alias="or", min_length=1)]


def _filter_kind(value: Any) -> str:
    return (
        "or" if isinstance(value, AnyOf) or (isinstance(value, dict) and "or" in value) else "one"
    )


AnyFilter = Annotated[
    Annotated[Filter, Tag("one")] | Annotated[AnyOf, Tag("or")], Discriminator(_filter_kind)
]


class StreamSpec(_Body):
    name: str | None = Field(None, max_length=200)
    data_stream_type: StreamType
    destination: Destination
    filters: list[AnyFilter] = Field(default_factory=list)
    format_version: Version = Version.NEW
    stream_historic_data: bool = False
    organisation: Ref | None = None
    relation_resolution: Any = Field(None, description="accepted and returned as given")

    @field_validator("destination", mode="before")
    @classmethod
    def _supported(cls, value: Any) -> Any:
        kind = value.get("connection_type") if isinstance(value, dict) else None
        if kind is not None and not isinstance(kind, str):
            raise ValueError(f"connection_type must be one of {', '.join(CONNECTION_TYPES)}")
        if kind in _NOT_SUPPORTED:
            raise ValueError(f"connection type {kind} is not supported by this service")
        if isinstance(value, dict) and kind not in CONNECTION_TYPES:
            raise ValueError(f"connection_type must be one of {', '.join(CONNECTION_TYPES)}")
        return value

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The record kinds the stream carries."""
        return KINDS_OF_TYPE[self.data_stream_type.id]

    def event_matcher(self) -> Matcher | None:
        """Whether an event passes the stream's filters; ``None``: no filters, every one does."""
        if not self.filters:
            return None
        return filters.matcher(self.model_dump(mode="json", by_alias=True)["filters"])

    def event_type_ids(self) -> frozenset[int]:
        """The event type ids of the stream's top-level ``event_type_id`` filter (the legacy
        API's filter resource); empty when it has none."""
        for stream_filter in self.filters:
            if isinstance(stream_filter, Filter) and stream_filter.field == "event_type_id":
                return filters.event_type_ids(stream_filter.value)
        return frozenset()


def masked(spec: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with every secret replaced by ``****`` (header values, keys, secrets,
    a URL's user information)."""
    destination = dict(spec["destination"])
    credentials = dict(destination["credentials"])
    if credentials.get("url"):
        credentials["url"] = mask_url(credentials["url"])
    if credentials.get("headers"):
        credentials["headers"] = [
            f"{header.partition(':')[0]}:{MASK}" for header in credentials["headers"]
        ]
    for key in ("signing_secret", "write_key", "api_key"):
        if credentials.get(key) is not None:
            credentials[key] = MASK
    destination["credentials"] = credentials
    return {**spec, "destination": destination}
