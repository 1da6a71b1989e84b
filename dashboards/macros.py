"""Expand a panel's SQL the way Grafana and the ClickHouse datasource plugin (v4.x) do, for a fixed
time range, interval and variable selection.

Order, as in the plugin: in the browser, ``$__conditionalAll(cond, $var)`` first (``1=1`` when the
variable is empty or All), then the dashboard variables; on the backend, the time macros
(pkg/macros/macros.go). Formats are the plugin's:

  $__timeFilter(c)   c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)
  $__timeFilter_ms(c) c >= fromUnixTimestamp64Milli(<ms>) AND c <= fromUnixTimestamp64Milli(<ms>)
  $__dateFilter(c)   c >= toDate('YYYY-MM-DD') AND c <= toDate('YYYY-MM-DD')
  $__fromTime / $__toTime      toDateTime(<s>)
  $__interval_s      the interval in whole seconds, at least 1
  $__timeInterval(c) toStartOfInterval(toDateTime(c), INTERVAL <s> second)

Variables are referenced as ``${name:singlequote}`` (Grafana's format: each value quoted, comma
separated). One deliberate difference: Grafana escapes only the quote; here a backslash is escaped
too, so no value can end a string literal early. Any other reference form is refused, so a panel
cannot depend on formatting this module does not reproduce.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from collector.errors import InvalidInput

ALL = "$__all"  # Grafana's value for the All option

_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_VAR_IN_ARG = re.compile(r"(?<=\$\{)\w+(?=[}:])|(?<=\$)\w+")
_MACRO = re.compile(r"\$__(\w+)")


def _args(sql: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the call whose '(' is at ``open_at``, split on top-level commas; and the index
    after its ')'."""
    depth, start, out = 0, open_at + 1, []
    for i in range(open_at, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                out.append(sql[start:i])
                return out, i + 1
        elif ch == "," and depth == 1:
            out.append(sql[start:i])
            start = i + 1
    raise InvalidInput(f"unbalanced parentheses after position {open_at}", "sql")


def conditional_all(sql: str, selected: Mapping[str, Sequence[str]]) -> str:
    """``$__conditionalAll(cond, $var)`` -> cond, or 1=1 when $var is empty or All (right to left)."""
    macro = "$__conditionalAll("
    at = sql.rfind(macro)
    while at != -1:
        params, end = _args(sql, at + len(macro) - 1)
        if len(params) != 2:
            raise InvalidInput("$__conditionalAll takes a condition and a variable", "sql")
        phrase = params[0]
        m = _VAR_IN_ARG.search(params[1].strip())
        if m is not None and m.group(0) in selected:  # an unknown variable keeps the condition
            values = list(selected[m.group(0)])
            if not values or values == [ALL] or ",".join(values) in ("", ALL):
                phrase = "1=1"
        sql = sql[:at] + phrase + sql[end:]
        at = sql.rfind(macro)
    return sql


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def substitute(sql: str, selected: Mapping[str, Sequence[str]], options: Mapping[str, Sequence[str]]) -> str:
    """``${name:singlequote}``: the selected values (All -> every option), quoted and joined."""

    def one(m: re.Match[str]) -> str:
        name, fmt = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), None)
        if fmt != "singlequote":
            raise InvalidInput(f"variable {name!r}: write it as ${{{name}:singlequote}}", "sql")
        if name not in selected:
            raise InvalidInput(f"unknown variable {name!r}", "sql")
        values = list(selected[name])
        if values == [ALL]:
            values = list(options.get(name, ()))
        if not values:
            return "''"  # Grafana's singlequote of nothing; matches no row
        return ",".join(quote(v) for v in values)

    return _VAR.sub(one, sql)


def _unix(t: datetime) -> int:
    return int(t.astimezone(UTC).timestamp())


def _ms(t: datetime) -> int:
    return round(t.astimezone(UTC).timestamp() * 1000)


def time_macros(sql: str, start: datetime, end: datetime, interval_s: float) -> str:
    """The backend macros (pkg/macros/macros.go) for one range and interval."""
    step = max(int(interval_s), 1)
    out: list[str] = []
    pos = 0
    for m in _MACRO.finditer(sql):
        if m.start() < pos:
            continue
        name = m.group(1)
        after = m.end()
        args: list[str] = []
        if after < len(sql) and sql[after] == "(":
            args, after = _args(sql, after)
            args = [a.strip() for a in args]
        if name == "timeFilter" and len(args) == 1:
            text = f"{args[0]} >= toDateTime({_unix(start)}) AND {args[0]} <= toDateTime({_unix(end)})"
        elif name == "timeFilter_ms" and len(args) == 1:
            text = (f"{args[0]} >= fromUnixTimestamp64Milli({_ms(start)}) AND "
                    f"{args[0]} <= fromUnixTimestamp64Milli({_ms(end)})")
        elif name == "dateFilter" and len(args) == 1:
            text = (f"{args[0]} >= toDate('{start.astimezone(UTC):%Y-%m-%d}') AND "
                    f"{args[0]} <= toDate('{end.astimezone(UTC):%Y-%m-%d}')")
        elif name == "timeInterval" and len(args) == 1:
            text = f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {step} second)"
        elif name in ("fromTime", "toTime") and not args:
            text = f"toDateTime({_unix(start if name == 'fromTime' else end)})"
            after = m.end()
        elif name == "interval_s" and not args:
            text = str(step)
            after = m.end()
        else:
            raise InvalidInput(f"macro $__{name} with {len(args)} argument(s) is not one icewatch expands", "sql")
        out.append(sql[pos:m.start()])
        out.append(text)
        pos = after
    out.append(sql[pos:])
    return "".join(out)


def expand(sql: str, *, start: datetime, end: datetime, interval_s: float,
           selected: Mapping[str, Sequence[str]], options: Mapping[str, Sequence[str]] | None = None) -> str:
    """The SQL ClickHouse receives from Grafana for this range, interval and variable selection.

    ``selected`` maps every variable to its selected values ([ALL] for All); ``options`` maps a
    variable to every value it offers (used when All is expanded without $__conditionalAll).
    """
    if end <= start:
        raise InvalidInput("the time range ends before it starts", "to")
    sql = conditional_all(sql, selected)
    sql = substitute(sql, selected, options or {})
    return time_macros(sql, start, end, interval_s)


_NICE = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def interval_for(start: datetime, end: datetime, points: int = 240) -> int:
    """A round interval giving about ``points`` buckets over the range (at least a minute: the
    rollups are per minute)."""
    want = (end - start).total_seconds() / max(points, 1)
    for step in _NICE:
        if step >= want:
            return step
    return _NICE[-1] * max(1, round(want / _NICE[-1]))
