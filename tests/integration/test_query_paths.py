"""`icewatch query` finds the data wherever it runs (issue: a collector answered it with 404).

- Kafka + a ClickHouse server: with `icewatch collector` running on the default address, the query
  reads ClickHouse itself (Debian's clickhouse-server 18.16 cannot run the whole schema, so the test
  gives it the columns of `calls` the analyst view reads, and the view from its migration).
- Kafka + the embedded store: `icewatch collector` + `icewatch processor`; the processor holds the
  store and answers the query through its /v1/query route.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from processors.store.migrate import MIGRATIONS_DIR, split_statements
from processors.store.native import NativeSink
from tests.example_report import EXAMPLE_BODY
from tests.http_server import free_port
from tests.integration.test_delivery import create_topics, unique_topics
from tests.services import ClickHouseServerService, KafkaService

REPO = Path(__file__).resolve().parents[2]
VIEWS = MIGRATIONS_DIR / "0010_analyst_view_states.sql"
ICEWATCH = [sys.executable, "-m", "collector"]


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    env.update(values)
    return env


@contextmanager
def running(args: list[str], env: dict[str, str], health_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([*ICEWATCH, *args], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(health_url, timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"icewatch {args[0]} did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def query(env: dict[str, str], name: str, since: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ICEWATCH, "query", name, "--since", since, "--format", "json"], env=env,
                          capture_output=True, text=True, timeout=120)


def kafka_env(kafka: KafkaService, tmp_path: Path) -> dict[str, str]:
    topics = unique_topics(partitions=1)
    create_topics(kafka, topics)
    return clean_env(
        ICEWATCH_KAFKA__BOOTSTRAP=kafka.bootstrap,
        ICEWATCH_TOPICS__CALL_REPORTS=topics.call_reports,
        ICEWATCH_TOPICS__TURN_EVENTS=topics.turn_events,
        ICEWATCH_TOPICS__PROBE_RESULTS=topics.probe_results,
        ICEWATCH_TOPICS__DEAD_LETTERS=topics.dead_letters,
        ICEWATCH_TOPICS__PARTITIONS="1",
        ICEWATCH_PORT=str(free_port()),
        ICEWATCH_METRICS_PORT=str(free_port()),
        ICEWATCH_DATA_DIR=str(tmp_path / "data"),
        ICEWATCH_HASH_KEY="test-key",
        ICEWATCH_GROUP_ID=f"q-{tmp_path.name}",
        ICEWATCH_MAX_BATCH_SECONDS="0.3",
    )


def test_query_reads_the_clickhouse_server_while_a_collector_runs(
        kafka: KafkaService, clickhouse_server: ClickHouseServerService, tmp_path: Path) -> None:
    sink = NativeSink(host="127.0.0.1", port=clickhouse_server.port, database="default")
    sink.execute("DROP TABLE IF EXISTS relay_usage_daily")
    sink.execute("DROP TABLE IF EXISTS calls")
    # The columns of `calls` the analyst view reads, and the view itself from its migration.
    sink.execute("CREATE TABLE calls (tenant String, call_id String, segment UInt32, event_time DateTime, "
                 "client_region String, turn_region String, relay_protocol String, path_class String, "
                 "ingested_at DateTime) ENGINE = ReplacingMergeTree(ingested_at) PARTITION BY toYYYYMM(event_time) "
                 "ORDER BY (tenant, call_id, segment)")
    view = next(stmt for stmt in split_statements(VIEWS.read_text()) if "VIEW IF NOT EXISTS relay_usage_daily" in stmt)
    sink.execute(view)
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)

    def call(call_id: str, days_ago: int, path: str, tenant: str = "default") -> dict[str, object]:
        return {"tenant": tenant, "call_id": call_id, "segment": 0, "event_time": now - timedelta(days=days_ago),
                "client_region": "eu", "turn_region": "eu", "relay_protocol": "udp", "path_class": path,
                "ingested_at": now}

    sink.insert("calls", [call("a", 0, "relay-udp"), call("b", 0, "srflx"), call("c", 1, "relay-udp"),
                          call("d", 1, "host"), call("x", 0, "relay-udp", tenant="other")])
    sink.close()
    env = kafka_env(kafka, tmp_path)
    env.update(ICEWATCH_CLICKHOUSE__HOST="127.0.0.1", ICEWATCH_CLICKHOUSE__PORT=str(clickhouse_server.port))
    base = f"http://127.0.0.1:{env['ICEWATCH_PORT']}"
    with running(["collector"], env, f"{base}/healthz", tmp_path / "collector.log"):
        try:
            urllib.request.urlopen(f"{base}/v1/query?name=relay-usage", timeout=5)
            raise AssertionError("the collector holds no store and must not answer queries")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        out = query(env, "relay-usage", "3d")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {(r["protocol"], r["calls"], r["relayed"]) for r in rows} == {("udp", 2, 2), ("", 2, 0)}


def test_query_goes_through_the_processor_that_holds_the_embedded_store(
        kafka: KafkaService, tmp_path: Path) -> None:
    env = kafka_env(kafka, tmp_path)
    base = f"http://127.0.0.1:{env['ICEWATCH_PORT']}"
    processor_health = f"http://127.0.0.1:{env['ICEWATCH_METRICS_PORT']}/healthz"
    with running(["collector"], env, f"{base}/healthz", tmp_path / "collector.log"), \
            running(["processor"], env, processor_health, tmp_path / "processor.log"):
        req = urllib.request.Request(f"{base}/v1/call-reports", data=EXAMPLE_BODY, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 202
        deadline = time.monotonic() + 60
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            out = query(env, "relay-usage", "52w")
            assert out.returncode == 0, out.stderr  # the processor holds the store: never a 404 or a lock error
            rows = json.loads(out.stdout)
            if rows:
                break
            time.sleep(0.5)
    assert [(r["protocol"], r["calls"], r["relayed"]) for r in rows] == [("udp", 1, 1)]
