"""Named analyst queries for ``icewatch query``. User input is never spliced into SQL: values are
bound parameters, and grouping dimensions come from a fixed whitelist."""

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


@dataclass(frozen=True)
class NamedQuery:
    description: str
    default_by: tuple[str, ...]
    select: str  # measures; the time window, tenant filter and grouping are added around it
    source: str = "calls FINAL"
    where: str = "1"
    time_column: str = "event_time"
    dimensions: dict[str, str] | None = None  # default: DIMENSIONS (columns of calls)


QUERIES: dict[str, NamedQuery] = {
    "relay-usage": NamedQuery(
        "Relayed calls by client region x TURN region x relay protocol",
        ("region", "turn-region", "protocol"),
        "uniqExact(call_id) AS calls, uniqExactIf(call_id, startsWith(path_class, 'relay')) AS relayed, "
        "round(relayed / calls, 4) AS relayed_share",
    ),
    "path-mix": NamedQuery(
        "Call path mix (host / srflx / prflx / relay-udp / relay-tcp / relay-tls)",
        ("region", "path"),
        "uniqExact(call_id) AS calls",
    ),
    "relay-distance": NamedQuery(
        "Distance from client to the TURN server used (relayed calls)",
        ("region", "turn-region"),
        "count() AS relayed_calls, round(quantile(0.5)(relay_distance_km), 1) AS p50_km, "
        "round(quantile(0.95)(relay_distance_km), 1) AS p95_km, countIf(distant_relay) AS distant",
        where="startsWith(path_class, 'relay') AND relay_distance_km IS NOT NULL",
    ),
    "tcp-tls-fallback": NamedQuery(
        "Share of relayed calls over TCP or TLS (networks that block UDP)",
        ("country",),
        "uniqExactIf(call_id, startsWith(path_class, 'relay')) AS relayed, "
        "uniqExactIf(call_id, path_class IN ('relay-tcp', 'relay-tls')) AS tcp_tls, "
        "round(if(relayed = 0, 0, tcp_tls / relayed), 4) AS tcp_tls_share",
    ),
    "candidate-mix-by-sdk": NamedQuery(
        "Selected path class by SDK version",
        ("sdk", "path"),
        "uniqExact(call_id) AS calls",
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
        time_column="minute",
        dimensions=TURN_DIMENSIONS,
    ),
    "probes": NamedQuery(
        "Active probe outcomes per TURN server and transport",
        ("turn-server", "transport"),
        "uniqExactMerge(probes) AS probes, uniqExactIfMerge(failures) AS failures, "
        "uniqExactIfMerge(failing_vantages) AS failing_vantages",
        source="probe_minute",
        time_column="minute",
        dimensions=PROBE_DIMENSIONS,
    ),
}

_SINCE = re.compile(r"^(\d+)([mhdw])$")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    m = _SINCE.match(text.strip())
    if not m:
        raise InvalidInput("expected a duration like 30m, 12h, 7d or 4w", "since")
    n, unit = int(m.group(1)), m.group(2)
    delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}
    return (now or utcnow()) - delta[unit]


def build_sql(name: str, by: tuple[str, ...] | None) -> str:
    if name not in QUERIES:
        raise InvalidInput(f"unknown query {name!r}; one of: {', '.join(sorted(QUERIES))}", "name")
    q = QUERIES[name]
    known = q.dimensions or DIMENSIONS
    dims = by or q.default_by
    cols = []
    for d in dims:
        if d not in known:
            raise InvalidInput(f"unknown dimension {d!r} for {name}; one of: {', '.join(sorted(known))}", "by")
        cols.append(f"{known[d]} AS `{d}`")
    group = ", ".join(f"`{d}`" for d in dims)
    return (
        f"SELECT {', '.join(cols)}, {q.select} FROM {q.source} "
        f"WHERE {q.time_column} >= {{since:DateTime64(3, 'UTC')}} AND tenant = {{tenant:String}} AND ({q.where}) "
        f"GROUP BY {group} ORDER BY {group}"
    )


def run_named(sink: Sink, name: str, since: str = "7d", by: tuple[str, ...] | None = None,
              tenant: str = "default") -> list[dict[str, Any]]:
    sql = build_sql(name, by)
    start = parse_since(since).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return sink.query(sql, {"since": start, "tenant": tenant})
