"""Prometheus metrics of a processor: rows/s, batch latency, Kafka->ClickHouse lag, dead letters."""

from __future__ import annotations

from collections.abc import Mapping, Sized
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.contract import utcnow


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("icewatch_processor_messages", "Messages consumed", registry=r)
        self.rows = Counter("icewatch_processor_rows", "Rows written", ["table"], registry=r)
        self.dead_letters = Counter("icewatch_processor_dead_letters", "Messages dead-lettered", registry=r)
        self.write_failures = Counter("icewatch_processor_write_failures", "Failed batch writes", registry=r)
        self.uncommitted_batches = Counter(
            "icewatch_processor_uncommitted_batches", "Batches written but not committed: the group moved on",
            registry=r,
        )
        self.batch_seconds = Histogram("icewatch_processor_batch_seconds", "Batch write latency", registry=r)
        self.lag_seconds = Gauge(
            "icewatch_processor_lag_seconds", "Age of the oldest message of the last batch at commit",
            registry=r,
        )
        self.last_commit = Gauge("icewatch_processor_last_commit_timestamp", "Last commit (unix s)",
                                 registry=r)

    def observe_batch(self, messages: int, rows: Mapping[str, Sized], dead: int,
                      seconds: float, oldest: datetime | None) -> None:
        self.messages.inc(messages)
        for table, table_rows in rows.items():
            self.rows.labels(table).inc(len(table_rows))
        self.dead_letters.inc(dead)
        self.batch_seconds.observe(seconds)
        now = utcnow()
        if oldest is not None:
            self.lag_seconds.set(max(0.0, (now - oldest).total_seconds()))

    def observe_commit(self) -> None:
        """Kafka took a commit (a batch written but not committed does not move the gauge)."""
        self.last_commit.set(utcnow().timestamp())
