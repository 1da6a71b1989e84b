"""NativeSink against Debian's clickhouse-server 18.16: batch inserts that survive a server restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from collector.errors import StorageUnavailable
from processors.rows.batch import ColumnRows
from processors.store.native import NativeSink
from processors.store.sink import Row
from tests.services import ClickHouseServerService, free_ports

pytestmark = pytest.mark.clickhouse_server


@pytest.fixture
def sink(clickhouse_server: ClickHouseServerService) -> Iterator[NativeSink]:
    s = NativeSink(
        host=clickhouse_server.host,
        port=clickhouse_server.port,
        connect_timeout=2.0,
        send_receive_timeout=10.0,
        sync_request_timeout=2.0,
    )
    yield s
    s.close()


@pytest.fixture
def table(sink: NativeSink) -> str:
    name = f"native_sink_{uuid.uuid4().hex[:8]}"
    sink.execute(
        f"CREATE TABLE {name} (id UInt64, batch UInt32, payload String, at DateTime) ENGINE = MergeTree ORDER BY id"
    )
    return name


def make_batch(batch: int, size: int) -> list[Row]:
    at = int(time.time())
    return [{"id": batch * size + i, "batch": batch, "payload": f"call-{batch}-{i}", "at": at} for i in range(size)]


def insert_until_acknowledged(sink: NativeSink, table: str, rows: list[Row], token: str, timeout: float = 30) -> int:
    """The consumer's retry loop: same batch, same token, until ClickHouse acknowledges."""
    failures = 0
    deadline = time.monotonic() + timeout
    while True:
        try:
            sink.insert(table, rows, dedup_token=token)
            return failures
        except StorageUnavailable:
            failures += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_server_is_18_16_without_dedup_tokens(sink: NativeSink, table: str) -> None:
    sink.insert(table, make_batch(0, 3), dedup_token="t-0")
    assert sink.server_version is not None and sink.server_version[:2] == (18, 16)
    assert sink.dedup_supported is False
    assert sink.query(f"SELECT count() AS n FROM {table}") == [{"n": 3}]


def test_query_binds_parameters(sink: NativeSink, table: str) -> None:
    sink.insert(table, make_batch(0, 10))
    got = sink.query(
        f"SELECT id, payload FROM {table} WHERE batch = {{b:UInt32}} AND id >= {{low:UInt64}} ORDER BY id",
        {"b": 0, "low": 8},
    )
    assert got == [{"id": 8, "payload": "call-0-8"}, {"id": 9, "payload": "call-0-9"}]


def test_column_rows_are_inserted_as_the_dict_rows_they_hold(sink: NativeSink, table: str) -> None:
    rows = make_batch(7, 50)
    sink.insert(table, ColumnRows({key: [r[key] for r in rows] for key in rows[0]}))
    got = sink.query(f"SELECT id, batch, payload, toUnixTimestamp(at) AS at FROM {table} ORDER BY id")
    assert got == rows


def test_refused_connection_is_storage_unavailable() -> None:
    (port,) = free_ports(1)
    sink = NativeSink(port=port, connect_timeout=1.0)
    with pytest.raises(StorageUnavailable):
        sink.insert("t", [{"id": 1}])
    with pytest.raises(StorageUnavailable):
        sink.query("SELECT 1")


def test_batches_survive_server_restarts_exactly_once(
    clickhouse_server: ClickHouseServerService, sink: NativeSink, table: str
) -> None:
    size, batches = 500, 12
    for b in range(batches):
        rows = make_batch(b, size)
        token = f"{table}:0:{b * size}-{(b + 1) * size - 1}"
        if b == 4:
            # Server down: the insert fails with StorageUnavailable and nothing is written.
            clickhouse_server.stop()
            with pytest.raises(StorageUnavailable):
                sink.insert(table, rows, dedup_token=token)
            clickhouse_server.start()
            insert_until_acknowledged(sink, table, rows, token)
        elif b == 8:
            # Restart between two inserts: the sink's connection is stale; the next insert
            # reconnects (possibly after one StorageUnavailable) and the batch lands once.
            clickhouse_server.restart()
            insert_until_acknowledged(sink, table, rows, token)
        else:
            sink.insert(table, rows, dedup_token=token)

    total = size * batches
    [stats] = sink.query(f"SELECT count() AS n, uniqExact(id) AS u, min(id) AS lo, max(id) AS hi FROM {table}")
    assert stats == {"n": total, "u": total, "lo": 0, "hi": total - 1}
    per_batch = sink.query(f"SELECT batch, count() AS n FROM {table} GROUP BY batch ORDER BY batch")
    assert per_batch == [{"batch": b, "n": size} for b in range(batches)]
