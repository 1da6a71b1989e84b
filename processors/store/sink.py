"""Where rows go: the Sink interface. Implementations: chDB embedded (processors/store/chdb.py)
and the ClickHouse native protocol via clickhouse-driver (processors/store/native.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Table:
    """A result with its column types: ``columns`` as (name, ClickHouse type), ``rows`` in that order."""

    columns: list[tuple[str, str]]
    rows: list[list[Any]]


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

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        """Run one SELECT (no bound parameters, no SETTINGS or FORMAT clause of its own) under
        ``settings`` (query-level ClickHouse settings, e.g. max_execution_time); the rows with their
        column names and types. Values are what the implementation decodes: the embedded store gives
        dates and datetimes as text in the column's time zone (UTC unless the type names one)."""
        ...

    def execute(self, sql: str) -> None:
        """Run DDL or another statement with no result."""
        ...

    def close(self) -> None: ...
