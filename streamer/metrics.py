"""The service's Prometheus metrics, on a registry of its own (one per running app)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """Counters per record kind and per stream; names follow ``streamer_<thing>_<unit>``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ingested = Counter(
            "streamer_records_ingested", "Records stored by ingest.", ["kind"], registry=r
        )
        self.rejected = Counter(
            "streamer_ingest_requests_rejected",
            "Ingest requests refused, by HTTP status.",
            ["status"],
            registry=r,
        )
        self.ingest_workers_lost = Counter(
            "streamer_ingest_workers_lost",
            "Ingest worker processes that died or hung and were replaced.",
            registry=r,
        )
        self.delivered = Counter(
            "streamer_records_delivered",
            "Records a destination acknowledged.",
            ["stream"],
            registry=r,
        )
        self.failed = Counter(
            "streamer_records_failed",
            "Records in sends that failed (each failed attempt counts its records).",
            ["stream"],
            registry=r,
        )
        self.retried = Counter(
            "streamer_records_retried",
            "Records sent again after a failure.",
            ["stream"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "streamer_records_dead_lettered",
            "Records a destination refused for good, kept as dead letters.",
            ["stream"],
            registry=r,
        )
        self.service_errors = Counter(
            "streamer_delivery_service_errors",
            "Times a stream's delivery was held up by the service's own error (its log or"
            " store, a bug), not the destination's; each is retried.",
            ["stream"],
            registry=r,
        )
        self.pending = Gauge(
            "streamer_records_pending",
            "Records in the log after the stream's acknowledged position.",
            ["stream"],
            registry=r,
        )
        self.status = Gauge(
            "streamer_stream_status",
            "Stream status id: 1 Running, 2 Paused, 3 Error, 4 Pending.",
            ["stream"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "streamer_batch_seconds",
            "Time from a batch's first send to its acknowledgement.",
            ["stream"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )

    def forget(self, stream: str) -> None:
        """Drop a deleted stream's series."""
        for metric in (
            self.delivered,
            self.failed,
            self.retried,
            self.dead_lettered,
            self.service_errors,
            self.pending,
            self.status,
            self.batch_seconds,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(stream)
