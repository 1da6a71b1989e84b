"""Publisher on Kafka: acks=all, idempotent producer, waits for every acknowledgement. TURN events
go out many to a message (``turn_event_batch``, collector/turn/batch_wire.py): one producer call
per batch of lines instead of one per line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from collector.contract import DeadLetter, Model, TurnEvent, TurnEventBatch, message_key, schema_of
from collector.errors import BrokerUnavailable, PayloadTooLarge
from collector.settings import KafkaSettings, Topics
from collector.turn.batch_wire import encode_turn_batches, encode_turn_rows
from collector.turn.coturn import TurnRow
from collector.wire import encode

log = logging.getLogger(__name__)


class KafkaPublisher:
    def __init__(self, kafka: KafkaSettings, topics: Topics, source_host: str) -> None:
        self._kafka = kafka
        self._topics = topics
        self._source_host = source_host
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get_producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer
                from kafka.errors import KafkaError

                try:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self._kafka.bootstrap.split(","),
                        client_id=self._kafka.client_id,
                        acks="all",
                        enable_idempotence=True,
                        compression_type=self._kafka.compression,
                        max_request_size=self._kafka.max_message_bytes + 64 * 1024,
                        linger_ms=2,
                        max_block_ms=int(self._kafka.ack_timeout_s * 1000),
                        request_timeout_ms=int(self._kafka.ack_timeout_s * 1000),
                        delivery_timeout_ms=int(self._kafka.ack_timeout_s * 1000) + 2000,
                        retries=2**31 - 1,
                    )
                except KafkaError as exc:
                    raise BrokerUnavailable(f"Kafka is unreachable at {self._kafka.bootstrap}: {exc}") from exc
            return self._producer

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        turn: list[TurnEvent] = []
        others: list[Model] = []
        for p in payloads:
            if isinstance(p, TurnEvent):
                turn.append(p)
            elif isinstance(p, TurnEventBatch):
                turn.extend(p.events)
            else:
                others.append(p)
        encoded = self._encode(others, tenant)
        if turn:
            batches = encode_turn_batches(turn, source_host=self._source_host, tenant=tenant,
                                          max_bytes=self._kafka.max_message_bytes)
            encoded.extend((self._topics.turn_events, key.encode(), value) for key, value, _ in batches)
        self._send(encoded)

    def publish_turn_rows(self, rows: Sequence[TurnRow], others: Sequence[Model], tenant: str = "default") -> None:
        """``publish`` for TURN events already made rows (``CoturnParser.parse_row``) plus other
        payloads (the tailer's dead letters): the same messages, without an object per line."""
        encoded = self._encode(others, tenant)
        if rows:
            batches = encode_turn_rows(rows, source_host=self._source_host, tenant=tenant,
                                       max_bytes=self._kafka.max_message_bytes)
            encoded.extend((self._topics.turn_events, key.encode(), value) for key, value, _ in batches)
        self._send(encoded)

    def _encode(self, payloads: Sequence[Model], tenant: str) -> list[tuple[str, bytes | None, bytes]]:
        encoded: list[tuple[str, bytes | None, bytes]] = []
        for p in payloads:
            value = encode(p, source_host=self._source_host, tenant=tenant)
            if len(value) > self._kafka.max_message_bytes:
                if isinstance(p, DeadLetter):
                    value = encode(_shrink(p, len(value) - self._kafka.max_message_bytes),
                                   source_host=self._source_host, tenant=tenant)
                else:
                    raise PayloadTooLarge(
                        f"one {schema_of(p)} is {len(value)} bytes after normalization; the limit is "
                        f"{self._kafka.max_message_bytes} (send it in smaller segments)"
                    )
            key = message_key(p)
            encoded.append((self._topics.for_schema(schema_of(p)), key.encode() if key else None, value))
        return encoded

    def _send(self, encoded: list[tuple[str, bytes | None, bytes]]) -> None:
        from kafka.errors import KafkaError

        producer = self._get_producer()
        try:
            futures = [producer.send(topic, key=key, value=value) for topic, key, value in encoded]
            producer.flush(timeout=self._kafka.ack_timeout_s)
            for f in futures:
                f.get(timeout=self._kafka.ack_timeout_s)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


def _shrink(dl: DeadLetter, excess: int) -> DeadLetter:
    keep = max(0, len(dl.raw) - excess - 1024)
    return dl.model_copy(update={"raw": dl.raw[:keep], "raw_truncated": True})
