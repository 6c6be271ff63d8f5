"""The README works as written: its shell blocks are run, as a newcomer would run them.

``test_a_newcomer_follows_the_readme`` takes a copy of the repository, runs the quick start
(a fresh venv, a non-editable install, ``streamer run``), then the "Using the service",
"More commands" and ``convert`` blocks against that very service. Two substitutions only: the
service's address (the test picks a free port instead of 8080) and the example webhook URL
(a receiver on loopback instead of example.com; the service is told private destinations are
allowed). Every ``sh`` block of the README must be one of those, or named in ``NOT_RUN`` with
the reason, so a new example cannot slip in untested.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from streamer.cli import _parser
from streamer.config import Settings
from tests.e2e.harness import Receiver, eventually

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS: list[tuple[str, str]] = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.DOTALL)
SH_BLOCKS = [body for lang, body in BLOCKS if lang == "sh"]

QUICK_START = "python3 -m venv .venv &&"
USING = "TOKEN=change-me-to-a-long-random-secret"
MORE = "export STREAMER_TOKEN="
CONVERT = "streamer convert --to migrated"
NOT_RUN = {
    "make check": "it is the command that runs this test",
    "helm dependency build": "it needs a cluster and the network; tests/deploy renders, lints "
    "and validates the chart offline",
}


def _block(first_words: str) -> str:
    found = [b for b in SH_BLOCKS if b.startswith(first_words)]
    assert len(found) == 1, f"the README has {len(found)} sh blocks starting {first_words!r}"
    return found[0]


def test_every_sh_block_is_run_or_said_why_not() -> None:
    known = (QUICK_START, USING, MORE, CONVERT, *NOT_RUN)
    strays = [b for b in SH_BLOCKS if not b.startswith(known)]
    assert not strays, f"README sh blocks this test does not run: {strays}"


def test_every_streamer_command_in_the_readme_parses() -> None:
    lines = [
        line.split("#")[0].split(">")[0].strip()
        for _, body in BLOCKS
        for line in body.splitlines()
        if re.match(r"streamer [a-z-]+(\s|$)", line) and "[" not in line
    ]
    assert len(lines) >= 7
    parser = _parser()
    for line in lines:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit as exc:
            pytest.fail(f"README command does not parse ({exc.code}): {line}")


def test_the_settings_table_lists_every_setting() -> None:
    table = README[README.index("| variable | default | meaning |") :]
    named = set(re.findall(r"`(STREAMER_[A-Z0-9_]+)`", table.split("\n\n")[0]))
    expected = {f"STREAMER_{name.upper()}" for name in Settings.model_fields} | {"STREAMER_CONFIG"}
    assert expected - named == set(), "settings missing from the README's table"
    assert named - expected == set(), "the README's table names settings that do not exist"


def _copy_of_the_repository(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bash(script: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{script}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("curl") is None and not os.environ.get("CI"), reason="no curl")
async def test_a_newcomer_follows_the_readme(tmp_path: Path) -> None:
    repo = _copy_of_the_repository(tmp_path / "streamer")
    address = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMER_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if Path(sys.prefix) not in Path(p).parents
    )
    service_env = {
        **env,
        "STREAMER_LISTEN": address,
        "STREAMER_ALLOW_PRIVATE_DESTINATIONS": "true",
        "STREAMER_LOG_FORMAT": "json",
    }
    receiver = Receiver()
    await receiver.start()
    service = subprocess.Popen(
        ["bash", "-c", _block(QUICK_START)],
        cwd=repo,
        env=service_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        await eventually(
            lambda: _ready(address) if service.poll() is None else _exited(service),
            timeout_secs=300,
            what="the quick start's service answering /health/ready",
            interval_secs=0.5,
        )
        using = _block(USING).replace("127.0.0.1:8080", address)
        using = using.replace("https://example.com/hook", receiver.url)
        out = _bash(using, repo, env)
        assert "HTTP/1.1 201" in out
        assert len(re.findall(r'"accepted": ?6\b', out)) == 2, out

        examples = [
            orjson.loads(line)
            for name in ("events", "usage")
            for line in (repo / "examples" / f"{name}.ndjson").read_bytes().splitlines()
        ]
        organisation_1 = {r["id"] for r in examples if r["organisation"]["id"] == 1}
        await eventually(
            lambda: receiver.id_set() == organisation_1,
            what="the webhook receiving organisation 1's example records",
        )

        tools = {
            **env,
            "PATH": f"{repo / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
            "STREAMER_URL": f"http://{address}",
        }
        out = _bash(_block(MORE), repo, tools)
        assert re.search(r"my webhook\s+1\s+RestAPI\s+new\s+Running", out), out

        _bash(_block(CONVERT), repo, tools)
        assert len((repo / "migrated.ndjson").read_bytes().splitlines()) == 12
        assert len((repo / "cdr_20210419_133142.csv").read_bytes().splitlines()) == 1 + 6
    finally:
        await receiver.stop()
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGINT)
        output, _ = await asyncio.to_thread(service.communicate, timeout=60)
    log = output.decode(errors="replace")
    assert service.returncode == 0, log[-3000:]
    assert "Traceback" not in log


async def _ready(address: str) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{address}/health/ready") as answer,
        ):
            return answer.status == 200
    except aiohttp.ClientError:
        return False


def _exited(service: subprocess.Popen[bytes]) -> bool:
    output = service.stdout.read().decode(errors="replace") if service.stdout else ""
    pytest.fail(f"the quick start ended with {service.returncode}:\n{output[-3000:]}")
