"""A consumed Kafka record as the consumer loop reads it (topic, partition, offset, value), for
tests that hand records to processors.service.consumer without a broker."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    value: bytes
