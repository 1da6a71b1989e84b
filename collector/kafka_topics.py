"""Create the configured topics (idempotent) so partition counts are what the settings say."""

from __future__ import annotations

import contextlib

from collector.errors import BrokerUnavailable
from collector.settings import KafkaSettings, Topics


def ensure_topics(kafka: KafkaSettings, topics: Topics, replication: int = 1) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap.split(","), client_id=f"{kafka.client_id}-admin",
                                 request_timeout_ms=int(kafka.ack_timeout_s * 1000))
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka is unreachable at {kafka.bootstrap} ({exc}): check ICEWATCH_KAFKA__BOOTSTRAP "
                                "and that the brokers are up") from exc
    try:
        existing = set(admin.list_topics())
        names = [topics.call_reports, topics.turn_events, topics.probe_results, topics.dead_letters]
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(n, topics.partitions, replication) for n in missing])
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot create topics: {exc}") from exc
    finally:
        admin.close()
