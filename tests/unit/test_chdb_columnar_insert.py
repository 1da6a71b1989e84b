"""ChdbSink.insert hands chDB Arrow columns when it can and JSON otherwise: either way the store holds
what the JSON reader made of the same rows (the reference: the JSON body inserted by hand into a twin
table), refusals stay refusals, and a retried token is a no-op."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from collector.errors import StoreError
from processors.store import chdb as chdb_store
from processors.store.chdb import INSERT_SETTINGS, ChdbSink, arrow_columns, encode_rows

COLUMNS = """(
    k String,
    at DateTime64(3, 'UTC'),
    maybe_at Nullable(DateTime64(3, 'UTC')),
    x Nullable(Float32),
    f Float64,
    n UInt32,
    big UInt64,
    small Int32,
    b Bool,
    lc LowCardinality(String),
    arr Array(LowCardinality(String)),
    s String
)"""


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChdbSink]:
    monkeypatch.setattr(chdb_store, "ARROW_MIN_ROWS", 1)  # every insert may take the columnar path
    s = ChdbSink(tmp_path / "store")
    try:
        for name in ("t", "ref"):
            s.execute(f"CREATE TABLE {name} {COLUMNS} ENGINE = MergeTree ORDER BY k "
                      "SETTINGS non_replicated_deduplication_window = 100")
        yield s
    finally:
        s.close()


def both(sink: ChdbSink, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sink.insert("t", rows)
    sink.execute(f"INSERT INTO ref SETTINGS {INSERT_SETTINGS} FORMAT JSONEachRow\n" + encode_rows(rows).decode())
    return (sink.query("SELECT * FROM t ORDER BY k"), sink.query("SELECT * FROM ref ORDER BY k"))


def test_typical_rows_take_the_columnar_path_and_store_what_json_stores(sink: ChdbSink) -> None:
    t0 = datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC)
    rows = [{"k": f"r{i:04d}", "at": t0 + timedelta(seconds=i), "maybe_at": None if i % 2 else t0,
             "x": None if i % 3 == 0 else i / 4, "f": float(i), "n": i, "big": 2**63 - 1 - i, "small": -i,
             "b": i % 2 == 0, "lc": "relay-udp", "arr": ["a", "b"][: i % 3], "s": "é\u2028\"\\x"}
            for i in range(1500)]
    assert arrow_columns(rows, {c: "String" for c in rows[0]}) is not None
    got, ref = both(sink, rows)
    assert got == ref
    assert len(got) == 1500 and got[1]["at"] == "2026-11-26 06:00:01.123" and got[1]["maybe_at"] is None
    assert got[3]["big"] == 2**63 - 4 and got[2]["arr"] == ["a", "b"] and got[0]["x"] is None


@pytest.mark.parametrize("rows", [
    # naive datetimes are UTC, another zone is converted
    [{"k": "a", "at": datetime(2026, 1, 1, 12, 0)},
     {"k": "b", "at": datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))}],
    # NaN is NULL (orjson writes null), NULL in non-Nullable columns is the default
    [{"k": "a", "at": datetime(2026, 1, 1), "x": float("nan"), "n": None, "b": None, "arr": None, "lc": None}],
    # only empty arrays; a column nobody fills
    [{"k": "a", "at": datetime(2026, 1, 1), "arr": []}, {"k": "b", "at": datetime(2026, 1, 1), "arr": []}],
    # rows with different keys
    [{"k": "a", "at": datetime(2026, 1, 1), "n": 3}, {"k": "b", "at": datetime(2026, 1, 1), "s": "x"}],
    # the JSON path: text for a date (best effort), mixed types, beyond Int64, NULL inside an array, objects
    [{"k": "a", "at": "2026-01-02T03:04:05Z", "maybe_at": "2026-01-02 03:04:05"}],
    [{"k": "a", "at": datetime(2026, 1, 1), "s": 5}, {"k": "b", "at": datetime(2026, 1, 1), "s": "five"}],
    [{"k": "a", "at": datetime(2026, 1, 1), "big": 2**64 - 1}],
    [{"k": "a", "at": datetime(2026, 1, 1), "arr": ["x", None]}],
    [{"k": "a", "at": datetime(2026, 1, 1), "s": 1.5, "f": 2}],
])
def test_edge_rows_store_what_json_stores(sink: ChdbSink, rows: list[dict[str, Any]]) -> None:
    got, ref = both(sink, rows)
    assert got == ref and len(got) == len(rows)


def test_json_only_values_are_left_to_the_json_reader() -> None:
    types = {"k": "String", "at": "DateTime64(3, 'UTC')", "big": "UInt64", "s": "String", "o": "String"}
    assert arrow_columns([{"k": "a", "at": "2026-01-02T03:04:05Z"}], types) is None
    assert arrow_columns([{"k": "a", "big": 2**64 - 1}], types) is None
    assert arrow_columns([{"k": "a", "s": 1}, {"k": "b", "s": "x"}], types) is None
    assert arrow_columns([{"k": "a", "o": {"nested": 1}}], types) is None
    assert arrow_columns([{"k": "a", "unknown": 1}], types) is None


def test_refusals_stay_refusals(sink: ChdbSink) -> None:
    with pytest.raises(StoreError, match="nope"):
        sink.insert("t", [{"k": "a", "at": datetime(2026, 1, 1), "nope": 1}])
    with pytest.raises(StoreError):
        sink.insert("missing_table", [{"k": "a"}])
    assert sink.query("SELECT count() AS n FROM t") == [{"n": 0}]


def test_a_retried_token_is_a_no_op_and_ddl_is_seen(sink: ChdbSink) -> None:
    rows = [{"k": f"r{i}", "at": datetime(2026, 1, 1, tzinfo=UTC), "n": i} for i in range(100)]
    sink.insert("t", rows, dedup_token="batch-1")
    sink.insert("t", rows, dedup_token="batch-1")
    assert sink.query("SELECT count() AS c, sum(n) AS s FROM t") == [{"c": 100, "s": 4950}]
    sink.execute("ALTER TABLE t ADD COLUMN extra UInt8 DEFAULT 7")
    sink.insert("t", [{"k": "z", "at": datetime(2026, 1, 1), "extra": 9}])
    assert sink.query("SELECT extra FROM t WHERE k = 'z'") == [{"extra": 9}]


def test_small_inserts_go_as_json_where_arrow_costs_more(sink: ChdbSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chdb_store, "ARROW_MIN_ROWS", 1000)  # the rule, at a test size
    seen: list[bool] = []
    real = chdb_store.arrow_columns

    def counted(rows: Any, types: Any) -> Any:
        seen.append(True)
        return real(rows, types)

    monkeypatch.setattr(chdb_store, "arrow_columns", counted)
    rows = [{"k": f"r{i:04d}", "at": datetime(2026, 1, 1, tzinfo=UTC)} for i in range(1000)]
    sink.insert("t", rows[:999])
    assert seen == []
    sink.insert("t", rows, dedup_token="big")
    assert seen == [True]
    assert sink.query("SELECT count() AS c, uniqExact(k) AS u FROM t") == [{"c": 1999, "u": 1000}]
