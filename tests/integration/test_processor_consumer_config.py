"""The processor's Kafka consumer, built from the settings against the real broker, carries
ICEWATCH_KAFKA__SESSION_TIMEOUT_MS and the heartbeat derived from it into the group coordinator
(what its JoinGroup requests and heartbeats use), and joins the group with them."""

from __future__ import annotations

import time
import uuid

import pytest

from collector.settings import load_settings
from processors.service.assembly import make_consumer
from tests.services import KafkaService

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize(("env_value", "session", "heartbeat"), [(None, 45_000, 3000), ("6000", 6000, 2000)])
def test_consumer_joins_with_the_configured_session_timeout(kafka: KafkaService, monkeypatch: pytest.MonkeyPatch,
                                                             env_value: str | None, session: int,
                                                             heartbeat: int) -> None:
    topic = f"cfg-{uuid.uuid4().hex[:8]}"
    kafka.create_topic(topic, partitions=2)
    monkeypatch.setenv("ICEWATCH_KAFKA__BOOTSTRAP", kafka.bootstrap)
    if env_value is None:
        monkeypatch.delenv("ICEWATCH_KAFKA__SESSION_TIMEOUT_MS", raising=False)
    else:
        monkeypatch.setenv("ICEWATCH_KAFKA__SESSION_TIMEOUT_MS", env_value)
    settings = load_settings()
    assert settings.kafka is not None
    consumer = make_consumer(settings.kafka, [topic], f"g-{uuid.uuid4().hex[:8]}", 100)
    try:
        assert consumer.config["session_timeout_ms"] == session
        assert consumer.config["heartbeat_interval_ms"] == heartbeat
        coordinator = consumer._coordinator  # what JoinGroup and the heartbeat thread read
        assert coordinator.config["session_timeout_ms"] == session
        assert coordinator.heartbeat.config["session_timeout_ms"] == session
        assert coordinator.heartbeat.config["heartbeat_interval_ms"] == heartbeat
        # The broker (group.min.session.timeout.ms 1000 here) accepts the join: both partitions come.
        deadline = time.monotonic() + 60
        while len(consumer.assignment()) < 2:
            assert time.monotonic() < deadline, "the consumer was not assigned the topic's partitions"
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close(autocommit=False)
