"""Processors joining and leaving a consumer group mid-stream (Kafka reassigns partitions while
batches are in flight), with the real broker and the real ClickHouse engine (chDB): nothing is
lost and nothing is counted twice.

Each processor here is a consumer loop with its own Kafka consumer (a group member, exactly what
`icewatch processor` runs per stream), in a thread of the test process: chDB admits one process
per store, and the members must share one store as processors share one ClickHouse server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.contract import CallReport
from collector.kafka_publisher import KafkaPublisher
from collector.settings import KafkaSettings, Settings, Topics
from processors.service.assembly import build_loop
from processors.service.consumer import ConsumerLoop
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from processors.store.sink import Row, Table
from tests.integration.test_delivery import committed_total, create_topics, make_report, unique_topics
from tests.services import KafkaService

pytestmark = pytest.mark.kafka


class Member:
    """One processor of the group: a consumer loop in a thread, its own metrics."""

    def __init__(self, settings: Settings, sink: ChdbSink, dlq: KafkaPublisher) -> None:
        self.metrics = ProcessorMetrics()
        self.loop: ConsumerLoop = build_loop(settings, sink, dlq, self.metrics, ("call_reports",))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loop.run()
        except BaseException as exc:  # the test fails on it, with the exception
            self.error = exc

    @property
    def consumed(self) -> int:
        return int(self.metrics.messages._value.get())

    @property
    def assigned(self) -> int:
        return len(self.loop.consumer.assignment())

    def stop(self) -> None:
        self.loop.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the processor did not stop"
        assert self.error is None, repr(self.error)


@contextmanager
def members() -> Iterator[list[Member]]:
    started: list[Member] = []
    try:
        yield started
    finally:
        for m in started:
            if m.thread.is_alive():
                m.loop.stop()
        for m in started:
            m.thread.join(timeout=60)


def wait_until(cond: object, timeout: float, what: str, group: list[Member]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in group:
            assert m.error is None, f"a processor died while waiting for {what}: {m.error!r}"
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass(frozen=True)
class Stream:
    """A call_reports stream of 4 partitions on the real broker, for a group of processors that all
    write into one chDB store: the settings they run with, the reports to send, the test's publisher,
    the processors' dead-letter publisher."""

    kafka: KafkaService
    topics: Topics
    settings: Settings
    reports: list[CallReport]
    publisher: KafkaPublisher
    dlq: KafkaPublisher
    sink: ChdbSink

    @property
    def group(self) -> str:
        """The Kafka consumer group of the processors' call_reports loop."""
        return self.settings.group_id + ".call_reports"

    def assert_each_report_stored_once(self) -> None:
        """Every report's offset committed; calls, call_samples and their rollups hold each report once."""
        total = len(self.reports)
        assert committed_total(self.kafka, self.group) == total
        assert self.sink.query("SELECT count() AS n FROM calls FINAL")[0]["n"] == total
        assert self.sink.query("SELECT uniqExactMerge(calls) AS n FROM call_minute")[0]["n"] == total
        assert self.sink.query("SELECT count() AS n FROM call_samples FINAL")[0]["n"] == 3 * total
        assert self.sink.query("SELECT uniqExactMerge(samples) AS n FROM rtt_band_minute")[0]["n"] == 3 * total


@contextmanager
def report_stream(kafka: KafkaService, tmp_path: Path, total: int, **settings: Any) -> Iterator[Stream]:
    """Fresh topics and group, ``total`` reports, a migrated store; ``settings`` go to Settings."""
    topics = unique_topics(partitions=4)
    create_topics(kafka, topics)
    config = Settings(kafka=KafkaSettings(bootstrap=kafka.bootstrap), topics=topics,
                      group_id=f"g-{uuid.uuid4().hex[:8]}", **settings)
    publisher = KafkaPublisher(config.kafka, topics, source_host="test")  # type: ignore[arg-type]
    dlq = KafkaPublisher(config.kafka, topics, source_host="processor")  # type: ignore[arg-type]
    sink = ChdbSink(tmp_path / "store")
    try:
        migrate(sink)
        yield Stream(kafka, topics, config, [make_report(i) for i in range(total)], publisher, dlq, sink)
    finally:
        publisher.close()
        dlq.close()
        sink.close()


def test_processors_joining_and_leaving_mid_stream_count_every_report_once(kafka: KafkaService,
                                                                           tmp_path: Path) -> None:
    total = 6000
    with report_stream(kafka, tmp_path, total) as stream:
        topics, settings, group, reports = stream.topics, stream.settings, stream.group, stream.reports
        publisher, dlq, sink = stream.publisher, stream.dlq, stream.sink
        for k in range(0, 2000, 500):
            publisher.publish(reports[k:k + 500])
        with members() as group_members:
            first = Member(settings, sink, dlq)
            group_members.append(first)
            wait_until(lambda: committed_total(kafka, group) >= 400, 90, "the first commits", group_members)

            # A second processor joins while the first has batches in flight: the partitions are
            # split between them; the stream keeps coming. (The next reports are sent once the split
            # is done: sent before it, a fast first processor could take them all and leave the
            # second nothing to consume, which says nothing about the counts.)
            second = Member(settings, sink, dlq)
            group_members.append(second)
            wait_until(lambda: second.assigned > 0 and first.assigned > 0, 90,
                       "the partitions to be split between the two", group_members)
            for k in range(2000, 4000, 500):
                publisher.publish(reports[k:k + 500])
            wait_until(lambda: second.consumed > 0, 90, "the second processor to write", group_members)
            assert first.assigned + second.assigned == topics.partitions

            # The first one stops (its partitions move to the second) and comes back at once, while
            # that reassignment is under way.
            consumed_before_restart = first.consumed
            first.stop()
            restarted = Member(settings, sink, dlq)
            group_members.append(restarted)
            wait_until(lambda: restarted.assigned > 0, 60, "the restarted processor to take partitions",
                       group_members)
            for k in range(4000, total, 500):
                publisher.publish(reports[k:k + 500])
            wait_until(lambda: committed_total(kafka, group) >= total, 120, "every report committed", group_members)
            wait_until(lambda: restarted.consumed > 0, 60, "the restarted processor to write", group_members)
            second.stop()
            restarted.stop()

        stream.assert_each_report_stored_once()
        # Every member did part of the work; together at least everything: a batch whose partition
        # moved before its commit is consumed again by the new owner (with the default batch size and
        # time, 104 and 519 of the 6000 were, in two runs on 2026-11-26, 2-core shared machine).
        assert consumed_before_restart > 0 and second.consumed > 0 and restarted.consumed > 0
        assert first.consumed + second.consumed + restarted.consumed >= total
        assert sink.query("SELECT uniqExact(call_id) AS n FROM calls")[0]["n"] == total
        assert sink.query("SELECT uniqExactIfMerge(relayed) AS n FROM call_minute")[0]["n"] == total


class SlowStore:
    """The shared store, slow once for the member that writes through it: its first insert after
    ``when()`` holds waits ``delay_s`` (a long insert: a big batch, a ClickHouse merge stall)."""

    def __init__(self, sink: ChdbSink, delay_s: float) -> None:
        self.sink = sink
        self.delay_s = delay_s
        self.when: Callable[[], bool] = lambda: False
        self.inside = threading.Event()  # set once the slowed insert has begun

    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        if not self.inside.is_set() and self.when():
            self.inside.set()
            time.sleep(self.delay_s)
        self.sink.insert(table, rows, dedup_token)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.sink.query(sql, params)

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        return self.sink.query_table(sql, settings)

    def execute(self, sql: str) -> None:
        self.sink.execute(sql)

    def close(self) -> None:
        """The test closes the real store."""


def test_a_rebalance_during_a_slow_write_neither_stops_the_processor_nor_loses_its_batch(
        kafka: KafkaService, tmp_path: Path) -> None:
    total = 3000
    with report_stream(kafka, tmp_path, total) as stream:
        settings, group, reports = stream.settings, stream.group, stream.reports
        publisher, dlq, sink = stream.publisher, stream.dlq, stream.sink
        slow_store = SlowStore(sink, delay_s=6.0)  # longer than two heartbeat intervals (3 s)
        publisher.publish(reports[:1000])
        with members() as group_members:
            first = Member(settings, slow_store, dlq)  # type: ignore[arg-type]
            group_members.append(first)
            wait_until(lambda: committed_total(kafka, group) >= 1, 90, "the first commit", group_members)
            slow_store.when = lambda: True
            publisher.publish(reports[1000:2000])
            wait_until(slow_store.inside.is_set, 60, "a slowed write", group_members)
            second = Member(settings, sink, dlq)  # joins while the first one is inside its write
            group_members.append(second)
            publisher.publish(reports[2000:])
            wait_until(lambda: committed_total(kafka, group) >= total, 120, "every report committed", group_members)
            wait_until(lambda: first.assigned > 0 and second.assigned > 0, 60, "both processors assigned",
                       group_members)
            assert first.thread.is_alive() and second.thread.is_alive()
            first.stop()
            second.stop()
        stream.assert_each_report_stored_once()


def test_a_batch_written_after_its_partitions_moved_does_not_move_their_new_owners_offsets_back(
        kafka: KafkaService, tmp_path: Path) -> None:
    """The first processor's batch spans the rebalance that gives half its partitions to a second
    one, and its write is slow: the second processor reads those partitions again from their last
    commit and commits past the batch first. The late batch must not commit them back."""
    total = 3000
    stop_feeding = threading.Event()
    # batches closed by time, so that a rebalance falls inside one
    with report_stream(kafka, tmp_path, total, max_batch_messages=20_000, max_batch_seconds=1.5) as stream:
        topics, settings, group, reports = stream.topics, stream.settings, stream.group, stream.reports
        publisher, dlq, sink = stream.publisher, stream.dlq, stream.sink
        slow_store = SlowStore(sink, delay_s=5.0)

        def feed() -> None:  # a steady stream, so that every batch is open for its whole 1.5 s
            for k in range(1000, total, 100):
                if stop_feeding.wait(0.1):
                    return
                publisher.publish(reports[k:k + 100])

        feeder = threading.Thread(target=feed, daemon=True)
        try:
            publisher.publish(reports[:1000])
            with members() as group_members:
                first = Member(settings, slow_store, dlq)  # type: ignore[arg-type]
                group_members.append(first)
                wait_until(lambda: committed_total(kafka, group) >= 1, 90, "the first commit", group_members)
                feeder.start()
                slow_store.when = lambda: 0 < first.assigned < topics.partitions  # after it lost partitions
                second = Member(settings, sink, dlq)
                group_members.append(second)
                wait_until(slow_store.inside.is_set, 60, "a write after the rebalance", group_members)
                feeder.join(timeout=60)
                wait_until(lambda: committed_total(kafka, group) >= total, 60, "every offset committed",
                           group_members)
                first.stop()
                second.stop()
        finally:
            stop_feeding.set()  # before the stream's publisher closes
        stream.assert_each_report_stored_once()


def test_a_write_longer_than_the_poll_interval_leaves_its_batch_to_be_read_again_and_goes_on(
        kafka: KafkaService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member that does not poll for max.poll.interval.ms (here one slow write) is dropped from the
    group, and Kafka refuses its commit (CommitFailedError). The processor does not stop on it: the
    batch stays uncommitted, the member rejoins, reads it again and the store counts it once."""
    import kafka as kafka_python

    class ShortPollInterval(kafka_python.KafkaConsumer):  # type: ignore[misc]
        def __init__(self, *topics: str, **config: Any) -> None:
            super().__init__(*topics, **{**config, "max_poll_interval_ms": 2500})

    monkeypatch.setattr(kafka_python, "KafkaConsumer", ShortPollInterval)  # make_consumer imports it per call
    total = 1500
    with report_stream(kafka, tmp_path, total) as stream:
        publisher, dlq, sink, group, reports = stream.publisher, stream.dlq, stream.sink, stream.group, stream.reports
        slow_store = SlowStore(sink, delay_s=6.0)
        publisher.publish(reports[:500])
        with members() as group_members:
            member = Member(stream.settings, slow_store, dlq)  # type: ignore[arg-type]
            group_members.append(member)
            assert member.loop.consumer.config["max_poll_interval_ms"] == 2500
            wait_until(lambda: committed_total(kafka, group) >= 1, 90, "the first commit", group_members)
            slow_store.when = lambda: True
            publisher.publish(reports[500:1000])
            wait_until(slow_store.inside.is_set, 60, "the slow write", group_members)
            publisher.publish(reports[1000:])
            wait_until(lambda: committed_total(kafka, group) >= total, 120, "every report committed", group_members)
            assert member.metrics.uncommitted_batches._value.get() >= 1  # the refused commit happened
            assert member.thread.is_alive()
            member.stop()
        stream.assert_each_report_stored_once()
