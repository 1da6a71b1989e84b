"""Read-only SQL (processors/store/readonly_sql.py) on the real schema in the real engine (chDB):
refusals leave the store as it was, every limit stops a statement with its name, the shared
session's settings never change, and a tenant sees its own rows only, in tables, rollups and views."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.errors import InvalidInput, NotPermitted, StoreError
from collector.settings import SqlLimits
from processors.store.chdb import ChdbSink
from processors.store.readonly_sql import _settings, run_readonly

LIMITS = SqlLimits()


def seed(store: ChdbSink) -> None:
    """Two tenants with one call, one TURN event and one probe each (the rollups fill from them)."""
    now = datetime.now(UTC)
    for tenant in ("a", "b"):
        store.insert("calls", [{
            "tenant": tenant, "call_id": f"call-{tenant}", "segment": 0, "report_id": f"r-{tenant}",
            "event_time": now, "ingested_at": now, "source_format": "w3c", "path_class": "relay-udp",
            "relay_protocol": "udp", "client_region": "eu", "turn_region": "eu", "relay_distance_km": 100.0,
            "rtt_median_ms": 40.0, "ice_connected": True,
        }])
        store.insert("turn_events", [{
            "tenant": tenant, "event_id": f"e-{tenant}", "server_id": "turn-1", "region": "eu", "process_key": "p",
            "session_id": f"s-{tenant}", "at": now, "kind": "request", "method": "ALLOCATE", "success": True,
            "is_alloc_ok": 1, "raw": "x",
        }])
        store.insert("probes", [{
            "tenant": tenant, "probe_id": f"p-{tenant}", "at": now, "server_id": "turn-1", "region": "eu",
            "vantage": "v", "kind": "stun_binding", "transport": "udp", "target": "t:3478", "success": True,
            "ingested_at": now,
        }])


def snapshot(store: ChdbSink) -> dict[str, Any]:
    """What the store holds: its tables and their row counts, and the session's settings."""
    tables = [r["name"] for r in store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT IN ('View', "
        "'MaterializedView') ORDER BY name")]
    counts = {t: store.query(f"SELECT count() AS n FROM {t}")[0]["n"] for t in tables}
    session = store.query("SELECT getSetting('readonly') AS ro, getSetting('max_result_rows') AS mrr, "
                          "getSetting('additional_table_filters') AS atf")[0]
    return {"tables": tables, "counts": counts, "session": session}


def test_a_select_runs_and_keeps_its_order_and_columns(store: ChdbSink) -> None:
    seed(store)
    result = run_readonly(store, "SELECT call_id, tenant FROM calls FINAL ORDER BY call_id DESC;", LIMITS)
    assert result.columns == ["call_id", "tenant"]
    assert result.rows == [{"call_id": "call-b", "tenant": "b"}, {"call_id": "call-a", "tenant": "a"}]
    with_cte = "WITH t AS (SELECT tenant FROM calls) SELECT count() AS n FROM t UNION ALL SELECT 7"
    assert sorted(r["n"] for r in run_readonly(store, with_cte, LIMITS).rows) == [2, 7]


REFUSED = [
    ("INSERT INTO calls (tenant, call_id) VALUES ('x', 'y')", "INSERT statements are refused"),
    ("INSERT INTO calls SELECT * FROM calls", "INSERT statements are refused"),
    ("ALTER TABLE calls DELETE WHERE 1", "ALTER statements are refused"),
    ("DROP TABLE calls", "DROP / DETACH statements are refused"),
    ("TRUNCATE TABLE calls", "TRUNCATE statements are refused"),
    ("CREATE TABLE x (a UInt8) ENGINE = Memory", "CREATE / ATTACH statements are refused"),
    ("CREATE VIEW x AS SELECT 1", "CREATE / ATTACH statements are refused"),
    ("SET readonly = 0", "SET statements are refused"),
    ("OPTIMIZE TABLE calls FINAL", "OPTIMIZE statements are refused"),
    ("SELECT 1; DROP TABLE calls", "one statement only"),
    ("SELECT 1; INSERT INTO calls (tenant, call_id) VALUES ('x', 'y')", "one statement only"),
    ("SELECT 1 SETTINGS readonly = 0", "SETTINGS clauses are refused"),
    ("SELECT number FROM numbers(10) SETTINGS max_result_rows = 1000000000", "SETTINGS clauses are refused"),
    ("SELECT * FROM (SELECT * FROM calls SETTINGS additional_table_filters = {})", "SETTINGS clauses are refused"),
    ("SELECT 1 FORMAT CSV", "FORMAT and INTO OUTFILE clauses are refused"),
    ("SELECT file('/etc/hostname')", r"function file\(\) is refused"),
    ("SELECT * FROM merge(currentDatabase(), '^calls$')", r"table function merge\(\) is refused"),
    ("SELECT * FROM url('http://127.0.0.1:9/x', 'CSV')", r"table function url\(\) is refused"),
    ("SELECT * FROM file('/etc/hostname', 'LineAsString')", r"table function file\(\) is refused"),
    ("SELEC 1", "code 62"),
    ("   ;  ", "no SQL statement given"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED, ids=[s[:40] for s, _ in REFUSED])
def test_anything_but_one_plain_select_is_refused_and_the_store_is_unchanged(
        store: ChdbSink, sql: str, message: str) -> None:
    seed(store)
    before = snapshot(store)
    with pytest.raises(InvalidInput, match=message):
        run_readonly(store, sql, LIMITS)
    assert snapshot(store) == before
    assert before["counts"]["calls"] == 2 and "calls" in before["tables"]


def test_into_outfile_is_refused_and_writes_no_file(store: ChdbSink, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(InvalidInput, match="INTO OUTFILE"):
        run_readonly(store, f"SELECT 1 INTO OUTFILE '{target}'", LIMITS)
    assert not target.exists()


def test_the_engine_itself_refuses_writes_and_setting_changes_under_the_clause(store: ChdbSink) -> None:
    """What ClickHouse does with the per-query clause this module writes (the checks above never let
    such a statement through; this is the engine's own refusal behind them)."""
    seed(store)
    clause = _settings(LIMITS, None)
    with pytest.raises(StoreError, match=r"Code: 164.*readonly"):
        store.execute(f"INSERT INTO calls (tenant, call_id) {clause} VALUES ('x', 'y')")
    # readonly = 1 comes last in the clause: a limit raised after it is refused by the engine
    with pytest.raises(StoreError, match=r"Code: 164.*Cannot modify 'max_result_rows' setting in readonly mode"):
        store.query(f"SELECT number FROM numbers(10) {clause}, max_result_rows = 1000000000")
    assert store.query("SELECT count() AS n FROM calls")[0]["n"] == 2
    # the clause is per query: the shared session (the pipeline's inserts) is not read-only afterwards
    assert store.query("SELECT getSetting('readonly') AS ro")[0]["ro"] == 0
    store.insert("calls", [{"tenant": "c", "call_id": "after", "segment": 0, "report_id": "r",
                            "event_time": datetime.now(UTC), "ingested_at": datetime.now(UTC),
                            "source_format": "w3c"}])
    assert store.query("SELECT count() AS n FROM calls")[0]["n"] == 3


def test_the_shared_sessions_settings_are_untouched(store: ChdbSink) -> None:
    seed(store)
    before = snapshot(store)
    run_readonly(store, "SELECT count() FROM calls", SqlLimits(max_result_rows=5), tenant="a")
    with pytest.raises(InvalidInput):
        run_readonly(store, "SELECT number FROM numbers(100)", SqlLimits(max_result_rows=5))
    assert snapshot(store) == before
    assert len(store.query("SELECT number FROM numbers(100)")) == 100  # the session has no result limit


@pytest.mark.parametrize(("limits", "sql", "message"), [
    (SqlLimits(max_result_rows=100), "SELECT number FROM numbers(1000)", r"max_result_rows \(100\) exceeded"),
    (SqlLimits(max_result_bytes=10_000), "SELECT repeat(toString(number), 1000) AS s FROM numbers(100)",
     r"max_result_bytes \(10000\) exceeded"),
    (SqlLimits(max_rows_to_read=1000), "SELECT count() FROM numbers(100000)", r"max_rows_to_read \(1000\) exceeded"),
    (SqlLimits(max_bytes_to_read=4096, max_rows_to_read=10**9), "SELECT count() FROM numbers(100000)",
     r"max_bytes_to_read \(4096\) exceeded"),
    (SqlLimits(max_execution_time_s=1, max_rows_to_read=10**12, max_bytes_to_read=10**13),
     "SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))",
     r"max_execution_time \(1 s\) exceeded"),
    (SqlLimits(max_sql_bytes=64), "SELECT 1 -- " + "x" * 100, r"at most max_sql_bytes \(64\)"),
    (SqlLimits(max_output_bytes=1024), "SELECT repeat('x', 2000) AS s", r"max_output_bytes \(1024\) exceeded"),
], ids=["result-rows", "result-bytes", "rows-read", "bytes-read", "time", "sql-text", "output"])
def test_a_statement_over_a_limit_stops_with_the_limit_named(
        store: ChdbSink, limits: SqlLimits, sql: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        run_readonly(store, sql, limits)


def test_limits_hold_on_the_stores_tables(store: ChdbSink) -> None:
    seed(store)
    with pytest.raises(InvalidInput, match=r"max_result_rows \(1\) exceeded"):
        run_readonly(store, "SELECT call_id FROM calls", SqlLimits(max_result_rows=1))


def test_a_statement_stopped_by_a_limit_leaves_nothing_for_the_sessions_next_query(store: ChdbSink) -> None:
    """chDB 4.4 gave the rows a failed query had written (the first of two parts of calls) to the
    session's next query, which is the pipeline's; ChdbSink drains them under its lock."""
    seed(store)  # one part per insert: the result limit trips on the second block
    with pytest.raises(InvalidInput, match="max_result_rows"):
        run_readonly(store, "SELECT call_id FROM calls", SqlLimits(max_result_rows=1))
    assert store.query("SELECT 42 AS v") == [{"v": 42}]


TENANT_READS = [
    "SELECT tenant FROM calls",
    "SELECT tenant FROM calls FINAL WHERE tenant = 'b' OR 1",
    "SELECT tenant FROM default.calls",
    "SELECT tenant FROM turn_events",
    "SELECT tenant FROM probes",
    "SELECT tenant FROM call_minute",
    "SELECT tenant FROM turn_server_minute",
    "SELECT tenant FROM probe_minute",
    "SELECT tenant FROM relay_usage_daily",
    "SELECT tenant FROM relay_distance_daily",
    "SELECT b.tenant AS tenant FROM calls AS a FULL OUTER JOIN calls AS b USING call_id WHERE b.tenant != ''",
    "SELECT tenant FROM calls WHERE call_id IN (SELECT call_id FROM calls WHERE tenant = 'b') OR 1",
    "WITH x AS (SELECT * FROM turn_events) SELECT tenant FROM x",
    "SELECT arrayJoin((SELECT groupArray(tenant) FROM calls)) AS tenant",
]


@pytest.mark.parametrize("sql", TENANT_READS)
def test_a_tenant_sees_its_own_rows_only_in_tables_rollups_and_views(store: ChdbSink, sql: str) -> None:
    seed(store)
    everyone = {r["tenant"] for r in run_readonly(store, sql, LIMITS).rows}
    assert everyone == {"a", "b"}, "the seed must give both tenants rows here"
    for tenant in ("a", "b"):
        assert {r["tenant"] for r in run_readonly(store, sql, LIMITS, tenant=tenant).rows} == {tenant}


@pytest.mark.parametrize("sql", [
    "SELECT count() FROM system.tables",
    "SELECT * FROM system.columns",
    "SELECT * FROM schema_migrations",
    "SELECT tenant FROM call_minute_mv",
    "SELECT 1 FROM calls WHERE call_id IN (SELECT name FROM system.tables)",
])
def test_a_tenant_may_not_read_tables_without_a_tenant_column(store: ChdbSink, sql: str) -> None:
    seed(store)
    run_readonly(store, sql, LIMITS)  # allowed without a tenant (no API keys)
    with pytest.raises(NotPermitted, match="reads the tables and views of its own tenant only"):
        run_readonly(store, sql, LIMITS, tenant="a")


def test_a_tenant_name_cannot_reach_the_settings_text(store: ChdbSink) -> None:
    with pytest.raises(InvalidInput, match="app id"):
        run_readonly(store, "SELECT 1", LIMITS, tenant="a' OR 1 = 1 --")


def test_select_without_from_and_number_tables_work_for_a_tenant(store: ChdbSink) -> None:
    assert run_readonly(store, "SELECT 1 AS one", LIMITS, tenant="a").rows == [{"one": 1}]
    assert run_readonly(store, "SELECT sum(number) AS s FROM numbers(10)", LIMITS, tenant="a").rows == [{"s": 45}]
