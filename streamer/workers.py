"""A few worker processes that run one function, each call under a deadline.

Why not ``concurrent.futures.ProcessPoolExecutor``: its workers share one result pipe, so a
worker that dies while writing a result leaves half a message that the pool's result thread
waits on for ever (every later call hangs, and so does the interpreter's exit), and one death
breaks the whole pool for every caller at once. Here each worker has a socket of its own: a
death is an end-of-file seen by the one call that was using that worker, and a hung worker is
killed when its call's deadline passes.

Guarantees:

- ``run`` ends within ``timeout_secs``: with the function's result, with the exception it
  raised, or with ``WorkersUnavailable`` (a worker died twice in a row, hung, or could not
  start). The function must be pure: a call that was cut off had no effect.
- A worker that died or hung is killed, and its place is given back empty: the next call to
  take that place starts a new process. So each lost worker is replaced exactly once, and a
  worker that died while idle is replaced before a call is sent to it.
- Workers leave with the service: a worker stops at the end-of-file on its socket, which the
  kernel gives it however the service ends (SIGKILL included), and a watcher thread ends a
  worker that is still busy once the service is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

import structlog

__all__ = ["Workers", "WorkersUnavailable"]

R = TypeVar("R")
_HEADER = struct.Struct("!Q")  # the length of the pickle that follows
_ATTEMPTS = 2  # a call whose worker died is sent once more, to a new worker
_BUFFER_BYTES = 4 * 1024 * 1024  # read a reply in few wake-ups, not one per 128 KiB
_log = structlog.get_logger("streamer.workers")


class WorkersUnavailable(Exception):
    """No worker ran the call: it died, hung past the deadline, or none could start."""


class _Worker:
    """One process and the parent's end of its socket."""

    def __init__(self, process: BaseProcess, sock: socket.socket) -> None:
        self.process = process
        self._sock = sock
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, payload: bytes) -> bytes:
        """Send a pickled call; return the pickled ``(True, result)`` or ``(False, error)``."""
        if self._streams is None:
            self._streams = await asyncio.open_unix_connection(sock=self._sock, limit=_BUFFER_BYTES)
        reader, writer = self._streams
        writer.writelines([_HEADER.pack(len(payload)), payload])
        await writer.drain()
        (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        return await reader.readexactly(size)

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """Close the socket (the worker stops at its end-of-file) and kill the process."""
        self.hang_up()
        if self.process.is_alive():
            self.process.kill()

    def hang_up(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        else:
            self._sock.close()


class Workers(Generic[R]):
    """``size`` processes running ``function`` (a module-level function, so that it can be
    named to a spawned process); each is started when a call first needs it."""

    def __init__(
        self,
        function: Callable[..., R],
        size: int,
        timeout_secs: float,
        *,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self._function = function
        self._timeout_secs = timeout_secs
        self._on_lost = on_lost
        self._context = multiprocessing.get_context("spawn")  # the service has threads
        self._places: asyncio.Queue[_Worker | None] = asyncio.Queue()
        for _ in range(size):
            self._places.put_nowait(None)
        self._workers: set[_Worker] = set()
        self._closed = False
        self.failure: str | None = None
        """Why the last call could not run, until a call runs again (``None``: they run)."""

    async def run(self, *args: Any, timeout_secs: float | None = None) -> R:
        """``function(*args)`` in a worker; see the module's guarantees."""
        limit = self._timeout_secs if timeout_secs is None else timeout_secs
        try:
            async with asyncio.timeout(limit):
                return await self._run(args)
        except TimeoutError:
            raise self._failed(f"no ingest worker answered within {limit:g} s") from None

    async def _run(self, args: tuple[Any, ...]) -> R:
        payload = pickle.dumps(args, pickle.HIGHEST_PROTOCOL)  # before a worker waits for it
        for attempt in range(1, _ATTEMPTS + 1):
            worker = await self._take()
            try:
                reply = await worker.call(payload)
            except (EOFError, ConnectionError) as exc:
                self._lose(worker, f"died during a call ({type(exc).__name__})")
                if attempt == _ATTEMPTS:
                    raise self._failed("the ingest worker died twice in a row") from None
                continue
            except BaseException:  # cancelled (the deadline) or a bug: the worker is suspect
                self._lose(worker, "stopped mid-call")
                raise
            self._places.put_nowait(worker)  # free for the next call while this one unpickles
            self.failure = None
            done, value = pickle.loads(reply)
            if done:
                result: R = value
                return result
            raise value
        raise AssertionError("unreachable")

    async def _take(self) -> _Worker:
        """A live worker for one call; give it back, or lose it, once the call is over."""
        if self._closed:
            raise WorkersUnavailable("the ingest workers are stopped")
        held = await self._places.get()
        if held is not None and held.alive():
            return held
        if held is not None:
            self._lose(held, "died while idle", give_back=False)
        try:
            return self._start()
        except BaseException as exc:
            self._places.put_nowait(None)
            if isinstance(exc, OSError):  # no process or socket can be made now
                raise self._failed(f"an ingest worker cannot start: {exc}") from None
            raise

    def _start(self) -> _Worker:
        parent_end, child_end = socket.socketpair()
        try:
            process = self._context.Process(
                target=_serve,
                args=(child_end, self._function, os.getpid()),
                name="streamer-ingest",
                daemon=True,
            )
            with _sigint_ignored():
                process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # the worker holds it now: its death is our end-of-file
        worker = _Worker(process, parent_end)
        self._workers.add(worker)
        return worker

    def _lose(self, worker: _Worker, how: str, *, give_back: bool = True) -> None:
        """Kill ``worker``; give its place back empty, for the next call to fill."""
        worker.kill()
        self._workers.discard(worker)
        if give_back:
            self._places.put_nowait(None)
        self._on_lost()
        _log.warning("ingest worker lost", pid=worker.process.pid, how=how)

    def _failed(self, reason: str) -> WorkersUnavailable:
        self.failure = reason
        return WorkersUnavailable(reason)

    async def close(self, timeout_secs: float) -> None:
        """Hang up on every worker, give them ``timeout_secs`` to exit, then kill the rest."""
        self._closed = True
        workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.hang_up()
        sentinels = [worker.process.sentinel for worker in workers]
        if sentinels:
            await asyncio.to_thread(wait, sentinels, timeout_secs)
        for worker in workers:
            worker.kill()
        for worker in workers:
            await asyncio.to_thread(worker.process.join)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl-C reaches the workers too (one process group). A process inherits an ignored
    signal through exec, and Python keeps it ignored, so a worker started in here ignores
    Ctrl-C from its first instruction, not only once ``_serve`` runs. (Only the main thread
    may change a handler; elsewhere, the worker relies on ``_serve`` alone.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def _serve(sock: socket.socket, function: Callable[..., Any], parent: int) -> None:
    """A worker's life: read a call, answer it, until the service hangs up or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    _exit_with_parent(parent)
    with sock, sock.makefile("rb") as calls:
        while len(header := calls.read(_HEADER.size)) == _HEADER.size:
            (size,) = _HEADER.unpack(header)
            body = calls.read(size)
            if len(body) < size:  # the service went away mid-call
                return
            args = pickle.loads(body)
            try:
                reply = pickle.dumps((True, function(*args)), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                reply = _pickled_error(exc)
            try:
                sock.sendall(_HEADER.pack(len(reply)))
                sock.sendall(reply)
            except OSError:  # the service hung up mid-call
                return


def _pickled_error(exc: Exception) -> bytes:
    try:
        return pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
    except Exception:
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _exit_with_parent(parent: int) -> None:
    """End this process once the service is gone, even in the middle of a call."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
