"""Start-up and configuration mistakes end in one line and exit status 1; stops are clean.

Every command runs as a real subprocess (``python -m streamer``), as a user would run it. The
Ctrl-C tests run it under a pseudo-terminal, so Ctrl-C reaches the whole foreground process
group (the service and its ingest workers) exactly as it does in a shell.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from schemas import Kind, Version
from tests.e2e.harness import fleet_records, json_array

TOKEN = "startup_" + "x" * 40


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env.update(STREAMER_DATA_DIR=str(tmp_path / "data"), STREAMER_LISTEN="127.0.0.1:0")
    env.update(settings)
    return env


def _streamer(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _one_line_failure(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["run", "check-config"])
@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("STREAMER_LISTEN", "localhost", "STREAMER_LISTEN"),
        ("STREAMER_LISTEN", "127.0.0.1:70000", "STREAMER_LISTEN"),
        ("STREAMER_RETENTION_DAYS", "-1", "STREAMER_RETENTION_DAYS"),
        ("STREAMER_SYNC", "sometimes", "STREAMER_SYNC"),
        ("STREAMER_LOG_FORMAT", "xml", "STREAMER_LOG_FORMAT"),
        ("STREAMER_LOG_BACKEND", "kafka", "STREAMER_LOG_BACKEND"),
        ("STREAMER_NATS_REPLICAS", "0", "STREAMER_NATS_REPLICAS"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, command: str, setting: str, value: str, named: str
) -> None:
    _one_line_failure(_streamer(tmp_path, command, **{setting: value}), named)


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_toml_syntax_error_is_one_line(tmp_path: Path, command: str) -> None:
    config = tmp_path / "streamer.toml"
    config.write_text('listen = "127.0.0.1:0"\nretention_days = \n')
    done = _streamer(tmp_path, "--config", str(config), command)
    _one_line_failure(done, str(config), "not valid TOML", "line 2")


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    _one_line_failure(_streamer(tmp_path, "--config", "nowhere.toml", "run"), "nowhere.toml")


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "data").write_text("not a folder")
    done = _streamer(tmp_path, command)
    _one_line_failure(done, "STREAMER_DATA_DIR", "not a directory")


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = _streamer(tmp_path, "run", STREAMER_DATA_DIR=str(tmp_path / "file" / "data"))
    _one_line_failure(done, "STREAMER_DATA_DIR", "cannot be created")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only directory")
def test_a_read_only_data_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o500)
    _one_line_failure(_streamer(tmp_path, "run"), "STREAMER_DATA_DIR", "not writable")


def test_check_config_prints_every_setting_and_masks_the_token(tmp_path: Path) -> None:
    done = _streamer(tmp_path, "check-config", STREAMER_BOOTSTRAP_TOKEN=TOKEN)
    assert done.returncode == 0, done.stderr
    assert "listen = 127.0.0.1:0" in done.stdout
    assert "bootstrap_token = ****" in done.stdout
    assert TOKEN not in done.stdout + done.stderr
    assert not (tmp_path / "data").exists(), "check-config must not create the data directory"


def test_token_commands_refuse_a_folder_without_a_data_dir(tmp_path: Path) -> None:
    done = _streamer(tmp_path, "token", "create", "--role", "admin")
    _one_line_failure(done, "STREAMER_DATA_DIR", "does not exist")
    assert not (tmp_path / "data").exists()
    assert done.stdout == "", "no token may be printed for a data directory nobody serves"


def test_token_commands_say_which_data_dir_they_use(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    done = _streamer(tmp_path, "token", "create", "--role", "admin")
    assert done.returncode == 0, done.stderr
    assert f"data directory: {tmp_path / 'data'}" in done.stderr
    assert len(done.stdout.strip()) >= 32


# --- stops ---------------------------------------------------------------------------------------


class Terminal:
    """``streamer ARGS`` under a pseudo-terminal; everything it prints is kept."""

    def __init__(self, tmp_path: Path, *args: str, **settings: str) -> None:
        env = _env(tmp_path, **settings)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the command
            os.chdir(tmp_path)
            os.execve(sys.executable, [sys.executable, "-m", "streamer", *args], env)
        self.output = b""

    def read_until(self, condition: bytes, timeout_secs: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_secs
        while condition not in self.output:
            assert time.monotonic() < deadline, f"no {condition!r} in:\n{self.text}"
            self._read(0.1)

    def ctrl_c(self) -> int:
        """Type Ctrl-C; wait for the command to end and return its exit code."""
        os.write(self.fd, b"\x03")
        deadline = time.monotonic() + 30
        while True:
            self._read(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._drain()
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                pytest.fail(f"still running 30 s after Ctrl-C:\n{self.text}")

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def _read(self, timeout_secs: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout_secs)
        if ready:
            with contextlib.suppress(OSError):  # the command is gone and the terminal closed
                self.output += os.read(self.fd, 65536)

    def _drain(self) -> None:
        while select.select([self.fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk


def test_ctrl_c_of_run_after_ingest_prints_no_traceback(tmp_path: Path) -> None:
    terminal = Terminal(
        tmp_path,
        "run",
        STREAMER_LOG_FORMAT="json",
        STREAMER_INGEST_WORKERS="1",
        STREAMER_BOOTSTRAP_TOKEN=TOKEN,
    )
    terminal.read_until(b'"listening"')
    line = next(x for x in terminal.text.splitlines() if '"listening"' in x)
    url = orjson.loads(line[line.index("{") :])["url"]
    # an array: the ingest worker reads it (NDJSON of good records is read without one)
    body = json_array(fleet_records(1, 50, Kind.EVENT), Kind.EVENT, Version.NEW)
    request = urllib.request.Request(
        f"{url}/api/v1/ingest/events",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202
    assert terminal.ctrl_c() == 0, terminal.text
    assert "Traceback" not in terminal.text
    assert '"stopped"' in terminal.text


@pytest.mark.parametrize("after", [b"streamer demo: API", b"webhook received"])
def test_ctrl_c_of_demo_prints_no_traceback_and_says_what_next(
    tmp_path: Path, after: bytes
) -> None:
    terminal = Terminal(tmp_path, "demo", "--rate", "200")
    terminal.read_until(after)
    code = terminal.ctrl_c()
    assert "Traceback" not in terminal.text
    assert code == 0, terminal.text
    assert "Next:" in terminal.text


def test_check_config_and_a_nats_that_cannot_be_reached_mask_the_nats_password(
    tmp_path: Path,
) -> None:
    password = "nats-secret-" + "p" * 20
    url = f"nats://streamer:{password}@127.0.0.1:9"  # nothing listens on the discard port
    settings = {"STREAMER_LOG_BACKEND": "nats", "STREAMER_NATS_URL": url}

    shown = _streamer(tmp_path, "check-config", **settings)
    refused = _streamer(tmp_path, "run", **settings)

    assert shown.returncode == 0, shown.stderr
    assert "nats_url = nats://****@127.0.0.1:9" in shown.stdout
    line = _one_line_failure(refused, "cannot connect to NATS at nats://****@127.0.0.1:9")
    assert password not in shown.stdout + shown.stderr + refused.stdout + refused.stderr, line


def test_version_and_a_wrong_role_are_answered_by_the_command_line(tmp_path: Path) -> None:
    version = _streamer(tmp_path, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("streamer ")
    wrong = _streamer(tmp_path, "token", "create", "--role", "owner")
    assert wrong.returncode == 2
    assert "argument --role: 'owner' is not one of observer, user, admin, ingest" in wrong.stderr
