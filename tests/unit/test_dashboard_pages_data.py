"""The built-in pages' server side on the real engine (chDB): panel SQL expanded as Grafana does,
bounded work per request, column types, the query API's auth, and the metric panels."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from collector.errors import InvalidInput, NotPermitted
from dashboards.macros import ALL
from dashboards.model import Dashboard, DataLink, Panel, Row, Variable
from dashboards.pages import data
from dashboards.pages.data import _json_value, metric_table, parse_time
from dashboards.pages.handler import Pages
from processors.store.chdb import ChdbSink

# The seeded rows sit just before the current hour: the HTTP answers use the pages' own
# default range (now-6h), so rows at a fixed time would leave it six hours later.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # whole hour: panels bucket by interval
FIXED = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # for parsing Grafana's time forms


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
TENANT = Variable("tenant", "App", multi=False, include_all=False, default="default",
                  sql="SELECT DISTINCT tenant FROM t ORDER BY tenant")
REGION = Variable("region", "Region", sql="SELECT DISTINCT region FROM t WHERE tenant = ${tenant:singlequote} "
                                          "AND $__timeFilter(at) ORDER BY region")
CALL = Variable("call_id", "Call", kind="textbox", multi=False, include_all=False)
BOARD = Dashboard(
    uid="test-board", title="Test", description="a board of the test",
    variables=(TENANT, REGION, CALL),
    rows=(Row("r", (
        Panel("count", "Calls", "stat",
              sql="SELECT count() AS calls FROM t WHERE tenant = ${tenant:singlequote} AND $__timeFilter(at) "
                  "AND $__conditionalAll(region IN (${region:singlequote}), $region)"),
        Panel("in_all", "Regions listed", "table",  # All expanded to every option: no $__conditionalAll
              sql="SELECT region, count() AS calls FROM t WHERE tenant = ${tenant:singlequote} "
                  "AND region IN (${region:singlequote}) GROUP BY region ORDER BY region"),
        Panel("series", "Per minute", "timeseries",
              sql="SELECT $__timeInterval(at) AS time, region, count() AS calls FROM t "
                  "WHERE tenant = ${tenant:singlequote} AND $__timeFilter(at) GROUP BY time, region ORDER BY time"),
        Panel("call", "One call", "table", links=(DataLink("x", "test-board", "call_id", "call_id"),),
              sql="SELECT call_id, at FROM t WHERE call_id = ${call_id:singlequote}"),
        Panel("many", "Many rows", "table", sql="SELECT number FROM numbers(100000)"),
        Panel("broken", "Bad SQL", "table", sql="SELECT nope FROM t"),
        Panel("own", "Own metric", "table", metric="pages_test_requests"),
    )),),
)


@pytest.fixture()
def seeded(store: ChdbSink) -> ChdbSink:
    store.execute("CREATE TABLE t (tenant String, region String, call_id String, at DateTime('UTC')) "
                  "ENGINE = MergeTree ORDER BY at")
    rows = [("default", "eu", "c1", NOW - timedelta(minutes=30)), ("default", "eu", "c2", NOW - timedelta(minutes=20)),
            ("default", "us", "c3", NOW - timedelta(minutes=10)), ("acme", "apac", "c4", NOW - timedelta(minutes=5))]
    store.insert("t", [{"tenant": a, "region": b, "call_id": c, "at": d} for a, b, c, d in rows])
    return store


def panel(store: ChdbSink, key: str, selected: dict[str, list[str]] | None = None,
          forced: str | None = None, hours: float = 1) -> dict[str, Any]:
    return data.panel_data(store, BOARD, key, NOW - timedelta(hours=hours), NOW, selected or {}, forced_tenant=forced)


def test_a_panel_answers_rows_with_their_column_types(seeded: ChdbSink) -> None:
    assert panel(seeded, "count") == {"columns": [{"name": "calls", "type": "UInt64"}], "rows": [[3]],
                                      "truncated": False}
    assert panel(seeded, "count", {"region": ["eu"]})["rows"] == [[2]]
    assert panel(seeded, "count", {"region": ["eu", "us"]})["rows"] == [[3]]
    assert panel(seeded, "count", {"region": [ALL]})["rows"] == [[3]]
    series = panel(seeded, "series")
    assert [c["type"] for c in series["columns"]] == ["DateTime('UTC')", "String", "UInt64"]
    assert series["rows"][0] == [iso(NOW - timedelta(minutes=30)), "eu", 1]  # times as UTC ISO 8601


def test_all_is_every_option_where_conditional_all_does_not_drop_it(seeded: ChdbSink) -> None:
    assert panel(seeded, "in_all")["rows"] == [["eu", 2], ["us", 1]]
    assert panel(seeded, "in_all", {"region": ["us"]})["rows"] == [["us", 1]]
    # the options are those of the range: with no region in it, All matches nothing
    empty = data.panel_data(seeded, BOARD, "in_all", NOW - timedelta(days=3), NOW - timedelta(days=2), {})
    assert empty["rows"] == []


def test_values_are_quoted_not_spliced(seeded: ChdbSink) -> None:
    assert panel(seeded, "call", {"call_id": ["c1' OR '1'='1"]})["rows"] == []
    assert panel(seeded, "call", {"call_id": ["c1\\' OR 1=1 --"]})["rows"] == []
    assert panel(seeded, "call", {"call_id": ["c1"]})["rows"] == [["c1", iso(NOW - timedelta(minutes=30))]]


@pytest.mark.parametrize(("selected", "hours", "path"), [
    ({"region": [f"r{i}" for i in range(65)]}, 1, "var-region"),
    ({"region": ["x" * 257]}, 1, "var-region"),
    ({"tenant": ["a", "b"]}, 1, "var-tenant"),
    ({"tenant": ["not a tenant!"]}, 1, "var-tenant"),
    ({"call_id": ["a", "b"]}, 1, "var-call_id"),
    ({"nope": ["x"]}, 1, "var-nope"),
    ({}, 24 * 401, "from"),
])
def test_bad_input_is_refused_before_any_query(seeded: ChdbSink, selected: dict[str, list[str]], hours: float,
                                               path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        panel(seeded, "count", selected, hours=hours)
    assert info.value.path == path


def test_the_work_of_one_request_is_bounded(seeded: ChdbSink, monkeypatch: pytest.MonkeyPatch) -> None:
    many = panel(seeded, "many")
    assert len(many["rows"]) == data.MAX_ROWS and many["truncated"] is True
    pages = Pages(seeded, {}, [BOARD])
    monkeypatch.setattr(data, "QUERY_SETTINGS", {**data.QUERY_SETTINGS, "max_execution_time": 1})
    slow = Panel("slow", "Slow", "stat", sql="SELECT count() FROM numbers(100000000000)")
    board = Dashboard("slow-board", "Slow", "", rows=(Row("r", (slow,)),))
    answer = Pages(seeded, {}, [board]).answer("/api/dashboards/slow-board/panels/slow", "", {})
    assert answer.status == 503 and "Timeout" in json.loads(answer.body)["error"]
    assert answer.headers["Retry-After"]
    broken = pages.answer("/api/dashboards/test-board/panels/broken", "from=now-1h", {})
    assert broken.status == 500 and "nope" in json.loads(broken.body)["error"]
    assert pages.answer("/api/dashboards/test-board/panels/count", "", {}).status == 200  # the session is fine


def test_api_keys_force_the_tenant(seeded: ChdbSink) -> None:
    assert panel(seeded, "count", forced="acme")["rows"] == [[1]]
    assert panel(seeded, "in_all", forced="acme")["rows"] == [["apac", 1]]  # All: acme's regions
    with pytest.raises(NotPermitted):
        panel(seeded, "count", {"tenant": ["default"]}, forced="acme")
    pages = Pages(seeded, {"acme": "k" * 20}, [BOARD])
    url = "/api/dashboards/test-board/panels/count"
    assert pages.answer(url, "", {}).status == 401
    assert pages.answer(url, "", {"authorization": "Bearer wrong"}).status == 401
    assert pages.answer(url, "var-tenant=default", {"authorization": "Bearer " + "k" * 20}).status == 403
    ok = pages.answer(url, "var-tenant=acme", {"x-api-key": "k" * 20})
    assert ok.status == 200 and json.loads(ok.body)["rows"] == [[1]]
    values = pages.answer("/api/dashboards/test-board/variables/tenant", "", {"x-api-key": "k" * 20})
    assert json.loads(values.body)["values"] == ["acme"]  # other tenants are not even listed
    assert pages.answer("/api/dashboards/test-board/variables/region", "", {}).status == 401
    assert pages.answer("/d/test-board", "", {}).status == 200  # the shell carries no data


def test_variable_values_follow_the_selection(seeded: ChdbSink) -> None:
    doc = data.variable_values(seeded, BOARD, "region", NOW - timedelta(hours=1), NOW, {})
    assert doc == {"name": "region", "values": ["eu", "us"], "include_all": True, "multi": True, "selected": [ALL]}
    acme = data.variable_values(seeded, BOARD, "region", NOW - timedelta(hours=1), NOW, {"tenant": ["acme"]})
    assert acme["values"] == ["apac"]
    tenants = data.variable_values(seeded, BOARD, "tenant", NOW - timedelta(hours=1), NOW, {})
    assert tenants["values"] == ["acme", "default"] and tenants["selected"] == ["default"]


def test_the_http_answers(seeded: ChdbSink) -> None:
    pages = Pages(seeded, {}, [BOARD])
    bad = pages.answer("/api/dashboards/test-board/panels/count", "from=yesterday", {})
    assert bad.status == 400 and json.loads(bad.body) == {
        "error": "not a time: 'yesterday' (now, now-6h, epoch milliseconds or ISO 8601)", "path": "from"}
    assert pages.answer("/api/dashboards/test-board/panels/count", "limit=5", {}).status == 400
    assert pages.answer("/api/dashboards/test-board/panels/nope", "", {}).status == 404
    assert pages.answer("/api/dashboards/nope/panels/count", "", {}).status == 404
    assert pages.answer("/api/dashboards/test-board/variables/nope", "", {}).status == 404
    missing = pages.answer("/d/nope", "", {})
    assert missing.status == 404 and b"<title>Not found" in missing.body
    assert pages.answer("/static/pages/../handler.py", "", {}).status == 404
    model = json.loads(pages.answer("/api/dashboards/test-board", "", {}).body)
    assert model["auth"] is False and model["dashboard"]["rows"][0]["panels"][0]["key"] == "count"
    shell = pages.answer("/", "", {})
    assert shell.status == 200 and b"static/pages/app.js" in shell.body
    assert "frame-ancestors 'none'" in shell.headers["Content-Security-Policy"]
    for path in ("/static/pages/app.js", "/static/pages/app.css", "/static/uplot/uPlot.iife.min.js",
                 "/static/uplot/uPlot.min.css"):
        got = pages.answer(path, "", {})
        assert got.status == 200 and len(got.body) > 1000, path
        again = pages.answer(path, "", {"if-none-match": got.headers["ETag"]})
        assert again.status == 304 and again.body == b""
    many = "&".join(f"var-region=r{i}" for i in range(300))
    assert pages.answer("/api/dashboards/test-board/panels/count", many, {}).status == 400


def test_metric_panels_show_the_registrys_current_samples(seeded: ChdbSink) -> None:
    registry = CollectorRegistry()
    requests = Counter("pages_test_requests", "Requests", ["status"], registry=registry)
    requests.labels("202").inc(3)
    requests.labels("401").inc()
    Gauge("pages_test_lag_seconds", "Lag", registry=registry).set(2.5)
    Histogram("pages_test_batch_seconds", "Batches", registry=registry).observe(0.2)
    assert metric_table([registry], "pages_test_requests").rows == [["total", 'status="202"', 3.0],
                                                                    ["total", 'status="401"', 1.0]]
    assert metric_table([registry], "pages_test_lag_seconds").rows == [["value", "", 2.5]]
    assert [r[0] for r in metric_table([registry], "pages_test_batch_seconds").rows] == ["count", "sum"]
    doc = data.panel_data(seeded, BOARD, "own", NOW - timedelta(hours=1), NOW, {}, registries=[registry])
    assert doc["columns"][2] == {"name": "value", "type": "Float64"} and len(doc["rows"]) == 2


def test_times_and_values_as_json() -> None:
    assert parse_time("now-6h", FIXED, "from") == FIXED - timedelta(hours=6)
    assert parse_time("now-7d", FIXED, "from") == FIXED - timedelta(days=7)
    assert parse_time("now/d", FIXED, "from") == datetime(2026, 11, 26, tzinfo=UTC)
    assert parse_time("1764129600000", FIXED, "from") == datetime(2025, 11, 26, 4, 0, tzinfo=UTC)
    assert parse_time("2026-11-26T01:00:00Z", FIXED, "to") == datetime(2026, 11, 26, 1, tzinfo=UTC)
    assert _json_value("2026-11-26 13:00:00", "DateTime('Asia/Tokyo')") == "2026-11-26T04:00:00Z"
    assert _json_value("2026-11-26 13:00:00.250", "Nullable(DateTime64(3))") == "2026-11-26T13:00:00.250000Z"
    assert _json_value(math.nan, "Float64") is None and _json_value(math.inf, "Float64") is None
    assert _json_value(Decimal("1.5"), "Decimal(9, 2)") == 1.5
    assert _json_value([1.0, math.nan], "Array(Float64)") == [1.0, None]
    assert _json_value("plain", "String") == "plain"
