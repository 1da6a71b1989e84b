"""TURN fleet: each server's own view (its logs and the probes), for on-call and capacity."""

from __future__ import annotations

from dashboards.filters import TENANT, TURN, TURN_REGION, TURN_SERVER
from dashboards.model import Dashboard, Link, Panel, Row

UID = "icewatch-turn"
_F = f"$__timeFilter(minute) AND {TURN}"
_SESSIONS = f"$__timeFilter(started_at) AND {TURN}"

DASHBOARD = Dashboard(
    uid=UID,
    title="TURN fleet",
    description="Per TURN server and region, from coturn's logs and the active probes: log heartbeat and "
                "silence, allocations, credentials, denied peers, sessions, relayed bytes, probe results.",
    variables=(TENANT, TURN_REGION, TURN_SERVER),
    links=(Link("Call quality overview", "icewatch-overview"), Link("Relay distance", "icewatch-relay-distance")),
    rows=(
        Row("Is every server alive?", (
            Panel("log_silence", "Log silence per server", "table", unit="s", width=10,
                  thresholds=((None, "green"), (120.0, "yellow"), (300.0, "red")),
                  description="Every server seen in the range (logs or probes) and how long its log has been "
                              "silent before the end of the range; a server that wrote nothing shows the whole range.",
                  sql="SELECT server_id, any(region) AS region, maxIf(minute, source = 'log') AS last_log_minute, "
                      "least(dateDiff('second', maxIf(minute, source = 'log'), $__toTime), "
                      "dateDiff('second', $__fromTime, $__toTime)) AS silent_s "
                      f"FROM (SELECT server_id, region, minute, 'log' AS source FROM turn_server_minute WHERE {_F} "
                      f"UNION ALL SELECT server_id, region, minute, 'probe' AS source FROM probe_minute WHERE {_F}) "
                      "GROUP BY server_id ORDER BY silent_s DESC, server_id"),
            Panel("heartbeat", "Log lines per server", "timeseries", width=14,
                  description="Distinct log lines per interval; a server down or a tailer stopped drops to nothing.",
                  sql="SELECT $__timeInterval(minute) AS time, server_id, uniqExactMerge(lines) AS lines "
                      f"FROM turn_server_minute WHERE {_F} GROUP BY time, server_id ORDER BY time, server_id"),
            Panel("probe_success", "Probe success per server and transport", "timeseries", unit="percentunit",
                  width=12,
                  sql="SELECT $__timeInterval(minute) AS time, concat(server_id, ' ', transport, ' ', kind) AS probe, "
                      "round(1 - uniqExactIfMerge(failures) / greatest(uniqExactMerge(probes), 1), 4) AS success "
                      f"FROM probe_minute WHERE {_F} GROUP BY time, probe ORDER BY time, probe"),
            Panel("probe_latency", "Probe latency per server and transport (p50)", "timeseries", unit="ms", width=12,
                  description="Successful probes only (no rollup keeps latency: read from probes).",
                  sql="SELECT $__timeInterval(at) AS time, concat(server_id, ' ', transport, ' ', kind) AS probe, "
                      "round(quantile(0.5)(latency_ms), 1) AS p50_ms FROM probes FINAL "
                      f"WHERE $__timeFilter(at) AND {TURN} AND success AND latency_ms IS NOT NULL "
                      "GROUP BY time, probe ORDER BY time, probe"),
        )),
        Row("Allocations and credentials", (
            Panel("allocations", "Allocations ok / failed", "timeseries", width=12,
                  sql="SELECT $__timeInterval(minute) AS time, uniqExactIfMerge(allocs_ok) AS ok, "
                      f"uniqExactIfMerge(allocs_failed) AS failed FROM turn_server_minute WHERE {_F} "
                      "GROUP BY time ORDER BY time"),
            Panel("alloc_failures_by_code", "Failed allocations by server and code", "table", width=12,
                  sql="SELECT server_id, code.1 AS error_code, count() AS failures FROM "
                      "(SELECT server_id, groupUniqArrayIfMerge(alloc_failed_codes) AS codes FROM turn_server_minute "
                      f"WHERE {_F} GROUP BY server_id) ARRAY JOIN codes AS code "
                      "GROUP BY server_id, error_code ORDER BY failures DESC, server_id, error_code"),
            Panel("auth", "401 challenges vs rejected credentials", "timeseries", width=12,
                  description="A 401 challenge is normal (the first Allocate of long-term credentials); "
                              "a rejected credential is a wrong or expired password.",
                  sql="SELECT $__timeInterval(minute) AS time, uniqExactIfMerge(auth_challenges) AS challenges, "
                      f"uniqExactIfMerge(auth_rejected) AS rejected FROM turn_server_minute WHERE {_F} "
                      "GROUP BY time ORDER BY time"),
            Panel("denied_peers", "403 denied peers per server", "bargauge", width=12,
                  sql="SELECT server_id, uniqExactIfMerge(peers_denied) AS denied FROM turn_server_minute "
                      f"WHERE {_F} GROUP BY server_id ORDER BY server_id"),
        )),
        Row("Sessions and traffic", (
            Panel("sessions", "Sessions per server", "timeseries", width=12,
                  description="Distinct sessions that logged anything in each interval.",
                  sql="SELECT $__timeInterval(minute) AS time, server_id, uniqExactIfMerge(sessions) AS sessions "
                      f"FROM turn_server_minute WHERE {_F} GROUP BY time, server_id ORDER BY time, server_id"),
            Panel("relayed_bytes", "Relayed bytes, client and peer legs", "bargauge", unit="bytes", width=12,
                  sql="SELECT server_id, arraySum(u -> if(u.2 = 0, u.4, 0), usage) AS client_leg_bytes, "
                      "arraySum(u -> if(u.2 = 1, u.4, 0), usage) AS peer_leg_bytes FROM "
                      "(SELECT server_id, groupUniqArrayIfMerge(usage) AS usage FROM turn_sessions "
                      f"WHERE {_SESSIONS} GROUP BY server_id) ORDER BY server_id"),
            Panel("session_duration", "Session duration", "table", unit="s", width=12,
                  sql="SELECT server_id, count() AS sessions, round(quantile(0.5)(seconds), 1) AS p50_s, "
                      "round(quantile(0.95)(seconds), 1) AS p95_s FROM "
                      "(SELECT server_id, dateDiff('millisecond', min(started_at), max(ended_at)) / 1000 AS seconds "
                      f"FROM turn_sessions WHERE {_SESSIONS} GROUP BY server_id, process_key, session_id) "
                      "GROUP BY server_id ORDER BY server_id"),
            Panel("close_reasons", "Session close reasons", "bargauge", width=12,
                  sql="SELECT if(reason = '', 'still open', reason) AS close_reason, count() AS sessions FROM "
                      "(SELECT max(close_reason) AS reason FROM turn_sessions "
                      f"WHERE {_SESSIONS} GROUP BY server_id, process_key, session_id) "
                      "GROUP BY close_reason ORDER BY sessions DESC"),
        )),
    ),
)
