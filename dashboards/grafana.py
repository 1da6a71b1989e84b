"""The dashboard model rendered as Grafana dashboard JSON (schema of Grafana 11.6) with Grafana's own
dashboards-as-code library, grafana-foundation-sdk, plus the provisioning files that load them.

The SDK has no query type for the ClickHouse plugin; ``ClickHouseQuery`` is the plugin's query
model (grafana-clickhouse-datasource v4: editorType, rawSql, format 0 = time series / 1 = table).
Panels on icewatch's own metrics query a Prometheus datasource instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.catalog import DASHBOARDS
from dashboards.model import Dashboard, Panel, Variable
from dashboards.push import CLICKHOUSE_PLUGIN, clickhouse_datasource

CLICKHOUSE_TYPE = CLICKHOUSE_PLUGIN  # the plugin's type id (its one home: push.py)
CLICKHOUSE_UID = "icewatch-clickhouse"
PROMETHEUS_UID = "icewatch-prometheus"
FOLDER_UID = "icewatch"
FOLDER_TITLE = "icewatch"
FORMAT_TIME_SERIES, FORMAT_TABLE = 0, 1


class ClickHouseQuery(cogvariants.Dataquery, cogbuilder.Builder[cogvariants.Dataquery]):
    """A target of the ClickHouse datasource plugin in SQL-editor mode."""

    def __init__(self, ref_id: str, sql: str, time_series: bool) -> None:
        self.ref_id = ref_id
        self.sql = sql
        self.time_series = time_series

    def build(self) -> ClickHouseQuery:
        return self

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": {"type": CLICKHOUSE_TYPE, "uid": CLICKHOUSE_UID},
            "editorType": "sql",
            "format": FORMAT_TIME_SERIES if self.time_series else FORMAT_TABLE,
            "queryType": "timeseries" if self.time_series else "table",
            "rawSql": self.sql,
        }


PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | table.Panel


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> dashboard.ThresholdsConfig:
    return (dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=v, color=c) for v, c in steps]))


def _drilldown_url(target: str, var: str, column: str) -> str:
    return f"/d/{target}?var-{var}=${{__data.fields.{column}}}&var-tenant=${{tenant}}&${{__url_time_range}}"


def _panel(p: Panel) -> PanelBuilder:
    b: PanelBuilder
    if p.kind == "timeseries":
        ts = timeseries.Panel().fill_opacity(20 if p.stacked else 8)
        if p.stacked:
            ts = ts.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        b = ts
    elif p.kind == "stat":
        b = (stat.Panel().graph_mode(common.BigValueGraphMode.NONE)
             .color_mode(common.BigValueColorMode.VALUE)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    elif p.kind == "bargauge":
        b = (bargauge.Panel().orientation(common.VizOrientation.HORIZONTAL)
             .display_mode(common.BarGaugeDisplayMode.BASIC)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(True)))
    else:
        b = table.Panel()
    b = b.title(p.title).unit(p.unit).height(p.height).span(p.width)
    if p.description:
        b = b.description(p.description)
    if p.thresholds:
        b = b.thresholds(_thresholds(p.thresholds))
    if p.metric:
        b = b.datasource(model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)).with_target(
            prometheus.Dataquery().expr(p.promql).instant().ref_id("A"))
    else:
        b = b.datasource(model.DataSourceRef(type_val=CLICKHOUSE_TYPE, uid=CLICKHOUSE_UID)).with_target(
            ClickHouseQuery("A", p.sql, p.is_timeseries))
    for link in p.links:
        b = b.override_by_name(link.column, [model.DynamicConfigValue(id_val="links", value=[
            {"title": link.title, "url": _drilldown_url(link.dashboard, link.var, link.column)}])])
    return b


def _variable(v: Variable) -> cogbuilder.Builder[model.VariableModel]:
    if v.kind == "textbox":
        return dashboard.TextBoxVariable(v.name).label(v.label).default_value(v.default)
    q = (dashboard.QueryVariable(v.name).label(v.label)
         .datasource(model.DataSourceRef(type_val=CLICKHOUSE_TYPE, uid=CLICKHOUSE_UID))
         .query(v.sql).refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
         .multi(v.multi).include_all(v.include_all).sort(model.VariableSort.ALPHABETICAL_ASC))
    if v.include_all:
        q = q.current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    elif v.default:
        q = q.current(model.VariableOption(selected=True, text=v.default, value=v.default))
    return q


def render(d: Dashboard) -> dict[str, Any]:
    """One dashboard as Grafana JSON (the ``dashboard`` object of the HTTP API and of file provisioning)."""
    b = (dashboard.Dashboard(d.title).uid(d.uid).description(d.description).tags(list(d.tags))
         .editable().time(d.time_from, "now").timezone("browser").tooltip(model.DashboardCursorSync.CROSSHAIR))
    if d.refresh:
        b = b.refresh(d.refresh)
    for v in d.variables:
        b = b.with_variable(_variable(v))
    for link in d.links:
        b = b.link(dashboard.DashboardLink(link.title).type(model.DashboardLinkType.LINK)
                   .url(f"/d/{link.dashboard}").keep_time(link.keep_time).include_vars(link.keep_vars))
    ids = iter(range(1, 1000))  # Grafana needs a unique id per panel and row
    for row in d.rows:
        b = b.with_row(dashboard.Row(row.title).id(next(ids)))
        for p in row.panels:
            b = b.with_panel(_panel(p).id(next(ids)))
    doc: dict[str, Any] = json.loads(json.dumps(b.build(), cls=JSONEncoder))
    # the SDK's rough edges (research/grafana_alerting.md): an empty annotations object without its
    # list, and interval-variable fields written on query variables
    doc["annotations"] = {"list": doc.get("annotations", {}).get("list", [])}
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            for key in ("auto", "auto_min", "auto_count"):
                var.pop(key, None)
    return doc


@dataclass(frozen=True)
class ClickHouseConnection:
    """Where Grafana finds ClickHouse (the provisioned or pushed datasource)."""

    host: str = "clickhouse"
    port: int = 9000
    protocol: Literal["native", "http"] = "native"
    secure: bool = False
    username: str = "default"
    database: str = "default"

    def datasource(self, password: str | None = None) -> dict[str, Any]:
        """The datasource in the shape of Grafana's HTTP API (POST /api/datasources)."""
        return clickhouse_datasource(uid=CLICKHOUSE_UID, name="icewatch ClickHouse", host=self.host, port=self.port,
                                     protocol=self.protocol, secure=self.secure, username=self.username,
                                     database=self.database, password=password)


def datasource_provisioning(ch: ClickHouseConnection, prometheus_url: str = "http://prometheus:9090") -> dict[str, Any]:
    """provisioning/datasources/icewatch.yaml (apiVersion 1): ClickHouse (its password read from
    $ICEWATCH_CLICKHOUSE_PASSWORD when Grafana starts; never written here) and the Prometheus that
    scrapes icewatch's /metrics (for the panels on icewatch itself)."""
    clickhouse = {**ch.datasource(password="$ICEWATCH_CLICKHOUSE_PASSWORD"), "editable": False}
    prom = {"name": "icewatch Prometheus", "type": "prometheus", "uid": PROMETHEUS_UID, "access": "proxy",
            "url": prometheus_url, "editable": False, "jsonData": {"timeInterval": "15s"}}
    return {"apiVersion": 1, "datasources": [clickhouse, prom]}


def dashboard_provisioning(path: str = "/var/lib/grafana/dashboards/icewatch") -> dict[str, Any]:
    """provisioning/dashboards/icewatch.yaml: a file provider reading the rendered JSON."""
    return {"apiVersion": 1, "providers": [{
        "name": "icewatch", "orgId": 1, "folder": FOLDER_TITLE, "folderUid": FOLDER_UID, "type": "file",
        "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 60,
        "options": {"path": path, "foldersFromFilesStructure": False}}]}


def render_all() -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON, for every shipped dashboard."""
    return {d.uid: render(d) for d in DASHBOARDS}
