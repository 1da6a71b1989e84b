"""Sink on a ClickHouse server over the native protocol (clickhouse-driver).

Failure handling: a connection-level failure (refused, reset, closed, timed out, server shutting
down) raises ``StorageUnavailable`` and drops the connection; the caller keeps the batch
uncommitted and calls ``insert`` again with the same rows, which reconnects. Any other server
error (bad SQL, unknown table, wrong type) raises ``StoreError``: retrying would fail again.

Deduplication: ``insert_deduplication_token`` exists only on newer servers (22.x and later), and
clickhouse-driver silently drops settings an old server does not know. So after each connect the
sink asks the server (``system.settings``) whether the setting exists, and sends the token only
then. Debian's clickhouse-server 18.16 does not have it: there a retried batch is only safe when
the failed attempt never reached the server (the usual case for refused/closed connections), and
``dedup_supported`` is False so callers can tell.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import NetworkError, ServerException, UnexpectedPacketFromServerError

from collector.errors import StorageUnavailable, StoreError
from processors.store.sink import Row, Table

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[^{}]+\}")

# Server error codes that mean "not now" rather than "never": timeouts, the server shutting down
# or cancelling, overload. Everything else from the server is a bug in the statement.
_TRANSIENT_SERVER_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED (server shutdown)
        252,  # TOO_MANY_PARTS
        394,  # QUERY_WAS_CANCELLED
    }
)


def quote_table(name: str) -> str:
    """``db.table`` or ``table`` -> backquoted identifiers; anything else is refused."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(f"not a valid table name: {name!r}")
    return ".".join(f"`{p}`" for p in parts)


def to_pyformat(sql: str) -> str:
    """Rewrite ``{name:Type}`` placeholders to clickhouse-driver's client-side ``%(name)s``."""
    return _PARAM.sub(lambda m: f"%({m.group(1)})s", sql.replace("%", "%%"))


def is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, NetworkError | UnexpectedPacketFromServerError | EOFError | OSError):
        return True
    return isinstance(exc, ServerException) and exc.code in _TRANSIENT_SERVER_CODES


class NativeSink:
    """Sink on a ClickHouse server via clickhouse-driver; one connection, used under a lock."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9000,
        database: str = "default",
        user: str = "default",
        password: str = "",
        connect_timeout: float = 5.0,
        send_receive_timeout: float = 30.0,
        sync_request_timeout: float = 5.0,
    ) -> None:
        self.host, self.port, self.database = host, port, database
        self._lock = threading.Lock()
        self._client = Client(
            host=host,
            port=port,
            database=database,
            user=user,
            password=password,
            connect_timeout=connect_timeout,
            send_receive_timeout=send_receive_timeout,
            sync_request_timeout=sync_request_timeout,
        )
        self._dedup_supported: bool | None = None
        self.server_version: tuple[int, ...] | None = None

    @property
    def dedup_supported(self) -> bool | None:
        """Whether the server knows ``insert_deduplication_token`` (None until first connect)."""
        return self._dedup_supported

    def _run(self, sql: str, params: Any = None, settings: Mapping[str, Any] | None = None) -> Any:
        try:
            return self._client.execute(sql, params, settings=dict(settings or {}), with_column_types=True)
        except DriverError as exc:
            if is_connection_failure(exc):
                raise self._unavailable(exc) from exc
            raise StoreError(str(exc)) from exc
        except (EOFError, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StorageUnavailable:
        self._client.disconnect()
        self._dedup_supported = None
        where = f"{self.host}:{self.port}"
        return StorageUnavailable(
            f"ClickHouse at {where} did not acknowledge ({type(exc).__name__}: {exc}); "
            "keep the batch uncommitted and retry it",
            retry_after=1.0,
        )

    def _probe_server(self) -> bool:
        """Connect if needed and learn whether the server supports insert deduplication tokens."""
        if self._dedup_supported is None:
            rows, _ = self._run("SELECT count() FROM system.settings WHERE name = 'insert_deduplication_token'")
            info = self._client.connection.server_info
            self.server_version = info.version_tuple() if info is not None else None
            self._dedup_supported = bool(rows[0][0])
        return self._dedup_supported

    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        if not rows:
            return
        columns = list(rows[0].keys())
        sql = f"INSERT INTO {quote_table(table)} ({', '.join(f'`{c}`' for c in columns)}) VALUES"
        data = [tuple(row[c] for c in columns) for row in rows]
        with self._lock:
            settings: dict[str, Any] = {}
            if dedup_token is not None and self._probe_server():
                settings["insert_deduplication_token"] = dedup_token
                settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
            self._run(sql, data, settings)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if params:
                rows, columns = self._run(to_pyformat(sql), dict(params))
            else:
                rows, columns = self._run(sql)
        names = [name for name, _ in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        with self._lock:
            rows, columns = self._run(sql, None, settings)
        return Table([(str(name), str(ctype)) for name, ctype in columns], [list(r) for r in rows])

    def execute(self, sql: str) -> None:
        with self._lock:
            self._run(sql)

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()
