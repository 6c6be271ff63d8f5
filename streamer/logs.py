"""Structured logs: JSON lines, or a readable console on a terminal; secrets never written.

Every event passes ``mask_secrets``: values under keys that name a secret (token,
authorization, api_key, write_key, secret, password, headers) become ``****``. The standard
``logging`` of the libraries (aiohttp, asyncio, botocore) goes through the same processors and
renderer, so in JSON mode every line on stderr is one JSON object, tracebacks included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "mask_secrets"]

_SECRET_KEYS = ("token", "authorization", "api_key", "write_key", "secret", "password", "headers")


def mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event:
        if any(part in key.lower() for part in _SECRET_KEYS):
            event[key] = "****"
    return event


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    for noisy in ("botocore", "aiobotocore", "urllib3"):
        # their debug output holds request headers: Authorization, X-Amz-Security-Token
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))
