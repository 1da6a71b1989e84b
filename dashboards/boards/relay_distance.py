"""Relay distance: are clients relayed through a TURN server near them?"""

from __future__ import annotations

from dashboards.filters import REGION, TENANT, one_of, tenant_is, where
from dashboards.model import Dashboard, Link, Panel, Row

UID = "icewatch-relay-distance"
_BY_REGION = where(tenant_is(), one_of("client_region", "region"))
_F = f"$__timeFilter(minute) AND {_BY_REGION}"
_DAYS = f"$__dateFilter(day) AND {_BY_REGION}"
_KM = ((None, "green"), (1500.0, "yellow"), (4000.0, "red"))

DASHBOARD = Dashboard(
    uid=UID,
    title="Relay distance",
    description="Client region x TURN region, the distance to the relay used, calls sent far and by whom, "
                "and TCP/TLS fallback by country. Daily panels read the analyst views (whole days).",
    variables=(TENANT, REGION),
    links=(Link("Call quality overview", "icewatch-overview"), Link("TURN fleet", "icewatch-turn")),
    rows=(
        Row("Where relayed calls go", (
            Panel("region_matrix", "Client region x TURN region (relayed calls)", "table", width=12,
                  sql="SELECT client_region, turn_region, uniqExactIfMerge(relayed) AS relayed_calls, "
                      "uniqExactIfMerge(distant_relay) AS distant_calls FROM call_minute "
                      f"WHERE {_F} AND turn_region != '' GROUP BY client_region, turn_region "
                      "HAVING relayed_calls > 0 ORDER BY client_region, turn_region"),
            Panel("distance_by_pair", "Distance to the relay, p50 / p95 (daily)", "table", unit="km", width=12,
                  thresholds=_KM,
                  sql="SELECT client_region, turn_region, uniqExactMerge(calls_state) AS relayed_calls, "
                      "round(quantilesMerge(0.5, 0.95)(distance_state)[1]) AS p50_km, "
                      "round(quantilesMerge(0.5, 0.95)(distance_state)[2]) AS p95_km FROM relay_distance_daily "
                      f"WHERE {_DAYS} GROUP BY client_region, turn_region ORDER BY client_region, turn_region"),
            Panel("distance_distribution", "Relayed calls by distance", "bargauge", width=12,
                  description="Per-call distances (no rollup keeps the distribution: read from the call table).",
                  sql="SELECT multiIf(relay_distance_km < 500, 'under 500 km', relay_distance_km < 1500, "
                      "'500-1500 km', relay_distance_km < 4000, '1500-4000 km', '4000 km or more') AS distance, "
                      "uniqExact(call_id) AS calls FROM calls FINAL "
                      f"WHERE $__timeFilter(event_time) AND {_BY_REGION} AND startsWith(path_class, 'relay') "
                      "AND relay_distance_km IS NOT NULL GROUP BY distance "
                      "ORDER BY indexOf(['under 500 km', '500-1500 km', '1500-4000 km', '4000 km or more'], distance)"),
            Panel("distant_share", "Distant-relay share of relayed calls", "timeseries", unit="percentunit",
                  width=12, thresholds=((None, "green"), (0.05, "yellow"), (0.2, "red")),
                  sql="SELECT $__timeInterval(minute) AS time, round(uniqExactIfMerge(distant_relay) / "
                      "greatest(uniqExactIfMerge(relayed), 1), 4) AS distant_share FROM call_minute "
                      f"WHERE {_F} GROUP BY time ORDER BY time"),
        )),
        Row("Who is sent far, who falls back", (
            Panel("sent_far", "Networks and countries sent to a distant relay", "table", width=12,
                  description="Client networks (/24, /48) whose relayed calls went to a TURN server far "
                              "beyond the nearest one.",
                  sql="SELECT client_country, client_address AS client_network, "
                      "argMax(turn_server_id, event_time) AS turn_server, uniqExact(call_id) AS distant_calls, "
                      "round(avg(excess_km)) AS excess_km FROM calls FINAL "
                      f"WHERE $__timeFilter(event_time) AND {_BY_REGION} AND distant_relay "
                      "GROUP BY client_country, client_network ORDER BY distant_calls DESC, client_network LIMIT 25"),
            Panel("tcp_tls_fallback", "TCP/TLS fallback by country (daily)", "table", unit="percentunit", width=12,
                  sql="SELECT client_country, uniqExactIfMerge(relayed_state) AS relayed, "
                      "uniqExactIfMerge(tcp_tls_state) AS tcp_tls, "
                      "round(if(relayed = 0, 0, tcp_tls / relayed), 4) AS tcp_tls_share FROM tcp_tls_fallback_daily "
                      f"WHERE {_DAYS} GROUP BY client_country HAVING relayed > 0 "
                      "ORDER BY tcp_tls_share DESC, client_country"),
        )),
    ),
)
