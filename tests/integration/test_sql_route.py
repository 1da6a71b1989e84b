"""``POST /v1/sql`` over real HTTP on the real embedded store: the Starlette route of ``icewatch run``
(reports uploaded through the same app, one per API key), the processor's health server, and
``icewatch run`` + ``icewatch sql`` as separate processes, as an analyst runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from collector.http_app import IngestConfig, build_app
from collector.settings import SqlLimits
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.service.health import serve_health
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from processors.store.sql_route import SQL_PATH, answer_sql, max_body_bytes, sql_route
from tests.example_report import example_doc
from tests.http_server import free_port, serve
from tests.integration.test_query_paths import clean_env, running

KEYS = {"app-a": "key-of-app-a-0123456", "app-b": "key-of-app-b-0123456"}
LIMITS = SqlLimits(max_result_rows=50, max_sql_bytes=4096)
ICEWATCH = [sys.executable, "-m", "collector"]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ChdbSink]:
    sink = ChdbSink(tmp_path / "store")
    try:
        migrate(sink)
        yield sink
    finally:
        sink.close()


@pytest.fixture()
def client(store: ChdbSink) -> Iterator[httpx.Client]:
    """The app of `icewatch run` with API keys; one call uploaded by each app."""
    config = IngestConfig(api_keys=KEYS, max_body_bytes=1024 * 1024, hash_key=b"k")
    app = build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())), config, [sql_route(store, KEYS, LIMITS)])
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as http:
        for app_id, key in KEYS.items():
            r = http.post("/v1/call-reports", content=json.dumps(example_doc(f"call-{app_id}")).encode(),
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
            assert r.status_code == 202, r.text
        yield http


def sql(http: httpx.Client, statement: str, key: str | None = KEYS["app-a"], fmt: str | None = None) -> httpx.Response:
    body: dict[str, str] = {"sql": statement}
    if fmt:
        body["format"] = fmt
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    return http.post(SQL_PATH, content=json.dumps(body).encode(), headers=headers)


def test_without_a_valid_key_the_answer_is_401(client: httpx.Client) -> None:
    assert sql(client, "SELECT 1", key=None).status_code == 401
    assert sql(client, "SELECT 1", key="not-a-key-of-anyone-0000").status_code == 401


def test_a_key_reads_its_own_tenant_in_tables_rollups_and_views(client: httpx.Client, store: ChdbSink) -> None:
    assert {r["tenant"] for r in store.query("SELECT tenant FROM calls")} == {"app-a", "app-b"}
    for app_id, key in KEYS.items():
        for statement in ("SELECT tenant, call_id FROM calls FINAL",
                          "SELECT tenant FROM candidates",
                          "SELECT tenant FROM call_minute",
                          "SELECT tenant FROM relay_usage_daily",
                          "SELECT tenant FROM calls WHERE tenant != 'x' UNION ALL SELECT tenant FROM call_samples"):
            r = sql(client, statement, key)
            assert r.status_code == 200, r.text
            rows = r.json()["rows"]
            assert rows and {row["tenant"] for row in rows} == {app_id}, statement
    assert [r["call_id"] for r in sql(client, "SELECT call_id FROM calls FINAL").json()["rows"]] == ["call-app-a"]


def test_a_key_may_not_read_tables_without_a_tenant_column(client: httpx.Client) -> None:
    r = sql(client, "SELECT name FROM system.tables")
    assert r.status_code == 403 and "own tenant only" in r.json()["error"]
    assert sql(client, "SELECT * FROM schema_migrations").status_code == 403


@pytest.mark.parametrize("statement", [
    "DROP TABLE calls", "INSERT INTO calls (tenant, call_id) VALUES ('app-a', 'x')", "ALTER TABLE calls DELETE WHERE 1",
    "CREATE TABLE x (a UInt8) ENGINE = Memory", "SET readonly = 0", "SELECT 1; DROP TABLE calls",
    "SELECT call_id FROM calls SETTINGS readonly = 0, additional_table_filters = {}",
])
def test_writes_ddl_settings_and_two_statements_are_400_and_change_nothing(
        client: httpx.Client, store: ChdbSink, statement: str) -> None:
    before = store.query("SELECT tenant, call_id FROM calls ORDER BY tenant")
    r = sql(client, statement)
    assert r.status_code == 400, r.text
    assert r.json()["path"] == "sql"
    assert store.query("SELECT tenant, call_id FROM calls ORDER BY tenant") == before
    assert store.query("SELECT count() AS n FROM system.tables WHERE name = 'x'") == [{"n": 0}]


def test_a_limit_exceeded_is_400_naming_it(client: httpx.Client) -> None:
    r = sql(client, "SELECT number FROM numbers(1000)")
    assert r.status_code == 400 and "max_result_rows (50) exceeded" in r.json()["error"]
    r = sql(client, "SELECT '" + "x" * 5000 + "'")
    assert r.status_code == 400 and "max_sql_bytes (4096)" in r.json()["error"]


def test_json_csv_and_table_answers(client: httpx.Client) -> None:
    statement = "SELECT tenant, count() AS calls FROM calls FINAL GROUP BY tenant"
    as_json = sql(client, statement, fmt="json")
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == {"columns": ["tenant", "calls"], "rows": [{"tenant": "app-a", "calls": 1}]}
    as_csv = sql(client, statement, fmt="csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines() == ["tenant,calls", "app-a,1"]
    as_table = sql(client, statement, fmt="table")
    assert as_table.headers["content-type"].startswith("text/plain")
    assert [line.split() for line in as_table.text.splitlines()] == [["tenant", "calls"], ["app-a", "1"]]
    assert sql(client, statement, fmt="xml").status_code == 400


def test_malformed_requests(client: httpx.Client) -> None:
    headers = {"X-API-Key": KEYS["app-a"]}
    as_json = {**headers, "Content-Type": "application/json"}
    as_text = {**headers, "Content-Type": "text/plain"}
    assert client.post(SQL_PATH, content=b"SELECT 1", headers=as_text).status_code == 415
    r = client.post(SQL_PATH, content=b"{not json", headers=as_json)
    assert r.status_code == 400
    r = client.post(SQL_PATH, content=json.dumps({"sql": 1}).encode(), headers=as_json)
    assert r.status_code == 400 and r.json()["path"] == "sql"
    big = b'{"sql": "' + b"x" * (max_body_bytes(LIMITS) + 10) + b'"}'
    assert client.post(SQL_PATH, content=big, headers=as_json).status_code == 413


def test_the_processors_health_server_answers_post_sql(store: ChdbSink) -> None:
    store.execute("INSERT INTO calls (tenant, call_id, segment, event_time, ingested_at, source_format) "
                  "VALUES ('app-a', 'a1', 0, now(), now(), 'w3c'), ('app-b', 'b1', 0, now(), now(), 'w3c')")
    port = free_port()
    server = serve_health(port, CollectorRegistry(), lambda: True,
                          post_routes={SQL_PATH: lambda body, hdrs: answer_sql(store, body, hdrs, KEYS, LIMITS)},
                          max_post_bytes=max_body_bytes(LIMITS))
    try:
        def post(body: bytes, key: str | None, path: str = SQL_PATH) -> tuple[int, bytes]:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"X-API-Key": key} if key else {})})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        statement = json.dumps({"sql": "SELECT call_id FROM calls", "format": "csv"}).encode()
        status, out = post(statement, KEYS["app-b"])
        assert (status, out.decode().splitlines()) == (200, ["call_id", "b1"])
        assert post(statement, None)[0] == 401
        assert post(statement, KEYS["app-b"], path="/v1/other")[0] == 404
        assert post(b"x" * (max_body_bytes(LIMITS) + 1), KEYS["app-b"])[0] == 413
    finally:
        server.shutdown()
        server.server_close()


def test_icewatch_sql_through_icewatch_run(tmp_path: Path) -> None:
    """The CLI finds the running process (ICEWATCH_HOST/PORT) and sends the key it is given."""
    port = free_port()
    env = clean_env(ICEWATCH_PORT=str(port), ICEWATCH_METRICS_PORT="0", ICEWATCH_DATA_DIR=str(tmp_path / "data"),
                    ICEWATCH_HASH_KEY="test-key", ICEWATCH_API_KEYS=json.dumps(KEYS))
    base = f"http://127.0.0.1:{port}"
    with running(["run"], env, f"{base}/healthz", tmp_path / "run.log"):
        req = urllib.request.Request(f"{base}/v1/call-reports", data=json.dumps(example_doc("cli-call")).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {KEYS['app-a']}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 202

        def icewatch_sql(*args: str, key: str | None) -> subprocess.CompletedProcess[str]:
            run_env = {**env, **({"ICEWATCH_API_KEY": key} if key else {})}
            return subprocess.run([*ICEWATCH, "sql", *args], env=run_env, capture_output=True, text=True, timeout=120)

        statement = "SELECT tenant, call_id FROM calls FINAL"
        out = icewatch_sql(statement, "--format", "csv", key=KEYS["app-a"])
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ["tenant,call_id", "app-a,cli-call"]
        out = icewatch_sql(statement, "--format", "json", key=KEYS["app-b"])
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == []
        out = icewatch_sql(statement, key=None)
        assert out.returncode == 1 and "401" in out.stderr
        out = icewatch_sql("DROP TABLE calls", key=KEYS["app-a"])
        assert out.returncode == 1 and "DROP / DETACH statements are refused" in out.stderr
        out = icewatch_sql("SELECT count() AS n FROM calls", "--url", base, key=KEYS["app-a"])
        assert out.returncode == 0 and out.stdout.split() == ["n", "1"], out.stderr
