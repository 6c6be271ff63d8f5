"""A change acknowledged with 202 is what a GET and a restarted service see, even while the
stream delivers: the engine alone writes a stream's definition and status, its worker only
its position. A pause lets the request in flight finish, so its records are not sent again;
a request that waited meanwhile for a stream since deleted is answered 404."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.api.services import SERVICES
from streamer.fanout.engine import Fanout
from tests.api.conftest import settings
from tests.api.harness import Answer, Service, event, webhook
from tests.receivers import Receiver, Reply, eventually


async def test_a_patch_answered_202_is_what_get_and_a_restart_show(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        service = await Service.start(settings(tmp_path))
        try:
            stream_id = await service.create(
                webhook(f"{receiver.url}/hook", name="before", credentials={"size": 2})
            )
            path = f"/api/v2/data_stream/{stream_id}"
            await service.ingest("events", [event(i) for i in range(1, 41)])
            change = {"name": "after", "format_version": "old"}

            answer = await service.call("PATCH", path, json=change)
            assert answer.status == 202, answer.text
            await service.ingest("events", [event(i) for i in range(41, 81)])

            engine = service.app[SERVICES].fanout

            def delivered_all() -> bool:
                stream = engine.get(stream_id)
                return stream is not None and stream.position.delivered == 80

            await eventually(delivered_all, timeout_secs=30)
            shown = await service.stream(stream_id)
            assert (shown["name"], shown["format_version"]) == ("after", "old")
            assert shown["status"]["id"] == 1
        finally:
            await service.aclose()

        restarted = await Service.start(settings(tmp_path))
        try:
            shown = await restarted.stream(stream_id)
            assert (shown["name"], shown["format_version"]) == ("after", "old")
            assert shown["status"]["id"] == 1
            assert shown["stats"]["delivered_records"] == 80
        finally:
            await restarted.aclose()


@dataclass
class _InFlight:
    """A service whose one webhook stream has its first request held by the receiver."""

    service: Service
    receiver: Receiver
    stream_id: int
    answer_now: asyncio.Event

    @property
    def path(self) -> str:
        return f"/api/v2/data_stream/{self.stream_id}"

    @property
    def engine(self) -> Fanout:
        return self.service.app[SERVICES].fanout

    async def call_while_held(self, method: str, **kwargs: Any) -> asyncio.Task[Answer]:
        """``method`` on the stream, once it told the stream's worker to stop (or answered)."""
        worker = self.engine._workers[self.stream_id][0]
        call = asyncio.ensure_future(self.service.call(method, self.path, **kwargs))
        await eventually(lambda: worker.stopping or call.done(), timeout_secs=30)
        return call


@contextlib.asynccontextmanager
async def _in_flight(tmp_path: Path, records: int) -> AsyncIterator[_InFlight]:
    async with Receiver() as receiver:
        answer_now = asyncio.Event()
        receiver.script(Reply(hold=answer_now))
        service = await Service.start(settings(tmp_path))
        try:
            stream_id = await service.create(
                webhook(f"{receiver.url}/hook", credentials={"size": 100})
            )
            await service.ingest("events", [event(i) for i in range(1, records + 1)])
            await receiver.wait_for_requests(1, timeout_secs=30)
            yield _InFlight(service, receiver, stream_id, answer_now)
        finally:
            await service.aclose()


async def test_a_pause_waits_for_the_request_in_flight_and_nothing_is_sent_twice(
    tmp_path: Path,
) -> None:
    async with _in_flight(tmp_path, records=10) as held:
        pausing = await held.call_while_held("PATCH", json={"status": {"id": 2}})
        assert not pausing.done()  # the pause waits for the destination's answer
        held.answer_now.set()
        paused = await asyncio.wait_for(pausing, 30)
        assert paused.status == 202, paused.text
        shown = await held.service.stream(held.stream_id)
        assert shown["stats"]["delivered_records"] == 10

        await held.service.ingest("events", [event(i) for i in range(11, 16)])
        resumed = await held.service.call("PATCH", held.path, json={"status": {"id": 1}})
        assert resumed.status == 202, resumed.text

        def delivered_all() -> bool:
            stream = held.engine.get(held.stream_id)
            return stream is not None and stream.position.delivered == 15

        await eventually(delivered_all, timeout_secs=30)
        requests = held.receiver.requests
        ids = [record["id"] for request in requests for record in request.json()]
        assert sorted(ids) == list(range(1, 16))  # every record once


async def test_a_delete_retried_while_the_first_waits_for_the_request_in_flight_is_404(
    tmp_path: Path,
) -> None:
    async with _in_flight(tmp_path, records=1) as held:
        first = await held.call_while_held("DELETE")
        retried = asyncio.ensure_future(held.service.call("DELETE", held.path))
        operations = held.engine._operations[held.stream_id]
        await eventually(lambda: bool(operations._waiters), timeout_secs=30)  # it waits
        held.answer_now.set()

        answers = await asyncio.wait_for(asyncio.gather(first, retried), 30)
        assert [answer.status for answer in answers] == [202, 404], answers[1].text
        assert answers[1].is_error(404, "not_found")
