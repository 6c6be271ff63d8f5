"""The legacy API's callback URLs (``/api/v1/api_callback``), kept in the store, so every
replica of the service shares them.

A callback is ``{id, url}`` owned by one organisation; a legacy ``POST /api/v1/data_stream``
may name one by ``api_callback {id}`` instead of giving the URL. Earlier versions kept them in
``api_callbacks.json`` in the data directory: ``import_file`` moves that file's callbacks into
the store once, then renames it ``api_callbacks.json.imported``. A callback whose id the store
numbers differently (a store that had callbacks already, or gaps in the file's ids) is logged
with its old and new id.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import structlog

from streamer.log.base import CallbackRow, Store

__all__ = ["ApiCallback", "ApiCallbacks"]

ApiCallback = CallbackRow
_log = structlog.get_logger("streamer.callbacks")


class ApiCallbacks:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(self) -> list[ApiCallback]:
        return await self._store.callbacks()

    async def get(self, callback_id: int) -> ApiCallback | None:
        return next((item for item in await self.list() if item.id == callback_id), None)

    async def add(self, organisation: int, url: str) -> ApiCallback:
        return ApiCallback(await self._store.add_callback(organisation, url), organisation, url)

    async def delete(self, callback_id: int) -> None:
        await self._store.delete_callback(callback_id)

    async def import_file(self, path: Path) -> None:
        """Move the callbacks of an earlier version's ``path`` into the store, once."""
        try:
            stored = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return
        for item in sorted(stored, key=lambda item: int(item["id"])):
            new_id = await self._store.add_callback(int(item["organisation"]), str(item["url"]))
            if new_id != item["id"]:
                _log.warning("API callback renumbered on import", was=item["id"], now=new_id)
        path.rename(path.with_name(path.name + ".imported"))
        _log.info("API callbacks moved into the store", count=len(stored), file=str(path))
