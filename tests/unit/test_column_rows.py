"""ColumnRows (a table's rows held as columns, what a call's samples are built as) read as the dict
rows they stand for, merge into batches without losing or reordering rows, and the store holds what
the JSON reader makes of the same rows as dicts, on the Arrow path and on the JSON path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.contract import utcnow
from collector.reports import UploadContext, parse_upload
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.rtt import rtt_band
from processors.rows.batch import ColumnRows, Rows, merge_rows
from processors.rows.calls import rows_for_call
from processors.store import chdb as chdb_store
from processors.store.chdb import INSERT_SETTINGS, ChdbSink, encode_rows
from processors.store.migrate import migrate
from tests.bench.workload import w3c_report
from tests.unit.test_chdb_columnar_insert import COLUMNS


def columns_of(rows: list[dict[str, Any]]) -> ColumnRows:
    return ColumnRows({key: [r[key] for r in rows] for key in rows[0]})


ROWS = [{"k": f"r{i}", "n": i, "s": "x" * i} for i in range(5)]


def test_column_rows_read_as_the_dict_rows() -> None:
    cols = columns_of(ROWS)
    assert len(cols) == 5 and list(cols) == ROWS
    assert cols[0] == ROWS[0] and cols[-1] == ROWS[-1] and cols[1:4] == ROWS[1:4] and cols[::-2] == ROWS[::-2]
    with pytest.raises(IndexError):
        cols[5]
    with pytest.raises(IndexError):
        cols[-6]
    assert len(ColumnRows({})) == 0 and not ColumnRows({"k": []})
    with pytest.raises(ValueError, match="lengths"):
        ColumnRows({"k": [1, 2], "n": [1]})


def test_extend_takes_only_the_same_columns_and_changes_nothing_otherwise() -> None:
    cols = columns_of(ROWS[:2])
    cols.extend(columns_of(ROWS[2:3]))
    cols.extend([{"s": "xxx", "k": "r3", "n": 3}])  # same keys in another order
    assert list(cols) == ROWS[:4]
    with pytest.raises(ValueError, match="other columns"):
        cols.extend([ROWS[4], {"k": "r5", "n": 5}])
    with pytest.raises(ValueError, match="other columns"):
        cols.extend([{**ROWS[4], "extra": 1}])
    assert list(cols) == ROWS[:4]  # a refused extend appended nothing


def test_merge_keeps_columns_copies_them_and_falls_back_to_dicts_on_other_keys() -> None:
    first, second = columns_of(ROWS[:2]), columns_of(ROWS[2:4])
    batch: Rows = {}
    merge_rows(batch, {"t": first, "empty": ColumnRows({"k": []})})
    merge_rows(batch, {"t": second})
    merge_rows(batch, {"t": [ROWS[4]]})
    assert "empty" not in batch
    assert isinstance(batch["t"], ColumnRows) and list(batch["t"]) == ROWS
    assert list(first) == ROWS[:2] and list(second) == ROWS[2:4]  # the messages' own rows are not changed
    odd = {"k": "odd", "n": 9}
    merge_rows(batch, {"t": [odd]})
    merge_rows(batch, {"t": columns_of(ROWS[:1])})
    merged: object = batch.get("t")  # (mypy still holds the ColumnRows of the assert above)
    assert type(merged) is list and merged == [*ROWS, odd, ROWS[0]]


@pytest.fixture
def twin_tables(tmp_path: Path) -> Iterator[ChdbSink]:
    s = ChdbSink(tmp_path / "store")
    try:
        for name in ("t", "ref"):
            s.execute(f"CREATE TABLE {name} {COLUMNS} ENGINE = MergeTree ORDER BY k")
        yield s
    finally:
        s.close()


@pytest.mark.parametrize("arrow_min_rows", [1, 10**9])
def test_store_holds_what_json_makes_of_the_same_rows(twin_tables: ChdbSink, arrow_min_rows: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chdb_store, "ARROW_MIN_ROWS", arrow_min_rows)
    t0 = datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC)
    rows = [{"k": f"r{i:04d}", "at": t0 + timedelta(seconds=i), "maybe_at": None if i % 2 else t0,
             "x": None if i % 3 == 0 else i / 4, "f": float("nan") if i == 7 else float(i), "n": i,
             "big": 2**63 - 1 - i, "small": -i, "b": i % 2 == 0, "lc": "relay-udp", "s": "é\u2028\"\\x"}
            for i in range(1200)]
    twin_tables.insert("t", columns_of(rows))
    twin_tables.execute(f"INSERT INTO ref SETTINGS {INSERT_SETTINGS} FORMAT JSONEachRow\n" + encode_rows(rows).decode())
    got = twin_tables.query("SELECT * FROM t ORDER BY k")
    assert got == twin_tables.query("SELECT * FROM ref ORDER BY k") and len(got) == 1200
    # a value Arrow would type otherwise (text for a date) still goes to the JSON reader
    twin_tables.insert("t", columns_of([{"k": "text-date", "at": "2026-01-02T03:04:05Z"}]))
    assert twin_tables.query("SELECT at FROM t WHERE k = 'text-date'") == [{"at": "2026-01-02 03:04:05.000"}]


def expected_sample_rows(report: Any, facts: Any, tenant: str, at: datetime) -> list[dict[str, Any]]:
    """The sample rows as the processor built them before they were columns (one dict per sample)."""
    return [{"tenant": tenant, "call_id": report.call_id, "client_region": facts.client_region,
             "turn_region": facts.turn_region, "path_class": facts.path_class, "ingested_at": at,
             "at": s.start, "duration_s": (s.end - s.start).total_seconds() if s.end is not None else 1.0,
             "rtt_ms": s.rtt_ms, "rtt_source": s.rtt_source or "",
             "rtt_band": rtt_band(s.rtt_ms) if s.rtt_ms is not None else "", "jitter_ms": s.jitter_ms,
             "packets_received": s.packets_received, "packets_lost": s.packets_lost, "bytes_sent": s.bytes_sent,
             "bytes_received": s.bytes_received, "ice_state": s.ice_state or "", "dtls_state": s.dtls_state or ""}
            for s in report.samples]


def test_call_samples_columns_are_the_sample_rows_and_store_as_json_would(tmp_path: Path) -> None:
    env, now = FactsEnv.default(), utcnow()
    reports = [parse_upload(w3c_report(f"call-{i}", 300, seed=i), UploadContext())[0] for i in range(4)]
    sink = ChdbSink(tmp_path / "store")
    try:
        migrate(sink)
        columns: Rows = {}
        dicts: list[dict[str, Any]] = []
        for r in reports:
            facts = derive_call_facts(r, env)
            samples = rows_for_call(r, facts, "cols", now)["call_samples"]
            assert isinstance(samples, ColumnRows)
            assert list(samples) == expected_sample_rows(r, facts, "cols", now)
            merge_rows(columns, {"call_samples": samples})
            dicts.extend(expected_sample_rows(r, facts, "json", now))
        assert isinstance(columns["call_samples"], ColumnRows) and len(columns["call_samples"]) == 1200
        sink.insert("call_samples", columns["call_samples"])  # 1,200 rows: the Arrow path
        sink.execute(f"INSERT INTO call_samples SETTINGS {INSERT_SETTINGS} FORMAT JSONEachRow\n"
                     + encode_rows(dicts).decode())
        query = "SELECT * EXCEPT tenant FROM call_samples WHERE tenant = {t:String} ORDER BY call_id, at"
        got, ref = sink.query(query, {"t": "cols"}), sink.query(query, {"t": "json"})
        assert got == ref and len(got) == 1200
        no_samples = reports[0].model_copy(update={"samples": []})
        assert len(rows_for_call(no_samples, derive_call_facts(no_samples, env), "cols", now)["call_samples"]) == 0
    finally:
        sink.close()
