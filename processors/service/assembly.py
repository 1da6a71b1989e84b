"""Assembly of the processor service from settings: the facts environment and the consumer loops."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from collector.errors import BrokerUnavailable, ConfigError
from collector.inventory import Inventory, load_inventory
from collector.publisher import Publisher
from collector.settings import KafkaSettings, Settings, Topics
from processors.facts.call_facts import FactsEnv
from processors.facts.geo import GeoLocator, MaxMindLocator, NoGeoLocator
from processors.rows.builder import RowBuilder
from processors.service.consumer import ConsumerLoop
from processors.service.metrics import ProcessorMetrics
from processors.store.sink import Sink

log = logging.getLogger(__name__)


def facts_env(settings: Settings) -> FactsEnv:
    """The facts environment of the settings; ConfigError names the variable that is unusable."""
    inventory = Inventory()
    if settings.inventory is not None:
        try:
            inventory = load_inventory(settings.inventory)
        except ConfigError as exc:
            raise ConfigError(f"ICEWATCH_INVENTORY: {exc}") from exc
    geo: GeoLocator = NoGeoLocator()
    if settings.geoip_db is not None:
        try:
            geo = MaxMindLocator(str(settings.geoip_db))
        except ConfigError as exc:
            raise ConfigError(f"ICEWATCH_GEOIP_DB: {exc}") from exc
    return FactsEnv(inventory=inventory, geo=geo, distant_relay_km=settings.distant_relay_km,
                    dtls_stall_ms=settings.dtls_stall_ms)


def make_consumer(kafka: KafkaSettings, topics: Sequence[str], group_id: str, max_poll_records: int) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap.split(","),
            group_id=group_id,
            client_id=f"{kafka.client_id}-processor",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=kafka.max_message_bytes + 64 * 1024,
            isolation_level="read_committed",
            metadata_max_age_ms=10_000,  # a topic whose leader was unknown at assignment is picked up soon
            session_timeout_ms=kafka.session_timeout_ms,  # how long a killed processor's partitions wait
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        )
        # Join the group only once the topics' partitions are known: a join that races the first
        # metadata fetch gets an empty assignment and has to rebalance again.
        for topic in topics:
            consumer.partitions_for_topic(topic)
        consumer.subscribe(list(topics))
        return consumer
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot connect to Kafka at {kafka.bootstrap}: {exc}") from exc


STREAMS = ("call_reports", "turn_events", "probe_results")


def stream_topic(topics: Topics, stream: str) -> str:
    if stream not in STREAMS:
        raise ConfigError(f"unknown stream {stream!r}; one of {', '.join(STREAMS)}")
    return str(getattr(topics, stream))


def build_loop(settings: Settings, sink: Sink, dlq: Publisher | None,
               metrics: ProcessorMetrics | None = None, streams: Sequence[str] = STREAMS) -> ConsumerLoop:
    """A consumer loop over ``streams``. One consumer group per stream (``<group_id>.<stream>``),
    so each input topic scales by its own partitions; pass one stream per process in production."""
    if settings.kafka is None:
        raise ConfigError("ICEWATCH_KAFKA__BOOTSTRAP is not set: a processor consumes from Kafka")
    builder = RowBuilder(facts_env(settings))
    topics = [stream_topic(settings.topics, s) for s in streams]
    group = f"{settings.group_id}.{streams[0]}" if len(streams) == 1 else settings.group_id
    consumer = make_consumer(settings.kafka, topics, group, settings.max_batch_messages)
    return ConsumerLoop(consumer=consumer, sink=sink, row_fn=builder.rows, dlq=dlq,
                        metrics=metrics or ProcessorMetrics(),
                        max_batch_messages=settings.max_batch_messages,
                        max_batch_seconds=settings.max_batch_seconds)
