"""Prometheus metrics of the non-HTTP inputs (TURN log tailers, the syslog receiver, the probes),
read from their own counters at scrape time, so the inputs keep no metrics code of their own.

docs/metrics.md documents every metric; tests/unit/test_metrics_doc.py keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class TailerCounts(Protocol):
    published: int
    dead_letters: int
    errors: int


class SyslogCounts(Protocol):
    received: int
    dropped: int
    published: int


class ProbeCounts(Protocol):
    probes_run: int
    probes_failed: int

    @property
    def pending(self) -> int: ...

    @property
    def dropped(self) -> int: ...


class SourcesCollector(Collector):
    """``tailers``: (server id, tailer) pairs; ``syslog`` and ``probes`` when running."""

    def __init__(self, tailers: Iterable[tuple[str, TailerCounts]] = (), syslog: SyslogCounts | None = None,
                 probes: ProbeCounts | None = None) -> None:
        self.tailers = list(tailers)
        self.syslog = syslog
        self.probes = probes

    def collect(self) -> Iterator[Metric]:
        if self.tailers:
            published = CounterMetricFamily(
                "icewatch_turn_tailer_published", "TURN log lines published (events and dead letters)",
                labels=["server_id"])
            dead = CounterMetricFamily(
                "icewatch_turn_tailer_dead_letters", "TURN log lines published as dead letters (not coturn lines)",
                labels=["server_id"])
            errors = CounterMetricFamily(
                "icewatch_turn_tailer_errors", "Tailer polls that failed and were retried from the checkpoint",
                labels=["server_id"])
            for server_id, tailer in self.tailers:
                published.add_metric([server_id], tailer.published)
                dead.add_metric([server_id], tailer.dead_letters)
                errors.add_metric([server_id], tailer.errors)
            yield published
            yield dead
            yield errors
        if self.syslog is not None:
            yield CounterMetricFamily("icewatch_syslog_received", "Syslog messages received",
                                      value=self.syslog.received)
            yield CounterMetricFamily("icewatch_syslog_dropped", "Syslog messages dropped (buffer full or too large)",
                                      value=self.syslog.dropped)
            yield CounterMetricFamily("icewatch_syslog_published", "Syslog messages published",
                                      value=self.syslog.published)
        if self.probes is not None:
            results = CounterMetricFamily("icewatch_probe_results", "Probe results by outcome", labels=["outcome"])
            results.add_metric(["success"], self.probes.probes_run - self.probes.probes_failed)
            results.add_metric(["failure"], self.probes.probes_failed)
            yield results
            yield GaugeMetricFamily("icewatch_probe_pending", "Probe results waiting for the publisher",
                                    value=self.probes.pending)
            yield CounterMetricFamily("icewatch_probe_dropped", "Probe results dropped (pending queue full)",
                                      value=self.probes.dropped)
