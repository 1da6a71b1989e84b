"""NativeSink.query_table (the dashboard pages' query) against Debian's clickhouse-server: column
types, query-level settings, and values the pages turn into JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.errors import StorageUnavailable
from dashboards.pages.data import QUERY_SETTINGS, table_json
from processors.store.native import NativeSink
from tests.services import ClickHouseServerService

pytestmark = pytest.mark.clickhouse_server


@pytest.fixture
def sink(clickhouse_server: ClickHouseServerService) -> Iterator[NativeSink]:
    s = NativeSink(host=clickhouse_server.host, port=clickhouse_server.port, connect_timeout=2.0,
                   send_receive_timeout=20.0, sync_request_timeout=2.0)
    yield s
    s.close()


def test_rows_come_with_their_types_and_settings_bound_the_work(sink: NativeSink) -> None:
    table = sink.query_table("SELECT toUInt64(number) AS n, toString(number) AS s, "
                             "toDateTime('2026-11-26 04:00:00', 'UTC') AS t, nan AS f FROM system.numbers LIMIT 3",
                             QUERY_SETTINGS)
    assert table.columns == [("n", "UInt64"), ("s", "String"), ("t", "DateTime('UTC')"), ("f", "Float64")]
    doc = table_json(table)
    assert doc["rows"][0] == [0, "0", "2026-11-26T04:00:00Z", None]
    many = sink.query_table("SELECT number FROM system.numbers LIMIT 1000000", QUERY_SETTINGS)
    assert 5000 <= len(many.rows) < 1000000  # result_overflow_mode = 'break': stopped at the block
    assert len(table_json(many)["rows"]) == 5000
    with pytest.raises(StorageUnavailable):  # TIMEOUT_EXCEEDED is "not now"
        sink.query_table("SELECT count() FROM system.numbers", {**QUERY_SETTINGS, "max_execution_time": 1})
    assert sink.query_table("SELECT 1 AS one", QUERY_SETTINGS).rows == [[1]]  # the connection is usable again
