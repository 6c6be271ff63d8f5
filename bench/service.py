"""The service under a benchmark: ``streamer run`` as a subprocess on a fresh data directory."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from pathlib import Path

import orjson

__all__ = ["start_service"]


async def start_service(
    source: str, data_parent: str, token: str, *, nofile: int | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """Start the service of ``source`` (JSON logs on stderr, ``STREAMER_SYNC=normal``) with
    ``token`` as its bootstrap token, under ``nofile`` open files if given; return the process
    and its URL once it listens."""
    env = {
        **os.environ,
        "PYTHONPATH": source,
        "STREAMER_DATA_DIR": str(Path(data_parent) / "data"),
        "STREAMER_LISTEN": "127.0.0.1:0",
        "STREAMER_BOOTSTRAP_TOKEN": token,
        "STREAMER_LOG_FORMAT": "json",
        "STREAMER_SYNC": "normal",
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
    try:
        daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "streamer",
            "run",
            env=env,
            cwd=data_parent,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert daemon.stderr is not None
    url = ""
    while not url:
        event = orjson.loads(await daemon.stderr.readline())
        url = event.get("url", "") if event.get("event") == "listening" else ""
    return daemon, url
