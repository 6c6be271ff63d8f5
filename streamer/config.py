"""Settings: a TOML file (``--config`` or ``STREAMER_CONFIG``) and ``STREAMER_*`` variables.

The environment wins over the file; the file wins over the defaults. Every name below is the
lower-case form of its variable without the prefix (``STREAMER_DATA_DIR`` → ``data_dir``), and
units are in the names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "load_settings"]


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
    datadog_url: str | None = None
    s3_server_side_encryption: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = "AES256"
    """Server-side encryption of every S3 object (the seed's security guidelines)."""
    s3_kms_key_id: str | None = None
    keenio_url: str | None = None
    retention_days: float = Field(7.0, gt=0)
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
    """Processes that parse ingest bodies; 0 parses in the service process; unset: one per
    core beyond the first (at most four)."""
    rate_limit_requests: int = Field(2000, gt=0)
    rate_limit_window_secs: float = Field(300.0, gt=0)
    linger_ms: int = Field(20, ge=0)
    request_timeout_secs: float = Field(30.0, gt=0)
    shutdown_timeout_secs: float = Field(10.0, gt=0)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

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

    Raises ``ValueError`` with every problem listed (pydantic's ``ValidationError``), or
    ``FileNotFoundError`` for a named config file that does not exist.
    """
    if config_file is not None:
        os.environ["STREAMER_CONFIG"] = config_file
    path = os.environ.get("STREAMER_CONFIG")
    if path and not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    return Settings()
