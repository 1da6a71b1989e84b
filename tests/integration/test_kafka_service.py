"""The real Kafka broker from deploy/local/kafka.sh, driven through kafka-python."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.services import KafkaService

pytestmark = pytest.mark.kafka


def _produce(kafka: KafkaService, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True)
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in messages]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)  # raises if the broker did not acknowledge
    finally:
        producer.close(timeout=10)


def _consume_all(kafka: KafkaService, topic: str, expected: int, group: str) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20_000,
    )
    try:
        got: list[tuple[bytes, bytes]] = []
        for record in consumer:
            got.append((record.key, record.value))
            if len(got) >= expected:
                break
        consumer.commit()
        return got
    finally:
        consumer.close()


def test_produce_idempotent_acks_all_and_consume_back(kafka: KafkaService) -> None:
    topic = f"svc-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, partitions=3)
    sent = [(f"call-{i % 7}".encode(), f"report-{i}".encode()) for i in range(200)]

    _produce(kafka, topic, sent)
    got = _consume_all(kafka, topic, len(sent), group=f"g-{topic}")

    assert sorted(got) == sorted(sent)
    # Per key, order is kept (one key -> one partition).
    for key in {k for k, _ in sent}:
        assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]


def test_broker_restart_keeps_data_and_committed_offsets(kafka: KafkaService) -> None:
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    kafka.create_topic(topic, partitions=2)
    first = [(b"k%d" % i, b"before-%d" % i) for i in range(50)]
    _produce(kafka, topic, first)
    assert sorted(_consume_all(kafka, topic, len(first), group)) == sorted(first)
    old_pid = kafka.pid

    kafka.restart()

    assert kafka.pid != old_pid
    # Everything written before the restart is still there for a fresh reader...
    reader = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in (0, 1)]
        ends = reader.end_offsets(parts)
        assert sum(ends.values()) == len(first)
    finally:
        reader.close()
    # ...and the group resumes after its committed offsets, seeing only new messages.
    second = [(b"k%d" % i, b"after-%d" % i) for i in range(20)]
    _produce(kafka, topic, second)
    assert sorted(_consume_all(kafka, topic, len(second), group)) == sorted(second)
