"""Where rows go: the Sink interface. Implementations: chDB embedded (processors/store/chdb.py)
and the ClickHouse native protocol via clickhouse-driver (processors/store/native.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Row = Mapping[str, Any]


class Sink(Protocol):
    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        """Insert rows into ``table``; return only when ClickHouse acknowledged.

        ``dedup_token`` makes a retried insert of the same batch a no-op (insert_deduplication_token).
        Raises collector.errors.StorageUnavailable when the store cannot be reached, so the caller
        keeps the batch uncommitted and retries.
        """
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT with bound parameters ({name:Type} syntax); rows as dicts."""
        ...

    def execute(self, sql: str) -> None:
        """Run DDL or another statement with no result."""
        ...

    def close(self) -> None: ...
