"""A per-stream delivery summary in the log, for the streams that moved.

Every ``interval_secs`` one info line per stream whose counters changed since the last line:
records delivered and requests acknowledged in the interval, records pending, status. Quiet
streams write nothing, so a service with thousands of idle streams stays quiet. Read from the
service's own metrics registry: what the log says is what ``/metrics`` says.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from streamer.metrics import Metrics

__all__ = ["Snapshot", "log_summaries", "snapshot"]

_log = structlog.get_logger("streamer")
_STATUS = {1: "Running", 2: "Paused", 3: "Error", 4: "Pending"}


@dataclass(frozen=True, slots=True)
class Snapshot:
    delivered: float = 0.0
    requests: float = 0.0
    pending: float = 0.0
    status: float = 0.0


def snapshot(metrics: Metrics) -> dict[str, Snapshot]:
    """Each stream's counters now, keyed by the stream label."""
    values: dict[str, dict[str, float]] = {}
    wanted = {
        "streamer_records_delivered_total": "delivered",
        "streamer_batch_seconds_count": "requests",
        "streamer_records_pending": "pending",
        "streamer_stream_status": "status",
    }
    for family in metrics.registry.collect():
        for sample in family.samples:
            field = wanted.get(sample.name)
            if field is not None and "stream" in sample.labels:
                values.setdefault(sample.labels["stream"], {})[field] = sample.value
    return {stream: Snapshot(**fields) for stream, fields in values.items()}


async def log_summaries(metrics: Metrics, interval_secs: float) -> None:
    """Log what each stream did in every interval, for as long as the task runs."""
    before = snapshot(metrics)
    while True:
        await asyncio.sleep(interval_secs)
        now = snapshot(metrics)
        for stream, current in sorted(now.items()):
            # a stream new since the last look is compared with itself but for its deliveries
            previous = before.get(stream, Snapshot(pending=current.pending, status=current.status))
            if current == previous:
                continue
            _log.info(
                "delivery",
                stream=int(stream) if stream.isdigit() else stream,
                records=int(current.delivered - previous.delivered),
                requests=int(current.requests - previous.requests),
                pending=int(current.pending),
                status=_STATUS.get(int(current.status), "unknown"),
                interval_secs=interval_secs,
            )
        before = now
