"""The legacy API's callback URLs (``/api/v1/api_callback``), kept in one small JSON file.

A callback is ``{id, url}`` owned by one organisation; a legacy ``POST /api/v1/data_stream``
may name one by ``api_callback {id}`` instead of giving the URL. The file lives in the data
directory, which one service holds at a time (its lock file), and is replaced atomically on
every change, so a crash leaves the old or the new list, never half of one.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

__all__ = ["ApiCallback", "ApiCallbacks"]


@dataclass(frozen=True, slots=True)
class ApiCallback:
    id: int
    organisation: int
    url: str


class ApiCallbacks:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        try:
            stored = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            stored = []
        self._items = {item["id"]: ApiCallback(**item) for item in stored}

    def list(self) -> list[ApiCallback]:
        return sorted(self._items.values(), key=lambda item: item.id)

    def get(self, callback_id: int) -> ApiCallback | None:
        return self._items.get(callback_id)

    async def add(self, organisation: int, url: str) -> ApiCallback:
        async with self._lock:
            item = ApiCallback(max(self._items, default=0) + 1, organisation, url)
            await self._write({**self._items, item.id: item})
            return item

    async def delete(self, callback_id: int) -> None:
        async with self._lock:
            await self._write({k: v for k, v in self._items.items() if k != callback_id})

    async def _write(self, items: dict[int, ApiCallback]) -> None:
        data = orjson.dumps([asdict(item) for item in items.values()])
        await asyncio.to_thread(_replace, self._path, data)
        self._items = items


def _replace(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".tmp")
    with partial.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
