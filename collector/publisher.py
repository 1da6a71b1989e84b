"""Where accepted input goes: the Publisher interface. Kafka is the real implementation
(collector/kafka_publisher.py); the embedded mode writes straight to the store
(processors/service/embedded.py). ``publish`` returns only once every message is durably
acknowledged, or raises ``collector.errors.Unavailable`` (nothing may be assumed written)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from collector.contract import Model


class Publisher(Protocol):
    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        """Durably publish all payloads (dead letters included) or raise Unavailable."""
        ...

    def close(self) -> None: ...


class TurnRowPublisher(Publisher, Protocol):
    """A Publisher that also takes TURN events as rows (``CoturnParser.parse_row``): the file
    tailer uses it when the publisher has it (Kafka), so no object is made per line."""

    def publish_turn_rows(self, rows: Sequence[tuple[Any, ...]], others: Sequence[Model],
                          tenant: str = "default") -> None:
        """Durably publish the rows and the other payloads together, or raise Unavailable."""
        ...
