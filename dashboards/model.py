"""The one dashboard model: dashboards, rows, panels, variables and links, rendered two ways
(Grafana JSON in dashboards/grafana.py, the built-in pages in dashboards/pages/).

A panel's SQL is written for the Grafana ClickHouse datasource: it may use the plugin's macros
($__timeFilter, $__timeInterval, $__fromTime, $__toTime, $__interval_s, $__dateFilter,
$__conditionalAll) and dashboard variables (${name:singlequote}); dashboards/macros.py expands them
exactly as the plugin does, for the built-in pages and the tests.

What a panel's query returns, by kind (checked by tests/integration/test_dashboards_data.py):
  timeseries  columns: time (DateTime), then at most one String column naming the series (long
              form; Grafana turns it into one series per value), then numeric columns
  stat        one row of numeric columns
  bargauge    a String column (the bar's name) then numeric columns, one row per bar
  table       any columns
A panel with ``metric`` instead of ``sql`` shows one of icewatch's own Prometheus metrics
(Grafana: a Prometheus datasource; built-in pages: the running process's registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PanelKind = Literal["timeseries", "stat", "bargauge", "table"]
VariableKind = Literal["query", "textbox"]

# Grafana's green/yellow/orange/red, and the RTT bands of DOMAIN.md (ms)
RTT_THRESHOLDS: tuple[tuple[float | None, str], ...] = (
    (None, "green"), (150.0, "yellow"), (300.0, "orange"), (400.0, "red"))


@dataclass(frozen=True)
class DataLink:
    """A click on a value of ``column`` opens dashboard ``dashboard`` with ``var`` set to it."""

    title: str
    dashboard: str
    column: str
    var: str


@dataclass(frozen=True)
class Panel:
    key: str  # stable within its dashboard: the built-in API and the tests address panels by it
    title: str
    kind: PanelKind
    sql: str = ""
    metric: str = ""  # a Prometheus metric family of icewatch itself (instead of sql)
    promql: str = ""  # its Grafana expression
    unit: str = "short"  # Grafana unit id: short, percentunit, ms, s, bytes, km (custom suffix)
    description: str = ""
    thresholds: tuple[tuple[float | None, str], ...] = ()
    width: int = 12  # of 24 grid columns
    height: int = 8
    links: tuple[DataLink, ...] = ()
    stacked: bool = False

    @property
    def is_timeseries(self) -> bool:
        return self.kind == "timeseries"


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str  # referenced as ${name:singlequote} and in $__conditionalAll(..., $name)
    label: str
    kind: VariableKind = "query"
    sql: str = ""  # query variables: one String column of values (macros allowed)
    multi: bool = True
    include_all: bool = True
    default: str = ""  # textbox: the initial text; query: "" means All (or the first value)


@dataclass(frozen=True)
class Link:
    title: str
    dashboard: str  # uid
    keep_time: bool = True
    keep_vars: bool = True


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    links: tuple[Link, ...] = ()
    tags: tuple[str, ...] = ("icewatch",)
    time_from: str = "now-6h"
    refresh: str = "1m"

    def panels(self) -> tuple[Panel, ...]:
        return tuple(p for row in self.rows for p in row.panels)

    def panel(self, key: str) -> Panel:
        for p in self.panels():
            if p.key == key:
                return p
        raise KeyError(key)

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)
