"""The dashboard model, the macro expansion and the Grafana rendering, without a store."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli_root import main
from collector.errors import InvalidInput
from dashboards.catalog import DASHBOARDS, dashboard
from dashboards.cli import write_bundle
from dashboards.grafana import CLICKHOUSE_TYPE, render
from dashboards.macros import ALL, conditional_all, expand, interval_for, substitute, time_macros

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)


# --- macros: the plugin's exact formats -------------------------------------------------------

def test_time_macros_use_the_plugins_formats() -> None:
    sql = ("SELECT $__timeInterval(minute) AS t FROM x WHERE $__timeFilter(minute) AND $__dateFilter(day) "
           "AND at >= $__fromTime AND at <= $__toTime AND $__timeFilter_ms(at) GROUP BY t LIMIT $__interval_s")
    out = time_macros(sql, T0, T1, 300)
    f, t = int(T0.timestamp()), int(T1.timestamp())
    assert out == (
        f"SELECT toStartOfInterval(toDateTime(minute), INTERVAL 300 second) AS t FROM x WHERE "
        f"minute >= toDateTime({f}) AND minute <= toDateTime({t}) AND "
        f"day >= toDate('2026-11-26') AND day <= toDate('2026-11-26') AND "
        f"at >= toDateTime({f}) AND at <= toDateTime({t}) AND "
        f"at >= fromUnixTimestamp64Milli({f * 1000}) AND at <= fromUnixTimestamp64Milli({t * 1000}) "
        f"GROUP BY t LIMIT 300")


def test_the_interval_is_at_least_one_second() -> None:
    assert time_macros("$__interval_s", T0, T1, 0.2) == "1"


@pytest.mark.parametrize("sql", ["$__timeFilter(a, b)", "$__unknownMacro", "$__timeFilter(a"])
def test_macros_icewatch_does_not_expand_are_refused(sql: str) -> None:
    with pytest.raises(InvalidInput):
        time_macros(sql, T0, T1, 60)


def test_conditional_all_drops_the_condition_for_all_or_nothing() -> None:
    sql = "a AND $__conditionalAll(region IN (${region:singlequote}), $region) AND b"
    assert conditional_all(sql, {"region": [ALL]}) == "a AND 1=1 AND b"
    assert conditional_all(sql, {"region": []}) == "a AND 1=1 AND b"
    assert conditional_all(sql, {"region": ["eu"]}) == "a AND region IN (${region:singlequote}) AND b"
    # as in the plugin: a variable the dashboard does not know keeps the condition
    assert conditional_all(sql, {}) == "a AND region IN (${region:singlequote}) AND b"


def test_conditional_all_reads_nested_parentheses_and_several_macros() -> None:
    sql = ("$__conditionalAll(f(x, y) IN (${a:singlequote}), ${a}) AND "
           "$__conditionalAll(g IN (${b:singlequote}), $b)")
    assert conditional_all(sql, {"a": ["1"], "b": [ALL]}) == "f(x, y) IN (${a:singlequote}) AND 1=1"


def test_values_are_quoted_and_cannot_end_the_literal() -> None:
    sql = "x IN (${v:singlequote})"
    assert substitute(sql, {"v": ["eu", "us-east"]}, {}) == "x IN ('eu','us-east')"
    assert substitute(sql, {"v": ["o'brien"]}, {}) == "x IN ('o\\'brien')"
    assert substitute(sql, {"v": ["ends\\"]}, {}) == "x IN ('ends\\\\')"
    assert substitute(sql, {"v": [ALL]}, {"v": ["a", "b"]}) == "x IN ('a','b')"
    assert substitute(sql, {"v": []}, {}) == "x IN ('')"


@pytest.mark.parametrize("sql", ["x = $v", "x = ${v}", "x = ${v:csv}", "x = ${nope:singlequote}"])
def test_other_reference_forms_and_unknown_variables_are_refused(sql: str) -> None:
    with pytest.raises(InvalidInput):
        substitute(sql, {"v": ["a"]}, {})


def test_expand_runs_the_three_steps_in_the_plugins_order() -> None:
    sql = ("SELECT 1 FROM t WHERE $__timeFilter(m) AND $__conditionalAll(r IN (${r:singlequote}), $r) "
           "AND tenant = ${tenant:singlequote}")
    out = expand(sql, start=T0, end=T1, interval_s=60, selected={"r": ["eu"], "tenant": ["default"]})
    assert out == (f"SELECT 1 FROM t WHERE m >= toDateTime({int(T0.timestamp())}) AND "
                   f"m <= toDateTime({int(T1.timestamp())}) AND r IN ('eu') AND tenant = 'default'")
    with pytest.raises(InvalidInput):
        expand(sql, start=T1, end=T0, interval_s=60, selected={"r": ["eu"], "tenant": ["x"]})


def test_interval_for_gives_round_steps() -> None:
    assert interval_for(T0, T1) == 120  # 6 h / 240 points = 90 s -> 2 min
    assert interval_for(T0, T0.replace(hour=10, minute=15)) == 60
    assert interval_for(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)) >= 86400


# --- the catalog --------------------------------------------------------------------------------

_REF = re.compile(r"\$\{(\w+):singlequote\}|\$(?!__)(\w+)")
_SOURCE = re.compile(r"\b(?:FROM|(?<!ARRAY )JOIN)\s+([a-z_]+)", re.IGNORECASE)
ROLLUPS_AND_VIEWS = {"call_minute", "rtt_band_minute", "ingest_minute", "turn_server_minute", "probe_minute",
                     "turn_sessions", "relay_distance_daily", "tcp_tls_fallback_daily", "relay_usage_daily",
                     "candidate_mix_by_sdk", "turn_session_summary", "call_turn_sessions"}
# Detail tables a panel may read because no rollup keeps what it shows (and the reason)
DETAIL_READERS = {
    ("icewatch-overview", "candidate_errors"): "no rollup keeps candidate errors",
    ("icewatch-overview", "rtt_bands"): "rtt_band_minute's exact sample sets are too costly to merge over a day",
    ("icewatch-overview", "mos"): "MOS is per call",
    ("icewatch-overview", "diagnosis_mix"): "the diagnosis is per call",
    ("icewatch-overview", "problem_calls"): "a list of calls",
    ("icewatch-turn", "probe_latency"): "probe_minute has no latency",
    ("icewatch-relay-distance", "distance_distribution"): "no rollup keeps per-call distances",
    ("icewatch-relay-distance", "sent_far"): "client networks are per call",
    ("icewatch-self", "dead_letters"): "dead letters have no rollup",
}


def test_uids_panel_keys_and_titles_are_unique() -> None:
    assert len({d.uid for d in DASHBOARDS}) == len(DASHBOARDS) == 5
    for d in DASHBOARDS:
        keys = [p.key for p in d.panels()]
        assert len(set(keys)) == len(keys), d.uid
        assert all(p.title for p in d.panels())


def test_every_variable_a_panel_uses_is_declared_and_every_link_lands() -> None:
    uids = {d.uid for d in DASHBOARDS}
    for d in DASHBOARDS:
        declared = {v.name for v in d.variables}
        for text in [p.sql for p in d.panels()] + [v.sql for v in d.variables]:
            used = {m.group(1) or m.group(2) for m in _REF.finditer(text)}
            assert used <= declared, (d.uid, used - declared)
        for link in d.links:
            assert link.dashboard in uids and link.dashboard != d.uid
        for p in d.panels():
            for dl in p.links:
                assert dl.var in {v.name for v in dashboard(dl.dashboard).variables}
                assert re.search(rf"\b{dl.column}\b", p.sql), (p.key, dl.column)


def test_panels_read_rollups_and_views_and_detail_tables_only_where_none_exists() -> None:
    for d in DASHBOARDS:
        for p in d.panels():
            if not p.sql:
                assert p.metric and p.promql
                continue
            sources = set(_SOURCE.findall(p.sql)) - {"select"}
            detail = sources - ROLLUPS_AND_VIEWS
            if d.uid == "icewatch-call":
                continue  # one call's detail is the point of the drill-down
            assert not detail or (d.uid, p.key) in DETAIL_READERS, (d.uid, p.key, detail)


def test_every_panel_but_the_drilldown_is_bounded_by_the_time_range() -> None:
    for d in DASHBOARDS:
        for p in d.panels():
            if p.sql and d.uid != "icewatch-call":
                assert "$__timeFilter(" in p.sql or "$__dateFilter(" in p.sql, (d.uid, p.key)


def test_rows_fit_the_grid() -> None:
    for d in DASHBOARDS:
        for p in d.panels():
            assert 1 <= p.width <= 24 and p.height >= 3


# --- Grafana rendering ----------------------------------------------------------------------------

def test_a_rendered_dashboard_carries_the_panels_sql_and_variables() -> None:
    d = dashboard("icewatch-overview")
    doc = render(d)
    assert doc["uid"] == d.uid and doc["title"] == d.title and doc["schemaVersion"] == 41
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert [p["title"] for p in panels] == [p.title for p in d.panels()]
    ids = [p["id"] for p in doc["panels"]]
    assert len(set(ids)) == len(ids)
    for rendered, p in zip(panels, d.panels(), strict=True):
        target = rendered["targets"][0]
        assert target["datasource"]["type"] == CLICKHOUSE_TYPE and target["editorType"] == "sql"
        assert target["rawSql"] == p.sql
        assert target["format"] == (0 if p.kind == "timeseries" else 1)
        assert rendered["type"] == p.kind
        assert rendered["fieldConfig"]["defaults"]["unit"] == p.unit
    assert [v["name"] for v in doc["templating"]["list"]] == [v.name for v in d.variables]
    assert doc["annotations"] == {"list": []}
    problem = next(p for p in panels if p["title"] == "Recent calls with a problem")
    link = problem["fieldConfig"]["overrides"][0]["properties"][0]["value"][0]["url"]
    assert link.startswith("/d/icewatch-call?var-call_id=${__data.fields.call_id}")


def test_the_committed_bundle_is_what_build_writes(tmp_path: Path) -> None:
    """deploy/grafana is generated: a change to dashboards/ must come with `icewatch dashboards build`."""
    written = write_bundle(tmp_path)
    committed = REPO / "deploy" / "grafana"
    for path in written:
        rel = path.relative_to(tmp_path)
        assert (committed / rel).read_text() == path.read_text(), f"{rel} is stale: run icewatch dashboards build"
    assert {p.name for p in (committed / "dashboards").glob("*.json")} == {f"{d.uid}.json" for d in DASHBOARDS}


def test_the_build_command(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["dashboards", "build", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "dashboards" / "icewatch-turn.json").exists()
    assert (tmp_path / "provisioning" / "datasources" / "icewatch.yaml").read_text().count("$ICEWATCH_") == 1
    helped = CliRunner().invoke(main, ["dashboards", "push", "--help"])
    assert helped.exit_code == 0 and "Example" in helped.output
