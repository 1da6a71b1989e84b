"""Services with ICEWATCH_CLICKHOUSE__CLUSTER set never migrate: started against a real ClickHouse
server (Debian's 18.16, standing in for one node of a cluster; too old for the migrations
themselves) whose schema was never migrated or is behind, `icewatch alerts run` and `icewatch run`
exit at once naming the command to run, and the database holds afterwards exactly what it held
before (no table created, nothing recorded)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.store.migrate import load_migrations
from tests.paging import ICEWATCH
from tests.services import HOST, REPO_ROOT, ClickHouseServerService, free_ports

pytestmark = pytest.mark.clickhouse_server

COMMANDS = {"evaluator": ["alerts", "run"], "all in one": ["run"]}


@pytest.fixture
def database(clickhouse_server: ClickHouseServerService) -> Iterator[str]:
    name = f"cluster_check_{uuid.uuid4().hex[:12]}"
    client = clickhouse_server.client()
    client.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {name}")
        client.disconnect()


def tables(server: ClickHouseServerService, database: str) -> list[str]:
    client = server.client()
    try:
        return sorted(r[0] for r in client.execute(f"SELECT name FROM system.tables WHERE database = '{database}'"))
    finally:
        client.disconnect()


def start(server: ClickHouseServerService, database: str, command: list[str], tmp: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    env.update({"ICEWATCH_CLICKHOUSE__HOST": HOST, "ICEWATCH_CLICKHOUSE__PORT": str(server.port),
                "ICEWATCH_CLICKHOUSE__DATABASE": database, "ICEWATCH_CLICKHOUSE__CLUSTER": "prod",
                "ICEWATCH_DATA_DIR": str(tmp / "data"), "ICEWATCH_METRICS_PORT": "0",
                "ICEWATCH_PORT": str(free_ports(1)[0])})
    out = subprocess.run([*ICEWATCH, "--log-level", "WARNING", *command], env=env, cwd=REPO_ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode != 0, (out.stdout + out.stderr)[-2000:]
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, (out.stdout + out.stderr)[-2000:]
    return errors[0]


@pytest.mark.parametrize("service", list(COMMANDS))
def test_a_never_migrated_cluster_is_refused_and_left_untouched(
    service: str, clickhouse_server: ClickHouseServerService, database: str, tmp_path: Path,
) -> None:
    error = start(clickhouse_server, database, COMMANDS[service], tmp_path)
    assert "run `icewatch migrate --cluster prod`" in error and "schema_migrations" in error
    assert tables(clickhouse_server, database) == []


@pytest.mark.parametrize("service", list(COMMANDS))
def test_a_schema_behind_the_build_is_refused_naming_what_is_missing(
    service: str, clickhouse_server: ClickHouseServerService, database: str, tmp_path: Path,
) -> None:
    client = clickhouse_server.client()
    try:
        client.execute(f"CREATE TABLE {database}.schema_migrations (version UInt32, name String, checksum String) "
                       "ENGINE = MergeTree ORDER BY version")
        applied = load_migrations()[:11]
        client.execute(f"INSERT INTO {database}.schema_migrations (version, name, checksum) VALUES",
                       [(m.version, m.name, m.checksum) for m in applied])
    finally:
        client.disconnect()
    error = start(clickhouse_server, database, COMMANDS[service], tmp_path)
    assert "behind this build (recorded up to 0011" in error and "0012_" in error
    assert "run `icewatch migrate --cluster prod`" in error
    assert tables(clickhouse_server, database) == ["schema_migrations"]
    client = clickhouse_server.client()
    try:
        assert client.execute(f"SELECT count() FROM {database}.schema_migrations")[0][0] == 11
    finally:
        client.disconnect()
