"""The strict dashboard validator (deploy/tools/grafana-validate) on a dashboard built with Grafana's
Python foundation SDK, on broken variants of it, and on every generated dashboard (``*.json`` under
dashboards/grafana/ and deploy/grafana/dashboards/, where ``icewatch dashboards build`` writes them).
Problems from Grafana's schema (the Go foundation SDK) are prefixed ``grafana:``, those from
icewatch's own checks ``icewatch:``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from tests.grafana_validator import REPO, ValidatorBuildError, validate, validator_binary

CLICKHOUSE = model.DataSourceRef(type_val="grafana-clickhouse-datasource", uid="ch")
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="prom")
GENERATED_DIRS = [
    d for d in (REPO / "dashboards" / "grafana", REPO / "deploy" / "grafana" / "dashboards") if d.is_dir()
]
GENERATED = sorted(p for d in GENERATED_DIRS for p in d.rglob("*.json"))


class _ClickHouseSql(cogvariants.Dataquery, cogbuilder.Builder[cogvariants.Dataquery]):
    """A ClickHouse plugin target in SQL-editor mode (the SDK has no ClickHouse query type)."""

    def build(self) -> _ClickHouseSql:
        return self

    def to_json(self) -> dict[str, object]:
        return {
            "refId": "A",
            "datasource": {"type": "grafana-clickhouse-datasource", "uid": "ch"},
            "editorType": "sql",
            "format": 0,
            "rawSql": "SELECT $__timeInterval(ts) AS t, avg(rtt_ms) FROM calls WHERE $__timeFilter(ts) GROUP BY t",
        }


def _sdk_dashboard() -> dict[str, Any]:
    """panels[0] a row, [1] a ClickHouse time series (id 1), [2] a Prometheus stat (id 2)."""
    built = (
        dashboard.Dashboard("Call quality")
        .uid("call-quality")
        .refresh("1m")
        .time("now-6h", "now")
        .with_row(dashboard.Row("Overview").id(3))
        .with_panel(
            timeseries.Panel()
            .id(1)
            .title("RTT")
            .datasource(CLICKHOUSE)
            .with_target(_ClickHouseSql())
            .unit("ms")
            .height(8)
            .span(12)
        )
        .with_panel(
            stat.Panel()
            .id(2)
            .title("Collector up")
            .datasource(PROMETHEUS)
            .with_target(prometheus.Dataquery().expr("up").ref_id("A"))
            .height(8)
            .span(12)
        )
        .with_variable(dashboard.QueryVariable("region").label("Region").datasource(CLICKHOUSE).query("SELECT 1"))
        .build()
    )
    doc: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(built))
    return doc


DELETE = object()

# (path into the SDK-built dashboard, new value or DELETE, the expected problem line without "FILE: ")
BROKEN: dict[str, tuple[tuple[str | int, ...], object, str]] = {
    "refresh-number": (("refresh",), 5, "grafana: refresh: json: cannot unmarshal number into Go value of type string"),
    "gridpos-w-string": (
        ("panels", 1, "gridPos", "w"),
        "x",
        "grafana: panels[1].gridPos.w: json: cannot unmarshal string",
    ),
    "unknown-top-level-field": (("owner",), "sre", "grafana: Dashboard: unexpected field 'owner'"),
    "unknown-panel-field": (("panels", 1, "bogus"), 1, "grafana: panels[1].Panel: unexpected field 'bogus'"),
    "stat-options-incomplete": (
        ("panels", 2, "options"),
        {},
        "grafana: panels[2].options.reduceOptions: required field is missing from input",
    ),
    "no-schema-version": (("schemaVersion",), DELETE, "grafana: schemaVersion: required field is missing from input"),
    "no-dashboard-title": (("title",), DELETE, "icewatch: dashboard title is missing or empty"),
    "empty-uid": (("uid",), "", "icewatch: dashboard uid is missing or empty"),
    "empty-panel-title": (("panels", 1, "title"), "", "icewatch: panels[1]: panel title is missing or empty"),
    "empty-row-title": (("panels", 0, "title"), "", "icewatch: panels[0]: panel title is missing or empty"),
    "duplicate-panel-id": (("panels", 2, "id"), 1, "icewatch: panels[2]: panel id 1 already used by panels[1]"),
    "row-id-reused": (("panels", 0, "id"), 2, "icewatch: panels[2]: panel id 2 already used by panels[0]"),
    "wider-than-grid": (
        ("panels", 2, "gridPos", "x"),
        13,
        "icewatch: panels[2]: gridPos x=13 w=12 does not fit the 24-column grid",
    ),
    "negative-x": (
        ("panels", 1, "gridPos", "x"),
        -1,
        "icewatch: panels[1]: gridPos x=-1 w=12 does not fit the 24-column grid",
    ),
    "clickhouse-no-rawsql": (
        ("panels", 1, "targets", 0, "rawSql"),
        DELETE,
        "icewatch: panels[1].targets[0]: ClickHouse target rawSql is missing or empty",
    ),
    "clickhouse-blank-rawsql": (
        ("panels", 1, "targets", 0, "rawSql"),
        "",
        "icewatch: panels[1].targets[0]: ClickHouse target rawSql is missing or empty",
    ),
    "clickhouse-builder-editor": (
        ("panels", 1, "targets", 0, "editorType"),
        "builder",
        'icewatch: panels[1].targets[0]: ClickHouse target editorType is "builder", want "sql"',
    ),
    "clickhouse-format-out-of-range": (
        ("panels", 1, "targets", 0, "format"),
        5,
        "icewatch: panels[1].targets[0]: ClickHouse target format must be an integer in 0..4, got 5",
    ),
    "clickhouse-format-string": (
        ("panels", 1, "targets", 0, "format"),
        "table",
        "icewatch: panels[1].targets[0]: ClickHouse target format must be an integer in 0..4, got table",
    ),
    # A target naming no datasource is the panel's: here the ClickHouse panel's, so rawSql is checked.
    "clickhouse-panel-datasource-only": (
        ("panels", 1, "targets", 0),
        {"refId": "A", "editorType": "sql", "format": 1},
        "icewatch: panels[1].targets[0]: ClickHouse target rawSql is missing or empty",
    ),
}

# Mistakes neither Grafana's Go SDK nor our checks catch (documented limits, see the report).
MISSED: dict[str, tuple[tuple[str | int, ...], object]] = {
    "misspelled-fieldconfig-key": (("panels", 1, "fieldConfig", "defaults", "unti"), "ms"),
    "unknown-clickhouse-target-field": (("panels", 1, "targets", 0, "rawSqll"), "SELECT 1"),
    "unknown-prometheus-target-field": (("panels", 2, "targets", 0, "exprr"), "up"),
    "unknown-panel-type": (("panels", 1, "type"), "timeserie"),
    "zero-height": (("panels", 1, "gridPos", "h"), 0),
}


def _mutated(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    doc = _sdk_dashboard()
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return doc


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def validator() -> Path:
    """The built validator; a failed build fails the tests with the build output."""
    try:
        return validator_binary()
    except ValidatorBuildError as exc:
        pytest.fail(f"the Grafana dashboard validator could not be built:\n{exc}", pytrace=False)


def test_sdk_built_dashboard_passes(validator: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, "good", _sdk_dashboard())
    result = validate([path])
    assert (result.returncode, result.stdout) == (0, f"{path}: ok\n"), result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_dashboard_fails_with_the_reason(validator: Path, tmp_path: Path, name: str) -> None:
    where, value, problem = BROKEN[name]
    path = _write(tmp_path, name, _mutated(where, value))
    result = validate([path])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), result.stdout
    assert any(line.startswith(f"{path}: {problem}") for line in lines), result.stdout


@pytest.mark.parametrize("name", sorted(MISSED))
def test_known_gaps_pass_unnoticed(validator: Path, tmp_path: Path, name: str) -> None:
    """Pins what the validator does not catch, so a change in coverage shows up here."""
    path = _write(tmp_path, name, _mutated(*MISSED[name]))
    result = validate([path])
    assert (result.returncode, result.stdout) == (0, f"{path}: ok\n"), result.stdout


def test_several_files_usage_and_unreadable(validator: Path, tmp_path: Path) -> None:
    good = _write(tmp_path, "good", _sdk_dashboard())
    bad = _write(tmp_path, "bad", _mutated(("uid",), ""))
    missing = tmp_path / "missing.json"
    not_json = tmp_path / "not.json"
    not_json.write_text("{", encoding="utf-8")
    result = validate([good, bad, missing, not_json])
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{good}: ok",
        f"{bad}: icewatch: dashboard uid is missing or empty",
        f"{missing}: open {missing}: no such file or directory",
        f"{not_json}: invalid JSON: unexpected end of JSON input",
    ]
    usage = validate([])
    assert usage.returncode == 2 and "usage: grafana-validate FILE..." in usage.stderr
    assert validate(["--strict", good]).returncode == 2


@pytest.mark.parametrize("path", GENERATED, ids=[str(p.relative_to(REPO)) for p in GENERATED])
def test_generated_dashboard_passes(validator: Path, path: Path) -> None:
    result = validate([path])
    assert (result.returncode, result.stdout) == (0, f"{path}: ok\n"), result.stdout + result.stderr


@pytest.mark.xfail(not GENERATED_DIRS, reason="dashboards/grafana not generated yet", strict=False)
def test_generated_dashboards_are_there() -> None:
    assert len(GENERATED) >= 5, f"{GENERATED_DIRS} hold {len(GENERATED)} dashboard JSON files, want at least 5"


def test_a_failed_build_is_an_error_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Go (and an empty cache) the helper raises with the script's advice; it never skips."""
    monkeypatch.setenv("ICEWATCH_CACHE", str(tmp_path))
    monkeypatch.setenv("GO", str(tmp_path / "no-go"))
    with pytest.raises(ValidatorBuildError, match=r"(?s)exit 1.*Go not found.*https://go.dev/dl/"):
        validator_binary.__wrapped__()
