from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.errors import InvalidInput
from processors.store.chdb import ChdbSink
from processors.store.queries import QUERIES, build_sql, parse_since, run_named


def test_since_parses_durations() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 15, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 11, 21, 22, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        parse_since("7 days; DROP TABLE calls", now)


def test_user_input_never_reaches_sql_text() -> None:
    with pytest.raises(InvalidInput, match="unknown dimension"):
        build_sql("relay-usage", ("region); DROP TABLE calls; --",))
    with pytest.raises(InvalidInput, match="unknown query"):
        build_sql("calls; DROP", None)
    sql = build_sql("relay-usage", ("region", "protocol"))
    assert "{since_day:Date}" in sql and "{tenant:String}" in sql  # a view of whole days
    assert "{since:DateTime64(3, 'UTC')}" in build_sql("rtt", None)
    assert "client_region AS `region`" in sql


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_named_query_runs_on_the_real_schema(name: str, store: ChdbSink) -> None:
    store.insert("calls", [{
        "tenant": "default", "call_id": "c1", "segment": 0, "report_id": "r", "event_time": datetime.now(UTC),
        "ingested_at": datetime.now(UTC), "source_format": "w3c", "path_class": "relay-tls",
        "relay_protocol": "tls", "client_region": "eu", "turn_region": "us-east", "relay_distance_km": 6000.0,
        "rtt_median_ms": 120.0, "rtt_p95_ms": 150.0, "ice_connected": True,
    }])
    store.insert("turn_events", [{
        "tenant": "default", "event_id": "e1", "server_id": "turn-1", "region": "eu", "process_key": "p",
        "session_id": "001", "at": datetime.now(UTC), "kind": "request", "method": "ALLOCATE", "success": True,
        "is_alloc_ok": 1, "raw": "x",
    }])
    store.insert("probes", [{
        "tenant": "default", "probe_id": "p1", "at": datetime.now(UTC), "server_id": "turn-1", "region": "eu",
        "vantage": "v", "kind": "stun_binding", "transport": "udp", "target": "t:3478", "success": False,
        "error": "timeout", "ingested_at": datetime.now(UTC),
    }])
    rows = run_named(store, name, "1d")
    assert rows, name


def test_view_backed_queries_combine_the_views_daily_rows(store: ChdbSink) -> None:
    """relay-usage and relay-distance read the analyst views: counts add up over days, and the
    distance quantiles merge the view's state instead of averaging daily medians."""
    from datetime import timedelta

    now = datetime.now(UTC)
    base = {"tenant": "default", "segment": 0, "ingested_at": now, "source_format": "w3c", "client_region": "eu",
            "turn_region": "us-east", "relay_protocol": "udp"}
    store.insert("calls", [
        {**base, "call_id": "a", "report_id": "a", "event_time": now - timedelta(days=2), "path_class": "relay-udp",
         "relay_distance_km": 100.0},
        {**base, "call_id": "b", "report_id": "b", "event_time": now, "path_class": "relay-udp",
         "relay_distance_km": 300.0},
        {**base, "call_id": "c", "report_id": "c", "event_time": now, "path_class": "relay-udp",
         "relay_distance_km": 350.0},
        {**base, "call_id": "d", "report_id": "d", "event_time": now, "path_class": "host", "relay_protocol": None},
    ])
    [dist] = run_named(store, "relay-distance", "7d")
    assert (dist["relayed_calls"], dist["p50_km"]) == (3, 300.0)
    usage = {(r["region"], r["protocol"]): (r["calls"], r["relayed"]) for r in run_named(store, "relay-usage", "7d")}
    assert usage == {("eu", "udp"): (3, 3), ("eu", ""): (1, 0)}
    assert run_named(store, "relay-usage", "1d", ("region",)) == [
        {"region": "eu", "calls": 3, "relayed": 2, "relayed_share": 0.6667}]
    with pytest.raises(InvalidInput, match="unknown dimension 'hour'"):
        run_named(store, "relay-usage", "7d", ("hour",))


def test_a_call_counts_once_across_its_segments_and_days(store: ChdbSink) -> None:
    """The views carry distinct-call states: combining groups, segments or days never adds a call twice."""
    from datetime import timedelta

    now = datetime.now(UTC)
    base = {"tenant": "default", "call_id": "seg-call", "ingested_at": now, "source_format": "telnyx",
            "client_region": "eu", "turn_region": "eu", "client_country": "DE"}
    store.insert("calls", [
        {**base, "segment": 0, "report_id": "r0", "event_time": now - timedelta(days=1), "path_class": "relay-udp",
         "relay_protocol": "udp"},
        {**base, "segment": 1, "report_id": "r1", "event_time": now, "path_class": "relay-tcp",
         "relay_protocol": "tcp"},
    ])
    assert run_named(store, "relay-usage", "7d", ("region",)) == [
        {"region": "eu", "calls": 1, "relayed": 1, "relayed_share": 1}]
    [fallback] = run_named(store, "tcp-tls-fallback", "7d")
    assert (fallback["relayed"], fallback["tcp_tls"]) == (1, 1)
    assert run_named(store, "path-mix", "7d", ("day",))[0]["calls"] == 1
