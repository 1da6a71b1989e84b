"""A commit Kafka refuses because the group moved on (CommitFailedError) leaves the batch written
and uncommitted without stopping the processor, and does not count as a commit: the gauge that
shows a stalled processor (icewatch_processor_last_commit_timestamp) moves only when Kafka took
one. A fake Kafka consumer hands one message per poll; the store is the real chDB."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from kafka.errors import CommitFailedError

from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.consumer import ConsumerLoop
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.unit.test_consumer_row_bound import OneAtATime, batch_messages


class RefusingCommits(OneAtATime):
    """Kafka's answer to a member the group has dropped: every commit is refused."""

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        super().commit(offsets)
        raise CommitFailedError("the group has already rebalanced and assigned the partitions to another member")


def run(consumer: OneAtATime, sink: ChdbSink, metrics: ProcessorMetrics) -> None:
    loop = ConsumerLoop(consumer=consumer, sink=sink, row_fn=RowBuilder(FactsEnv()).rows, dlq=None,
                        metrics=metrics, max_batch_messages=1, max_batch_seconds=3600)
    consumer.loop, consumer.sink = loop, sink
    loop.run()


def sample(metrics: ProcessorMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def test_a_refused_commit_keeps_the_processor_going_and_does_not_move_the_last_commit_gauge(tmp_path: Path) -> None:
    sink = ChdbSink(tmp_path / "store")
    try:
        migrate(sink)
        messages = batch_messages(3, 4)
        refused, metrics = RefusingCommits(messages[:2]), ProcessorMetrics()
        run(refused, sink, metrics)
        # both batches written (4 events each) and their commits tried; the loop went on after the first
        assert refused.commits == [(1, 4), (2, 8)]
        assert sink.query("SELECT count() AS n FROM turn_events FINAL")[0]["n"] == 8
        assert sample(metrics, "icewatch_processor_uncommitted_batches_total") == 2
        assert sample(metrics, "icewatch_processor_messages_total") == 2
        assert sample(metrics, "icewatch_processor_last_commit_timestamp") == 0

        before = time.time()
        taken = OneAtATime(messages)  # the new owner reads from the last commit: the same two, then one more
        run(taken, sink, metrics)
        assert taken.commits == [(1, 8), (2, 8), (3, 12)]  # the two again change nothing: counted once
        assert sample(metrics, "icewatch_processor_uncommitted_batches_total") == 2
        last = sample(metrics, "icewatch_processor_last_commit_timestamp")
        assert last is not None and before - 1 <= last <= time.time() + 1
    finally:
        sink.close()
