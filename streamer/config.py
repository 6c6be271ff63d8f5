"""Settings: a TOML file (``--config`` or ``STREAMER_CONFIG``) and ``STREAMER_*`` variables.

The environment wins over the file; the file wins over the defaults. Every name below is the
lower-case form of its variable without the prefix (``STREAMER_DATA_DIR`` → ``data_dir``), and
units are in the names.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["ConfigError", "Settings", "check_data_dir", "load_settings"]


class ConfigError(Exception):
    """The settings cannot be used; the message names the setting and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMER_", extra="forbid", frozen=True)

    data_dir: Path = Path("streamer-data")
    listen: str = "127.0.0.1:8080"
    bootstrap_token: SecretStr | None = None
    allow_private_destinations: bool = False
    retry_max_secs: float = Field(60.0, gt=0)
    retry_base_secs: float = Field(0.5, gt=0)
    retry_cap_secs: float = Field(30.0, gt=0)
    log_backend: Literal["sqlite", "nats"] = "sqlite"
    nats_url: str = "nats://127.0.0.1:4222"
    """The NATS server(s) of the ``nats`` backend, comma-separated; a user and password or a
    token may be in it (``nats://user:password@host:4222``): it is shown masked."""
    nats_replicas: int = Field(1, ge=1, le=5)
    """Copies JetStream keeps of the records and the store (at most the cluster's nodes)."""
    nats_tls_ca_file: Path | None = None
    nats_tls_cert_file: Path | None = None
    nats_tls_key_file: Path | None = None
    nats_creds_file: Path | None = None
    """A NATS credentials file (a user JWT and its NKEY seed): secret, owner-only."""
    nats_nkey_seed_file: Path | None = None
    """A file holding a NATS NKEY user seed: secret, owner-only."""
    datadog_url: str | None = None
    s3_server_side_encryption: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = "AES256"
    """Server-side encryption of every S3 object (the seed's security guidelines)."""
    s3_kms_key_id: str | None = None
    keenio_url: str | None = None
    retention_days: float = Field(7.0, gt=0)
    log_memory_mib: int = Field(256, ge=0)
    """The records of the last minute stay in memory for the streams that keep up, at most
    about this many MiB of them."""
    sync: Literal["full", "normal"] = "full"
    """``full``: a 202 survives power loss (fsync per commit group); ``normal``: a crash."""
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_inflight_ingest_bytes: int = Field(64 * 1024 * 1024, gt=0)
    """Ingest bodies in flight (received, then inflated) hold at most this many bytes between
    them; beyond, ingest answers 503 with ``Retry-After``."""
    header_timeout_secs: float = Field(10.0, gt=0)
    """A connection that has not sent a whole request head within this time of connecting (or
    of its last answer) is closed; idle keep-alive connections too."""
    body_timeout_secs: float = Field(60.0, gt=0)
    """A request body must arrive within this time of the handler reading it (408 beyond)."""
    ingest_workers: int | None = Field(None, ge=0, le=64)
    """Processes that read the ingest bodies the C pass leaves to the reference reader (bad
    records, arrays, ...; NDJSON of good records is read in the service process); 0 reads them
    in the service process; unset: one per core beyond the first (at most four)."""
    ingest_timeout_secs: float = Field(30.0, gt=0)
    """How long an ingest body may take to read in a worker (waiting for a free one
    included) before the request is answered 503 and a hung worker is replaced."""
    rate_limit_requests: int = Field(2000, gt=0)
    rate_limit_window_secs: float = Field(300.0, gt=0)
    linger_ms: int = Field(20, ge=0)
    """A batch that is not full goes once no records were appended for this long."""
    batch_max_wait_ms: int = Field(5000, ge=0)
    """… or once it has waited this long while records kept arriving."""
    request_timeout_secs: float = Field(30.0, gt=0)
    shutdown_timeout_secs: float = Field(10.0, gt=0)
    """The whole shutdown, from the signal to the exit (``streamer.shutdown`` splits it)."""
    summary_interval_secs: float = Field(60.0, gt=0)
    """How often the log gets a delivery line for each stream that moved."""
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(
                "must be HOST:PORT or :PORT (every interface), e.g. 127.0.0.1:8080; "
                "port 0 picks a free one"
            )
        return value

    @property
    def host(self) -> str | None:
        """The address to bind, or ``None`` for every interface (``:PORT``)."""
        return self.listen.rpartition(":")[0].strip("[]") or None

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("STREAMER_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml)))
        return tuple(sources)


def load_settings(config_file: str | None = None) -> Settings:
    """Read the settings; ``config_file`` stands in for ``STREAMER_CONFIG``.

    Raises ``ConfigError`` naming the file or every setting at fault.
    """
    if config_file is not None:
        os.environ["STREAMER_CONFIG"] = config_file
    path = os.environ.get("STREAMER_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"config file {path} (--config or STREAMER_CONFIG) does not exist")
    try:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors(include_url=False))
        raise ConfigError(f"invalid settings: {problems}") from None


def _problem(error: ErrorDetails) -> str:
    name = ".".join(str(part) for part in error["loc"])
    setting = f"STREAMER_{name.upper()}" if name else "settings"
    return f"{setting}: {error['msg'].removeprefix('Value error, ')}"


def check_data_dir(path: Path, *, create: bool) -> None:
    """Make sure ``path`` is a data directory this process can write to.

    ``create``: make it (and its parents) when it does not exist, as ``streamer run`` does;
    otherwise a missing directory is an error, so that a command run in the wrong folder does
    not quietly start an empty one. Raises ``ConfigError`` naming the setting and the fix.
    """
    where = f"data directory {path} (STREAMER_DATA_DIR)"
    if not path.exists():
        if not create:
            raise ConfigError(
                f"{where} does not exist: run the command where the service runs, "
                "or set STREAMER_DATA_DIR to the service's data directory"
            )
        try:
            path.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"{where} cannot be created: {exc.strerror}") from None
    if not path.is_dir():
        raise ConfigError(f"{where} is not a directory: point STREAMER_DATA_DIR at a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{where} is not writable by this user: fix its permissions")
