"""Every panel of every dashboard against real data: the simulator's reports, coturn lines and probes
through the real ingest app and embedded pipeline into chDB; a normal hour, then turn-eu-1 down,
then Europe misrouted to the Asia-Pacific relay.

For each panel, its SQL expanded exactly as Grafana's ClickHouse plugin would for a fixed range and
interval runs, returns the columns and types its kind expects (dashboards/model.py), and is not
empty unless EMPTY_OK says why it may be. Panels are collected from the catalog, so a new panel is
covered (and must hold data) the moment it is added. The incidents show where they should.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.simulator.incidents import Conditions, conditions_at, parse_incident
from dashboards.catalog import DASHBOARDS, dashboard
from dashboards.macros import ALL, expand
from dashboards.model import Dashboard, Panel
from processors.service.metrics import ProcessorMetrics
from processors.store.sink import Table
from tests.simulated import Pipeline, simulated_pipeline

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START, END = NOW - timedelta(hours=2), NOW + timedelta(minutes=10)  # the fixture takes a while
INTERVAL_S = 60
NORMAL_END = NOW - timedelta(minutes=40)  # calls of the normal period end here
MISROUTE_END = NOW - timedelta(minutes=25)  # eu clients sent to turn-apac-1
DOWN_END = NOW - timedelta(minutes=10)  # turn-eu-1 down since the misroute period

# (dashboard uid, panel key) -> why it may be empty on this data
EMPTY_OK: dict[tuple[str, str], str] = {}


@dataclass
class Data:
    pipe: Pipeline
    call_id: str  # a relayed call matched to its TURN session
    error_call_id: str  # a call with candidate errors (a healthy relayed call has none)


def _relayed_call(pipe: Pipeline) -> str:
    rows = pipe.store.query("SELECT call_id FROM call_turn_sessions WHERE tenant = 'default' "
                            "ORDER BY matched_by DESC, call_id LIMIT 1")
    assert rows, "no relayed call was matched to a TURN session"
    return str(rows[0]["call_id"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    with simulated_pipeline(tmp_path_factory.mktemp("dashboards")) as pipe:
        for n, minute in enumerate(range(80, 40, -10)):  # a normal period, a round every 10 minutes
            pipe.feed("default", Conditions(), NOW - timedelta(minutes=minute), seed=100 + n, calls=40)
        pipe.feed("default", Conditions(), NORMAL_END, seed=1, calls=60)
        misroute = conditions_at((parse_incident("misroute:eu:turn-apac-1@0+600"),), 1.0)
        pipe.feed("default", misroute, MISROUTE_END, seed=2, calls=60)
        down = conditions_at((parse_incident("turn-down:turn-eu-1@0+600"),), 1.0)
        pipe.feed("default", down, DOWN_END, seed=3, calls=60)
        full = conditions_at((parse_incident("turn-down:turn-eu-1@0+600"),  # still down, and us-west full:
                              parse_incident("turn-quota:turn-us-west-1@0+600")), 1.0)  # failed allocations
        pipe.feed("default", full, DOWN_END, seed=4, calls=20)
        bad = pipe.client.post("/v1/call-reports", content=b'{"format": "w3c", "call_id": ',
                               headers={"Content-Type": "application/json"})
        assert bad.status_code == 400  # kept as a dead letter
        errors = pipe.store.query("SELECT call_id FROM candidate_errors WHERE tenant = 'default' "
                                  "ORDER BY call_id LIMIT 1")
        assert errors, "the outage gave no candidate error"
        yield Data(pipe, _relayed_call(pipe), str(errors[0]["call_id"]))


def selection(d: Dashboard, data: Data, panel: str = "") -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for v in d.variables:
        if v.name == "tenant":
            chosen[v.name] = ["default"]
        elif v.name == "call_id":
            chosen[v.name] = [data.error_call_id if panel == "candidate_errors" else data.call_id]
        else:
            chosen[v.name] = [ALL] if v.include_all else [v.default]
    return chosen


def run_panel(data: Data, d: Dashboard, p: Panel, chosen: dict[str, list[str]] | None = None) -> Table:
    sql = expand(p.sql, start=START, end=END, interval_s=INTERVAL_S, selected=chosen or selection(d, data, p.key))
    assert "$" not in sql.replace("$$", ""), sql  # nothing left unexpanded
    return data.pipe.store.query_table(sql, {"max_execution_time": 30})


def rows_of(table: Table) -> list[dict[str, Any]]:
    names = [name for name, _ in table.columns]
    return [dict(zip(names, row, strict=True)) for row in table.rows]


_NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*|Bool)\)?$")
_STRING = re.compile(r"^(Nullable\()?(LowCardinality\()?String\)?\)?$")
_TIME = re.compile(r"^(Nullable\()?DateTime(64)?(\(.*\))?\)?$")


def check_shape(p: Panel, table: Table) -> None:
    types = [t for _, t in table.columns]
    assert types, f"{p.key}: no columns"
    if p.kind == "timeseries":
        assert _TIME.match(types[0]), f"{p.key}: first column {types[0]}, not a time"
        rest = types[1:]
        if rest and _STRING.match(rest[0]):
            rest = rest[1:]  # long form: one series-name column
        assert rest and all(_NUMERIC.match(t) for t in rest), f"{p.key}: {types}"
    elif p.kind == "stat":
        assert all(_NUMERIC.match(t) for t in types), f"{p.key}: {types}"
        assert len(table.rows) == 1, f"{p.key}: {len(table.rows)} rows"
    elif p.kind == "bargauge":
        assert _STRING.match(types[0]) and types[1:] and all(_NUMERIC.match(t) for t in types[1:]), \
            f"{p.key}: {types}"


SQL_PANELS = [(d.uid, p.key) for d in DASHBOARDS for p in d.panels() if p.sql]


@pytest.mark.parametrize(("uid", "key"), SQL_PANELS, ids=[f"{u}/{k}" for u, k in SQL_PANELS])
def test_every_panel_runs_with_its_shape_and_data(data: Data, uid: str, key: str) -> None:
    d = dashboard(uid)
    p = d.panel(key)
    table = run_panel(data, d, p)
    check_shape(p, table)
    if (uid, key) not in EMPTY_OK:
        assert table.rows, f"{uid}/{key} is empty on simulated data"


@pytest.mark.parametrize("uid", [d.uid for d in DASHBOARDS])
def test_every_variable_offers_values(data: Data, uid: str) -> None:
    d = dashboard(uid)
    for v in d.variables:
        if v.kind != "query":
            continue
        sql = expand(v.sql, start=START, end=END, interval_s=INTERVAL_S, selected=selection(d, data))
        table = data.pipe.store.query_table(sql, {})
        assert len(table.columns) == 1 and _STRING.match(table.columns[0][1]), (v.name, table.columns)
        assert table.rows, f"{uid}: variable {v.name} offers nothing"


def test_every_metric_panel_names_a_metric_icewatch_exposes(data: Data) -> None:
    from collector.http_app import Ingest, IngestConfig

    ingest = Ingest(data.pipe.publisher, IngestConfig(api_keys={}, max_body_bytes=1024, hash_key=b"k"))
    names = {m.name for m in ProcessorMetrics().registry.collect()}
    names |= {m.name for m in ingest.registry.collect()}
    metric_panels = [p for d in DASHBOARDS for p in d.panels() if p.metric]
    assert metric_panels
    for p in metric_panels:
        assert p.metric in names, p.metric
        assert p.metric in p.promql, p.key


def test_the_turn_outage_shows_on_the_turn_fleet_dashboard(data: Data) -> None:
    d = dashboard("icewatch-turn")
    silence = {r["server_id"]: r for r in rows_of(run_panel(data, d, d.panel("log_silence")))}
    assert set(silence) >= {"turn-eu-1", "turn-us-east-1", "turn-apac-1"}
    # turn-eu-1 wrote nothing after the misroute period; the others logged until the outage period
    assert silence["turn-eu-1"]["silent_s"] >= (END - MISROUTE_END).total_seconds() - 120
    assert all(r["silent_s"] <= (END - DOWN_END).total_seconds() + 60
               for s, r in silence.items() if s != "turn-eu-1")
    success = rows_of(run_panel(data, d, d.panel("probe_success")))
    failing = {r["probe"].split()[0] for r in success if r["success"] < 1}
    assert failing == {"turn-eu-1", "turn-us-west-1"}  # down; full (its TURN probes get 486/508)
    codes = {(r["server_id"], r["error_code"]) for r in rows_of(run_panel(data, d, d.panel("alloc_failures_by_code")))}
    assert codes and {server for server, _ in codes} == {"turn-us-west-1"} and {c for _, c in codes} <= {486, 508}
    # narrowing to one server narrows every panel
    chosen = {**selection(d, data), "turn_server": ["turn-apac-1"]}
    heartbeat = rows_of(run_panel(data, d, d.panel("heartbeat"), chosen))
    assert heartbeat and {r["server_id"] for r in heartbeat} == {"turn-apac-1"}


def test_the_misroute_shows_on_the_relay_distance_dashboard(data: Data) -> None:
    d = dashboard("icewatch-relay-distance")
    matrix = rows_of(run_panel(data, d, d.panel("region_matrix")))
    eu_to_apac = [r for r in matrix if r["client_region"] == "eu" and r["turn_region"] == "apac"]
    assert eu_to_apac and eu_to_apac[0]["distant_calls"] > 0
    far_eu = rows_of(run_panel(data, d, d.panel("sent_far"), {**selection(d, data), "region": ["eu"]}))
    assert far_eu and all(r["turn_server"] == "turn-apac-1" for r in far_eu)
    only_us = {**selection(d, data), "region": ["us-east"]}
    assert not run_panel(data, d, d.panel("sent_far"), only_us).rows


def test_the_overview_counts_what_was_sent(data: Data) -> None:
    d = dashboard("icewatch-overview")
    calls = rows_of(run_panel(data, d, d.panel("calls")))[0]["calls"]
    sent = data.pipe.store.query("SELECT uniqExact(call_id) AS n FROM calls FINAL WHERE tenant = 'default'")[0]["n"]
    assert calls == sent == 4 * 40 + 3 * 60 + 20
    diagnoses = {r["diagnosis"] for r in rows_of(run_panel(data, d, d.panel("diagnosis_mix")))}
    assert "turn_unreachable" in diagnoses or "relay_unavailable" in diagnoses, diagnoses
    eu = rows_of(run_panel(data, d, d.panel("calls"), {**selection(d, data), "region": ["eu"]}))[0]["calls"]
    assert 0 < eu < calls


def test_the_drilldown_shows_one_call_and_its_turn_session(data: Data) -> None:
    d = dashboard("icewatch-call")
    summary = rows_of(run_panel(data, d, d.panel("summary")))
    assert summary and all(r["path_class"].startswith("relay") for r in summary)
    session = rows_of(run_panel(data, d, d.panel("turn_session")))
    assert len(session) == 1 and session[0]["server_id"] == summary[0]["turn_server_id"]
    other = {**selection(d, data), "call_id": ["no-such-call"]}
    assert not run_panel(data, d, d.panel("summary"), other).rows


def test_dead_letters_show_on_icewatch_itself(data: Data) -> None:
    d = dashboard("icewatch-self")
    rows = rows_of(run_panel(data, d, d.panel("dead_letters")))
    assert sum(r["dead_letters"] for r in rows) == 1
