"""The real schema on the real engine (chDB): migrations, views, deduplication, cluster variant."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.errors import ConfigError
from processors.store.chdb import ChdbSink
from processors.store.migrate import cluster_statements, load_migrations, migrate, split_statements


def test_migrations_apply_once_and_are_recorded(store: ChdbSink) -> None:
    versions = [r["version"] for r in store.query("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in load_migrations()]
    assert migrate(store) == []  # idempotent


def test_edited_migration_is_refused(tmp_path: Path) -> None:
    sink = ChdbSink(tmp_path / "s")
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "0001_a.sql").write_text("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree ORDER BY x;\n")
    try:
        assert len(migrate(sink, mdir)) == 1
        (mdir / "0001_a.sql").write_text("CREATE TABLE IF NOT EXISTS a (x UInt16) ENGINE = MergeTree ORDER BY x;\n")
        with pytest.raises(ConfigError, match="immutable"):
            migrate(sink, mdir)
    finally:
        sink.close()


def _plain_type(t: str) -> str:
    """Types that insert into each other unchanged: SimpleAggregateFunction(f, T) stores a T."""
    m = re.fullmatch(r"SimpleAggregateFunction\(\w+, (.+)\)", t)
    if m:
        t = m.group(1)
    return t.replace("Bool", "UInt8").replace("LowCardinality(String)", "String")


def test_every_materialized_view_matches_its_target(store: ChdbSink) -> None:
    mvs = store.query(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView'"
    )
    assert len(mvs) >= 4
    for mv in mvs:
        ddl = mv["create_table_query"]
        target = re.search(r"\bTO\s+(?:\w+\.)?`?(\w+)`?", ddl)
        assert target, ddl
        select = ddl[re.search(r"\bAS\s+SELECT\b", ddl, re.IGNORECASE).start() + 3:]  # type: ignore[union-attr]
        produced = [(r["name"], r["type"]) for r in store.query(f"DESCRIBE ({select})")]
        expected = [(r["name"], r["type"]) for r in store.query(f"DESCRIBE TABLE {target.group(1)}")]
        assert [n for n, _ in produced] == [n for n, _ in expected], mv["name"]
        for (name, got), (_, want) in zip(produced, expected, strict=True):
            norm = [_plain_type(t) for t in (got, want)]
            assert norm[0] == norm[1], f"{mv['name']}.{name}: {got} vs {want}"


def test_insert_dedup_token_drops_a_replayed_batch_in_table_and_rollup(store: ChdbSink) -> None:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # within the calls table's 400 days
    row = {
        "tenant": "t-dedup", "call_id": "c1", "segment": 0, "report_id": "r1",
        "event_time": at.isoformat(), "ingested_at": (at + timedelta(seconds=1)).isoformat(),
        "source_format": "w3c", "path_class": "relay-udp", "ice_connected": True,
    }
    store.insert("calls", [row], dedup_token="b-x-calls")
    store.insert("calls", [row], dedup_token="b-x-calls")
    assert store.query("SELECT count() AS n FROM calls WHERE tenant = 't-dedup'")[0]["n"] == 1
    # Another batch boundary (another token) still converges in the rollup: distinct call sets.
    store.insert("calls", [row], dedup_token="b-y-calls")
    q = "SELECT uniqExactMerge(calls) AS n, uniqExactIfMerge(relayed) AS r FROM call_minute WHERE tenant = 't-dedup'"
    assert store.query(q)[0] == {"n": 1, "r": 1}
    assert store.query("SELECT count() AS n FROM calls FINAL WHERE tenant = 't-dedup'")[0]["n"] == 1


def test_split_statements_rejects_trailing_text() -> None:
    assert split_statements("SELECT 1;\n-- c\nSELECT 2;\n") == ["SELECT 1", "SELECT 2"]
    with pytest.raises(ConfigError):
        split_statements("SELECT 1;\nSELECT 2")


def test_cluster_variant_replicates_and_distributes_every_table() -> None:
    for mig in load_migrations():
        stmts = cluster_statements(mig.sql, "prod")
        for s in stmts:
            if s.startswith("CREATE TABLE") and "Distributed" not in s:
                assert "ON CLUSTER prod" in s and "ENGINE = Replicated" in s, s[:120]
                assert "non_replicated_deduplication_window" not in s
            if s.startswith("CREATE MATERIALIZED VIEW"):
                assert re.search(r"TO \w+_local", s) and "FROM calls FINAL" not in s
    calls = [s for s in cluster_statements(load_migrations()[0].sql, "prod") if "Distributed" in s]
    assert any("calls_local, cityHash64(call_id)" in s for s in calls)
