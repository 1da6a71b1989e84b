"""What a built-in page's panel shows: its SQL expanded the way Grafana does (dashboards/macros.py)
for one time range and variable selection, run on the store with its column types, with bounds on
the work one request can ask for. Framework free: routes.py (Starlette) calls it.

Bounds: a range of at most 400 days, at most 64 values per variable, values of at most 256
characters, and every statement runs with ``QUERY_SETTINGS`` (a time limit and a cap on result rows;
ClickHouse stops at the block where the cap is crossed, so the rows are cut to the cap here too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prometheus_client import CollectorRegistry

from collector.auth import check_tenant
from collector.errors import InvalidInput, NotPermitted
from dashboards.macros import ALL, conditional_all, expand, interval_for
from dashboards.model import Dashboard, Panel, Variable
from processors.store.sink import Sink, Table

MAX_RANGE = timedelta(days=400)
MAX_VALUES = 64  # per variable
MAX_VALUE_LEN = 256
MAX_ROWS = 5000  # per panel
MAX_OPTIONS = 1000  # per query variable
QUERY_SETTINGS: Mapping[str, int | str] = {
    "max_execution_time": 20,
    "max_result_rows": MAX_ROWS,
    "result_overflow_mode": "break",
}

_REF = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(?!__)(\w+)")
_RELATIVE = re.compile(r"^now(?:-(\d{1,6})([smhdwMy]))?(?:/([smhdwMy]))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
_TZ = re.compile(r"DateTime(?:64)?\((?:\d+\s*,\s*)?'([^']+)'\)")


# ---------------------------------------------------------------------------------------- time


def parse_time(text: str, now: datetime, path: str) -> datetime:
    """Grafana's forms: ``now``, ``now-6h`` (s m h d w M y), ``now/d``; epoch milliseconds; ISO 8601."""
    text = text.strip()
    m = _RELATIVE.match(text)
    if m is not None:
        t = now
        if m.group(1):
            t = now - timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)])
        if m.group(3):  # rounded down to the unit (d: midnight UTC)
            step = _UNIT_S[m.group(3)]
            t = datetime.fromtimestamp(int(t.timestamp()) // step * step, UTC)
        return t
    if text.isdigit() and len(text) <= 15:
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"not a time: {text[:40]!r} (now, now-6h, epoch milliseconds or ISO 8601)",
                           path) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def time_range(start_text: str | None, end_text: str | None, default_from: str = "now-6h",
               now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or datetime.now(UTC)
    start = parse_time(start_text or default_from, now, "from")
    end = parse_time(end_text or "now", now, "to")
    if end <= start:
        raise InvalidInput("the time range ends before it starts", "to")
    if end - start > MAX_RANGE:
        raise InvalidInput(f"the time range is longer than {MAX_RANGE.days} days", "from")
    return start, end


# ----------------------------------------------------------------------------------- variables


def _check_values(name: str, values: Sequence[str]) -> list[str]:
    if len(values) > MAX_VALUES:
        raise InvalidInput(f"at most {MAX_VALUES} values per variable", f"var-{name}")
    for v in values:
        if len(v) > MAX_VALUE_LEN:
            raise InvalidInput(f"a value is longer than {MAX_VALUE_LEN} characters", f"var-{name}")
    return list(values)


class _Query:
    """One request's view of a dashboard: the range, the selection, each query variable's options
    (run at most once)."""

    def __init__(self, sink: Sink, dashboard: Dashboard, start: datetime, end: datetime,
                 given: Mapping[str, Sequence[str]], forced_tenant: str | None) -> None:
        self.sink, self.dashboard, self.start, self.end = sink, dashboard, start, end
        self.interval_s = interval_for(start, end)
        self._options: dict[str, list[str]] = {}
        known = {v.name for v in dashboard.variables}
        for name in given:
            if name not in known:
                raise InvalidInput(f"dashboard {dashboard.uid!r} has no variable {name!r}", f"var-{name}")
        self.selected: dict[str, list[str]] = {}
        for var in dashboard.variables:
            self.selected[var.name] = self._select(var, _check_values(var.name, given.get(var.name, ())),
                                                   forced_tenant)

    def _select(self, var: Variable, values: list[str], forced_tenant: str | None) -> list[str]:
        values = [v for v in values if v != ""] if var.kind == "query" else values
        if var.name == "tenant":
            if forced_tenant is not None:
                if values not in ([], [forced_tenant]):
                    raise NotPermitted(f"this API key reads tenant {forced_tenant!r} only", "var-tenant")
                values = [forced_tenant]
            values = values or [var.default or "default"]
            if len(values) != 1:
                raise InvalidInput("one tenant at a time", "var-tenant")
            check_tenant(values[0], "var-tenant")
            return values
        if var.kind == "textbox":
            if len(values) > 1:
                raise InvalidInput("a text variable takes one value", f"var-{var.name}")
            return values or [var.default]
        if ALL in values:
            if not var.include_all:
                raise InvalidInput(f"variable {var.name!r} has no All option", f"var-{var.name}")
            return [ALL]
        if len(values) > 1 and not var.multi:
            raise InvalidInput(f"variable {var.name!r} takes one value", f"var-{var.name}")
        if values:
            return values
        if var.default:
            return [var.default]
        return [ALL] if var.include_all else []  # no All: the first option, once options are known

    def fill_first(self) -> None:
        for var in self.dashboard.variables:
            if var.kind == "query" and not self.selected[var.name]:
                first = self.options(var.name)[:1]
                self.selected[var.name] = first

    def options(self, name: str, stack: tuple[str, ...] = ()) -> list[str]:
        """Every value a query variable offers for this range and selection (its SQL's first column)."""
        if name in self._options:
            return self._options[name]
        if name in stack:
            raise InvalidInput(f"variables {' -> '.join((*stack, name))} depend on each other", "sql")
        var = self.dashboard.variable(name)
        if var.kind != "query" or not var.sql:
            return []
        table = self.run(var.sql, (*stack, name))
        values: list[str] = []
        for row in table.rows[:MAX_OPTIONS]:
            if row and row[0] is not None and str(row[0]) not in values:
                values.append(str(row[0]))
        self._options[name] = values
        return values

    def run(self, sql: str, stack: tuple[str, ...] = ()) -> Table:
        """Expand (All expanded to every option where $__conditionalAll does not drop it) and run."""
        all_refs = {m.group(1) or m.group(2) for m in _REF.finditer(conditional_all(sql, self.selected))}
        options = {n: self.options(n, stack) for n in sorted(all_refs)
                   if self.selected.get(n) == [ALL]}
        expanded = expand(sql, start=self.start, end=self.end, interval_s=self.interval_s,
                          selected=self.selected, options=options)
        return self.sink.query_table(expanded, QUERY_SETTINGS)


def variable_values(sink: Sink, dashboard: Dashboard, name: str, start: datetime, end: datetime,
                    selected: Mapping[str, Sequence[str]], forced_tenant: str | None = None) -> dict[str, Any]:
    """``{"name", "values": [...], "include_all", "multi", "selected": [...]}`` of one variable.
    KeyError when the dashboard has no such variable; InvalidInput for bad input (NotPermitted: another
    tenant)."""
    var = dashboard.variable(name)
    q = _Query(sink, dashboard, start, end, selected, forced_tenant)
    q.fill_first()
    if var.name == "tenant" and forced_tenant is not None:
        values = [forced_tenant]
    elif var.kind == "query":
        values = q.options(name)
    else:
        values = []
    if var.name == "tenant" and q.selected["tenant"][0] not in values:
        values = [q.selected["tenant"][0], *values]  # the default tenant before it has data
    sel = q.selected[name] or values[:1]
    return {"name": name, "values": values, "include_all": var.include_all, "multi": var.multi, "selected": sel}


# -------------------------------------------------------------------------------------- panels


def _utc_text(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_value(value: Any, ctype: str) -> Any:
    """A value the page reads as is: times as ISO 8601 UTC, no NaN or infinity (JSON has neither)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str) and "DateTime" not in ctype:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):  # DateTime text of the embedded store: in the column's zone, else UTC
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            return value
        if t.tzinfo is None:
            m = _TZ.search(ctype)
            zone: Any = UTC
            if m is not None:
                try:
                    zone = ZoneInfo(m.group(1))
                except (ZoneInfoNotFoundError, ValueError):
                    zone = UTC
            t = t.replace(tzinfo=zone)
        return _utc_text(t)
    if isinstance(value, Decimal):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, UUID | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        inner = ctype[6:-1] if ctype.startswith("Array(") else ""
        return [_json_value(v, inner) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, "") for k, v in value.items()}
    return str(value)


def table_json(table: Table) -> dict[str, Any]:
    rows = table.rows[:MAX_ROWS]
    types = [t for _, t in table.columns]
    return {
        "columns": [{"name": n, "type": t} for n, t in table.columns],
        "rows": [[_json_value(v, types[i] if i < len(types) else "") for i, v in enumerate(r)] for r in rows],
        "truncated": len(table.rows) > MAX_ROWS or len(rows) == MAX_ROWS,
    }


def metric_table(registries: Iterable[CollectorRegistry], family: str) -> Table:
    """The current samples of one of icewatch's own metric families: (sample, labels, value), the
    sample named by its suffix (total, count, sum; ``value`` for a gauge).
    Histogram buckets and ``_created`` timestamps are left out: a table of them reads as noise."""
    rows: list[list[Any]] = []
    for registry in registries:
        for metric in registry.collect():
            if metric.name != family and not any(s.name == family for s in metric.samples):
                continue
            for s in metric.samples:
                if s.name.endswith(("_created", "_bucket")):
                    continue
                labels = ", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                suffix = s.name[len(metric.name):].lstrip("_") if s.name.startswith(metric.name) else s.name
                rows.append([suffix or "value", labels, s.value])
    rows.sort(key=lambda r: (r[0], r[1]))
    return Table([("sample", "String"), ("labels", "String"), ("value", "Float64")], rows)


def panel_data(sink: Sink, dashboard: Dashboard, panel_key: str, start: datetime, end: datetime,
               selected: Mapping[str, Sequence[str]], *, forced_tenant: str | None = None,
               registries: Sequence[CollectorRegistry] = ()) -> dict[str, Any]:
    """``{"columns": [{"name", "type"}], "rows": [[...]], "truncated"}`` of one panel.

    ``selected``: the request's values per variable (absent: the variable's default; ``$__all``:
    All). ``forced_tenant``: the API key's app; another tenant raises NotPermitted. KeyError when the
    dashboard has no such panel; InvalidInput for bad input; the store's own errors pass through.
    """
    panel: Panel = dashboard.panel(panel_key)
    if end <= start:
        raise InvalidInput("the time range ends before it starts", "to")
    if end - start > MAX_RANGE:
        raise InvalidInput(f"the time range is longer than {MAX_RANGE.days} days", "from")
    q = _Query(sink, dashboard, start, end, selected, forced_tenant)
    if panel.metric:
        return table_json(metric_table(registries, panel.metric))
    q.fill_first()
    return table_json(q.run(panel.sql))
