"""Named analyst queries for ``icewatch query``. Where an analyst view defines the fact (0004, 0007),
the query reads the view and only combines its daily rows; the others read the call table or the
rollups. User input is never spliced into SQL: values are bound parameters, and grouping dimensions
come from a fixed whitelist per query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collector.contract import utcnow
from collector.errors import InvalidInput
from processors.store.sink import Sink

DIMENSIONS: dict[str, str] = {
    "region": "client_region",
    "client-region": "client_region",
    "turn-region": "turn_region",
    "turn-server": "turn_server_id",
    "protocol": "relay_protocol",
    "path": "path_class",
    "country": "client_country",
    "sdk": "sdk_version",
    "browser": "browser",
    "day": "toDate(event_time)",
    "hour": "toStartOfHour(event_time)",
    "minute": "toStartOfMinute(event_time)",
}


TURN_DIMENSIONS: dict[str, str] = {
    "turn-server": "server_id",
    "turn-region": "region",
    "server": "server_id",
    "region": "region",
    "day": "toDate(minute)",
    "hour": "toStartOfHour(minute)",
    "minute": "minute",
}
PROBE_DIMENSIONS: dict[str, str] = {**TURN_DIMENSIONS, "transport": "transport", "kind": "kind"}


# Dimensions of the daily analyst views (0004, 0007): the views define the facts; a named query
# over a view only sums or merges its rows over the chosen days and dimensions.
_VIEW_DAY = {"day": "day"}
RELAY_USAGE_DIMENSIONS = {"region": "client_region", "client-region": "client_region",
                          "turn-region": "turn_region", "protocol": "relay_protocol", **_VIEW_DAY}
RELAY_DISTANCE_DIMENSIONS = {"region": "client_region", "client-region": "client_region",
                             "turn-region": "turn_region", **_VIEW_DAY}
FALLBACK_DIMENSIONS = {"region": "client_region", "client-region": "client_region", "country": "client_country",
                       **_VIEW_DAY}
SDK_MIX_DIMENSIONS = {"sdk": "sdk_version", "sdk-name": "sdk_name", "path": "path_class", **_VIEW_DAY}
_SINCE_DAY = "day >= {since_day:Date}"


@dataclass(frozen=True)
class NamedQuery:
    description: str
    default_by: tuple[str, ...]
    select: str  # measures; the time window, tenant filter and grouping are added around it
    source: str = "calls FINAL"
    where: str = "1"
    time_filter: str = "event_time >= {since:DateTime64(3, 'UTC')}"
    dimensions: dict[str, str] | None = None  # default: DIMENSIONS (columns of calls)


QUERIES: dict[str, NamedQuery] = {
    "relay-usage": NamedQuery(
        "Relayed calls by client region x TURN region x relay protocol (view relay_usage_daily; whole days)",
        ("region", "turn-region", "protocol"),
        "uniqExactMerge(calls_state) AS calls, uniqExactIfMerge(relayed_state) AS relayed, "
        "round(relayed / calls, 4) AS relayed_share",
        source="relay_usage_daily",
        time_filter=_SINCE_DAY,
        dimensions=RELAY_USAGE_DIMENSIONS,
    ),
    "path-mix": NamedQuery(
        "Call path mix (host / srflx / prflx / relay-udp / relay-tcp / relay-tls) (view candidate_mix_by_sdk)",
        ("path",),
        "uniqExactMerge(calls_state) AS calls",
        source="candidate_mix_by_sdk",
        time_filter=_SINCE_DAY,
        dimensions=SDK_MIX_DIMENSIONS,
    ),
    "relay-distance": NamedQuery(
        "Distance from client to the TURN server used, relayed calls (view relay_distance_daily; whole days)",
        ("region", "turn-region"),
        "uniqExactMerge(calls_state) AS relayed_calls, "
        "round(quantilesMerge(0.5, 0.95)(distance_state)[1], 1) AS p50_km, "
        "round(quantilesMerge(0.5, 0.95)(distance_state)[2], 1) AS p95_km, "
        "uniqExactIfMerge(distant_state) AS distant",
        source="relay_distance_daily",
        time_filter=_SINCE_DAY,
        dimensions=RELAY_DISTANCE_DIMENSIONS,
    ),
    "tcp-tls-fallback": NamedQuery(
        "Share of relayed calls over TCP or TLS, networks that block UDP (view tcp_tls_fallback_daily; whole days)",
        ("country",),
        "uniqExactIfMerge(relayed_state) AS relayed, uniqExactIfMerge(tcp_tls_state) AS tcp_tls, "
        "round(if(relayed = 0, 0, tcp_tls / relayed), 4) AS tcp_tls_share",
        source="tcp_tls_fallback_daily",
        time_filter=_SINCE_DAY,
        dimensions=FALLBACK_DIMENSIONS,
    ),
    "candidate-mix-by-sdk": NamedQuery(
        "Selected path class by SDK version (view candidate_mix_by_sdk; whole days)",
        ("sdk", "path"),
        "uniqExactMerge(calls_state) AS calls",
        source="candidate_mix_by_sdk",
        time_filter=_SINCE_DAY,
        dimensions=SDK_MIX_DIMENSIONS,
    ),
    "rtt": NamedQuery(
        "RTT by region: call medians and bands",
        ("region",),
        "count() AS calls, round(quantile(0.5)(rtt_median_ms), 1) AS rtt_p50_ms, "
        "round(quantile(0.95)(rtt_p95_ms), 1) AS rtt_p95_ms, countIf(rtt_band = 'poor') AS poor_calls",
        where="rtt_median_ms IS NOT NULL",
    ),
    "diagnosis": NamedQuery(
        "Calls by primary diagnosis",
        ("region",),
        "uniqExact(call_id) AS calls, uniqExactIf(call_id, diagnosis != 'ok') AS with_problem, "
        "topK(3)(diagnosis) AS top_diagnoses",
    ),
    "dtls-stalls": NamedQuery(
        "DTLS stalls among ICE-connected calls",
        ("region", "browser"),
        "uniqExactIf(call_id, ice_connected) AS connected, uniqExactIf(call_id, dtls_stall) AS stalls, "
        "round(if(connected = 0, 0, stalls / connected), 4) AS stall_share",
    ),
    "turn-servers": NamedQuery(
        "TURN servers from their logs: heartbeat, allocations, rejected credentials, relayed bytes",
        ("turn-server",),
        "uniqExactMerge(lines) AS log_lines, uniqExactIfMerge(allocs_ok) AS allocations_ok, "
        "uniqExactIfMerge(allocs_failed) AS allocations_failed, uniqExactIfMerge(auth_rejected) AS auth_rejected, "
        "uniqExactIfMerge(peers_denied) AS peers_denied, "
        "arraySum(x -> x.2, groupUniqArrayIfMerge(relayed_bytes)) AS relayed_bytes, "
        "uniqExactIfMerge(sessions) AS sessions",
        source="turn_server_minute",
        time_filter="minute >= {since:DateTime64(3, 'UTC')}",
        dimensions=TURN_DIMENSIONS,
    ),
    "probes": NamedQuery(
        "Active probe outcomes per TURN server and transport",
        ("turn-server", "transport"),
        "uniqExactMerge(probes) AS probes, uniqExactIfMerge(failures) AS failures, "
        "uniqExactIfMerge(failing_vantages) AS failing_vantages",
        source="probe_minute",
        time_filter="minute >= {since:DateTime64(3, 'UTC')}",
        dimensions=PROBE_DIMENSIONS,
    ),
}

_SINCE = re.compile(r"^(\d{1,7})([mhdw])$")
MAX_WINDOW = timedelta(days=3660)  # ten years: longer than any table keeps
MAX_DIMENSIONS = 6


def _shown(text: str) -> str:
    """User input quoted in an error message, cut short."""
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def parse_since(text: str, now: datetime | None = None) -> datetime:
    m = _SINCE.match(text.strip())
    if not m:
        raise InvalidInput("expected a duration like 30m, 12h, 7d or 4w", "since")
    n, unit = int(m.group(1)), m.group(2)
    delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}
    if delta[unit] > MAX_WINDOW:
        raise InvalidInput(f"at most {MAX_WINDOW.days} days back", "since")
    return (now or utcnow()) - delta[unit]


def build_sql(name: str, by: tuple[str, ...] | None) -> str:
    if name not in QUERIES:
        raise InvalidInput(f"unknown query {_shown(name)}; one of: {', '.join(sorted(QUERIES))}", "name")
    q = QUERIES[name]
    known = q.dimensions or DIMENSIONS
    dims = by or q.default_by
    if len(dims) > MAX_DIMENSIONS:
        raise InvalidInput(f"at most {MAX_DIMENSIONS} dimensions", "by")
    if len(set(dims)) != len(dims):
        raise InvalidInput("a dimension is named twice", "by")
    cols = []
    for d in dims:
        if d not in known:
            raise InvalidInput(f"unknown dimension {_shown(d)} for {name}; one of: {', '.join(sorted(known))}", "by")
        cols.append(f"{known[d]} AS `{d}`")
    group = ", ".join(f"`{d}`" for d in dims)
    return (
        f"SELECT {', '.join(cols)}, {q.select} FROM {q.source} "
        f"WHERE {q.time_filter} AND tenant = {{tenant:String}} AND ({q.where}) "
        f"GROUP BY {group} ORDER BY {group}"
    )


def run_named(sink: Sink, name: str, since: str = "7d", by: tuple[str, ...] | None = None,
              tenant: str = "default") -> list[dict[str, Any]]:
    sql = build_sql(name, by)
    start = parse_since(since)
    params = {"since": start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "since_day": start.strftime("%Y-%m-%d"),
              "tenant": tenant}
    return sink.query(sql, params)
