"""A service that cannot start says why, in one line, and exits 1: no traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import Daemon


async def run_streamer(data_dir: Path, listen: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamer",
        "run",
        env={**env, "STREAMER_DATA_DIR": str(data_dir), "STREAMER_LISTEN": listen},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


@pytest.mark.parametrize("clash", ["data directory", "port"])
async def test_a_second_service_is_refused_with_the_reason(
    daemon: Daemon, tmp_path: Path, clash: str
) -> None:
    port = urlsplit(daemon.base_url).port
    if clash == "data directory":
        code, stderr = await run_streamer(daemon.data_dir, "127.0.0.1:0")
        expected = f"{daemon.data_dir} is in use by another streamer service"
    else:
        code, stderr = await run_streamer(tmp_path / "other", f"127.0.0.1:{port}")
        expected = f"cannot listen on 127.0.0.1:{port}"

    assert code == 1
    assert expected in stderr
    assert "Traceback" not in stderr
    assert (await daemon.request("GET", "/health/ready")).status == 200
