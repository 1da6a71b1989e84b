"""`icewatch migrate` on a ClickHouse cluster, and the services' start-up check, against a recording
Sink: what would be sent to the node, in which order, what is recorded in schema_migrations, what is
skipped and what is refused. No cluster runs here (tests/unit/test_cluster_schema.py parses every
statement with ClickHouse's parser, including the ones these send)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collector.cli_root import main as cli
from collector.errors import ConfigError, StorageUnavailable, StoreError
from collector.settings import NativeStore, load_settings
from processors.store.migrate import (
    MIGRATIONS_DIR,
    check_cluster_schema,
    cluster_statements,
    load_migrations,
    migrate_cluster,
)
from processors.store.open import prepare_server
from processors.store.sink import Row, Table

CLUSTER = "prod"
DATABASE = "icewatch"


class RecordingSink:
    """Records every statement and insert; ``schema_migrations`` holds what was inserted into it
    (and what a test seeds). ``fail_on`` makes the statement containing it fail like the server."""

    def __init__(self, recorded: Sequence[Mapping[str, Any]] = (), fail_on: str | None = None,
                 table_exists: bool = True) -> None:
        self.sent: list[str] = []
        self.inserts: list[tuple[str, list[dict[str, Any]]]] = []
        self.recorded = [dict(r) for r in recorded]
        self.fail_on = fail_on
        self.table_exists = table_exists

    def execute(self, sql: str) -> None:
        if self.fail_on and self.fail_on in sql:
            raise StoreError(f"Code: 44. DB::Exception: refused {self.fail_on}")
        self.sent.append(sql)
        if sql.startswith("CREATE TABLE IF NOT EXISTS schema_migrations"):
            self.table_exists = True

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        assert "schema_migrations" in sql, sql
        if not self.table_exists:
            raise StoreError("Code: 60. DB::Exception: Table icewatch.schema_migrations does not exist")
        latest: dict[int, str] = {}
        for row in self.recorded:
            latest[int(row["version"])] = max(str(row["checksum"]), latest.get(int(row["version"]), ""))
        return [{"version": v, "checksum": c} for v, c in sorted(latest.items())]

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        raise AssertionError("not used")

    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        self.inserts.append((table, [dict(r) for r in rows]))
        if table == "schema_migrations":
            self.recorded.extend(dict(r) for r in rows)

    def close(self) -> None:
        pass


def recorded_of(count: int) -> list[dict[str, Any]]:
    return [{"version": m.version, "name": m.name, "checksum": m.checksum} for m in load_migrations()[:count]]


def expected_statements(migrations: Sequence[Any]) -> list[str]:
    return [s for m in migrations for s in cluster_statements(m.sql, CLUSTER, DATABASE)]


def test_a_fresh_cluster_gets_the_replicated_record_then_every_migration_in_order_each_recorded() -> None:
    sink = RecordingSink(table_exists=False)
    migrations = load_migrations()
    done = migrate_cluster(sink, CLUSTER, DATABASE)
    assert [m.version for m in done] == [m.version for m in migrations]
    first = sink.sent[0]
    assert first.startswith("CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER prod")
    # one Keeper path for every node (no {shard}): whichever node a service asks reads the same record
    assert "ReplicatedMergeTree('/clickhouse/tables/icewatch/schema_migrations', '{replica}')" in first
    assert sink.sent[1:] == expected_statements(migrations)
    # DDL runs on every node; an INSERT ... SELECT (0014's) goes once through the Distributed tables
    assert all(" ON CLUSTER prod" in s or s.startswith("INSERT INTO ") for s in sink.sent)
    assert [t for t, _ in sink.inserts] == ["schema_migrations"] * len(migrations)
    assert [(r["version"], r["name"], r["checksum"]) for _, rows in sink.inserts for r in rows] == [
        (m.version, m.name, m.checksum) for m in migrations]


def test_each_version_is_recorded_right_after_its_own_statements() -> None:
    order: list[str] = []

    class Ordered(RecordingSink):
        def execute(self, sql: str) -> None:
            super().execute(sql)
            order.append(sql)

        def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
            super().insert(table, rows, dedup_token)
            order.append(f"record {rows[0]['version']}")

    migrate_cluster(Ordered(), CLUSTER, DATABASE)
    expected = [order[0]]
    for mig in load_migrations():
        expected += [*cluster_statements(mig.sql, CLUSTER, DATABASE), f"record {mig.version}"]
    assert order == expected


def test_a_second_run_sends_nothing_but_the_idempotent_record_table() -> None:
    sink = RecordingSink(recorded=recorded_of(len(load_migrations())))
    assert migrate_cluster(sink, CLUSTER, DATABASE) == []
    assert len(sink.sent) == 1 and sink.sent[0].startswith("CREATE TABLE IF NOT EXISTS schema_migrations")
    assert sink.inserts == []


def test_only_the_pending_migrations_are_sent_so_0012s_rename_never_runs_twice() -> None:
    migrations = load_migrations()
    twelve = next(i for i, m in enumerate(migrations) if m.version == 12)
    sink = RecordingSink(recorded=recorded_of(twelve + 1))  # up to 0012 applied
    done = migrate_cluster(sink, CLUSTER, DATABASE)
    assert [m.version for m in done] == [m.version for m in migrations[twelve + 1:]]
    assert sink.sent[1:] == expected_statements(migrations[twelve + 1:])
    assert not any("RENAME COLUMN" in s for s in sink.sent)


def test_a_migration_that_fails_half_way_is_not_recorded_and_is_sent_whole_next_time() -> None:
    migrations = load_migrations()
    sink = RecordingSink(recorded=recorded_of(11), fail_on="RENAME COLUMN IF EXISTS bitrate_recv_kbps")
    with pytest.raises(StoreError, match="refused"):
        migrate_cluster(sink, CLUSTER, DATABASE)
    assert sink.inserts == []  # 0012 stopped between its statements: not recorded
    sink.fail_on = None
    sink.sent.clear()
    done = migrate_cluster(sink, CLUSTER, DATABASE)
    assert [m.version for m in done] == [m.version for m in migrations[11:]]
    assert sink.sent[1:] == expected_statements(migrations[11:])


def test_an_edited_applied_migration_stops_the_run_before_anything_is_sent(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    sink = RecordingSink(recorded=recorded_of(3))
    edited = next(directory.glob("0002_*.sql"))
    edited.write_text(edited.read_text() + "\n-- edited\n")
    with pytest.raises(ConfigError, match=r"0002_.*edited after it was applied"):
        migrate_cluster(sink, CLUSTER, DATABASE, directory)
    assert len(sink.sent) == 1 and sink.inserts == []


@pytest.mark.parametrize("cluster,database", [("prod; DROP TABLE calls", DATABASE), ("prod", "icewatch'"),
                                              ("", DATABASE), ("9prod", DATABASE), ("p" * 65, DATABASE)])
def test_names_that_are_not_identifiers_are_refused_before_anything_is_sent(cluster: str, database: str) -> None:
    sink = RecordingSink()
    with pytest.raises(ConfigError, match="letters, digits and '_'"):
        migrate_cluster(sink, cluster, database)
    assert sink.sent == [] and sink.inserts == []


def test_the_cluster_setting_is_validated_and_named() -> None:
    assert load_settings(clickhouse={"host": "ch1", "cluster": "prod_1"}).clickhouse == NativeStore(
        host="ch1", cluster="prod_1")
    with pytest.raises(ConfigError, match="ICEWATCH_CLICKHOUSE__CLUSTER"):
        load_settings(clickhouse={"host": "ch1", "cluster": "prod on cluster x"})


# -- a service's start with a cluster configured: check, never migrate

def test_a_service_on_a_cluster_sends_no_ddl_and_starts_on_the_current_schema() -> None:
    sink = RecordingSink(recorded=recorded_of(len(load_migrations())))
    prepare_server(sink, NativeStore(host="ch1", cluster=CLUSTER))
    assert sink.sent == [] and sink.inserts == []


def test_a_service_refuses_a_schema_that_is_behind_naming_the_command() -> None:
    sink = RecordingSink(recorded=recorded_of(11))
    with pytest.raises(ConfigError) as info:
        prepare_server(sink, NativeStore(host="ch1", cluster=CLUSTER))
    message = str(info.value)
    assert "`icewatch migrate --cluster prod`" in message
    assert "recorded up to 0011" in message and "0012_call_connection_bitrate_sdk_warnings" in message
    assert sink.sent == [] and sink.inserts == []


def test_a_service_refuses_a_cluster_never_migrated_naming_the_command() -> None:
    sink = RecordingSink(table_exists=False)
    with pytest.raises(ConfigError, match=r"no readable schema_migrations.*`icewatch migrate --cluster prod`"):
        check_cluster_schema(sink, CLUSTER)
    assert sink.sent == []


def test_a_service_refuses_a_schema_migrated_from_other_files(tmp_path: Path) -> None:
    recorded = recorded_of(len(load_migrations()))
    recorded[0]["checksum"] = "0" * 64
    with pytest.raises(ConfigError, match=r"0001_calls was edited.*another build"):
        check_cluster_schema(RecordingSink(recorded=recorded), CLUSTER)


def test_a_service_starts_on_a_schema_ahead_of_it_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    recorded = [*recorded_of(len(load_migrations())), {"version": 9999, "name": "future", "checksum": "f" * 64}]
    sink = RecordingSink(recorded=recorded)
    with caplog.at_level(logging.WARNING, logger="processors.store.migrate"):
        check_cluster_schema(sink, CLUSTER)
    assert "ahead of this build" in caplog.text and "9999" in caplog.text
    assert sink.sent == []


def test_a_single_server_is_still_migrated_at_start() -> None:
    sink = RecordingSink(table_exists=False)
    prepare_server(sink, NativeStore(host="ch1"))
    assert not any("ON CLUSTER" in s for s in sink.sent)
    assert [r["version"] for _, rows in sink.inserts for r in rows] == [m.version for m in load_migrations()]


def test_an_unreachable_node_is_reported_as_unavailable_not_as_a_missing_schema() -> None:
    class Down(RecordingSink):
        def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
            raise StorageUnavailable("ClickHouse at ch1:9000 did not acknowledge")

    with pytest.raises(StorageUnavailable):
        check_cluster_schema(Down(), CLUSTER)


# -- the command

def test_migrate_print_writes_the_whole_cluster_variant_without_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICEWATCH_CLICKHOUSE__HOST", raising=False)
    result = CliRunner().invoke(cli, ["migrate", "--cluster", CLUSTER, "--print"])
    assert result.exit_code == 0, result.output
    assert "CREATE DATABASE IF NOT EXISTS icewatch ON CLUSTER prod;" in result.output
    assert "CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER prod" in result.output
    for stmt in expected_statements(load_migrations()):
        assert stmt + ";" in result.output


def test_migrate_cluster_without_a_server_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICEWATCH_CLICKHOUSE__HOST", raising=False)
    result = CliRunner().invoke(cli, ["migrate", "--cluster", CLUSTER])
    assert result.exit_code != 0
    assert "set ICEWATCH_CLICKHOUSE__HOST" in result.output and "--print" in result.output


def test_migrate_refuses_a_cluster_name_that_is_not_an_identifier() -> None:
    result = CliRunner().invoke(cli, ["migrate", "--cluster", "prod;x", "--print"])
    assert result.exit_code != 0 and "letters, digits and '_'" in result.output


def test_migrate_cluster_creates_the_database_then_applies_and_records_through_the_configured_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command's wiring, with the connection replaced by recording sinks: the database ON
    CLUSTER through a session on `default`, then the migrations in that database; a second run
    applies nothing."""
    import processors.store.open as store_open

    opened: list[tuple[str, RecordingSink]] = []
    record = RecordingSink(table_exists=False)

    def connect(ch: NativeStore, database: str | None = None, send_receive_timeout: float = 30.0) -> RecordingSink:
        assert ch.cluster == CLUSTER and ch.host == "ch1"
        assert send_receive_timeout >= 300  # ON CLUSTER waits for every node
        sink = record if database is None else RecordingSink()
        opened.append((database or ch.database, sink))
        return sink

    monkeypatch.setattr(store_open, "connect_server", connect)
    for name in [k for k in os.environ if k.startswith("ICEWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ICEWATCH_CLICKHOUSE__HOST", "ch1")
    monkeypatch.setenv("ICEWATCH_CLICKHOUSE__DATABASE", DATABASE)
    monkeypatch.setenv("ICEWATCH_CLICKHOUSE__CLUSTER", CLUSTER)
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert f"applied {len(load_migrations())} migration(s)" in result.output
    (boot_db, boot), (db, sink) = opened
    assert boot_db == "default" and boot.sent == ["CREATE DATABASE IF NOT EXISTS icewatch ON CLUSTER prod"]
    assert db == DATABASE and sink is record
    assert sink.sent[1:] == expected_statements(load_migrations())
    opened.clear()
    record.sent.clear()
    again = CliRunner().invoke(cli, ["migrate"])
    assert again.exit_code == 0 and "applied 0 migration(s)" in again.output, again.output
    assert len(record.sent) == 1
