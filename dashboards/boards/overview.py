"""Call quality overview: how calls connect and how they sound, for ops at a glance."""

from __future__ import annotations

from dashboards.filters import CALL_PLACES, CALLS, REGION, RTT, SDK_VERSION, TENANT, TURN_SERVER
from dashboards.model import RTT_THRESHOLDS, Dashboard, DataLink, Link, Panel, Row

UID = "icewatch-overview"
_RATE = ((None, "green"), (0.02, "yellow"), (0.05, "red"))
_F = f"$__timeFilter(minute) AND {CALLS}"

DASHBOARD = Dashboard(
    uid=UID,
    title="Call quality overview",
    description="Calls, how they connect (path class, relay share), RTT bands, ICE failures and DTLS stalls, "
                "candidate errors, MOS and diagnoses; from the per-minute rollups.",
    variables=(TENANT, REGION, TURN_SERVER, SDK_VERSION),
    links=(Link("TURN fleet", "icewatch-turn"), Link("Relay distance", "icewatch-relay-distance"),
           Link("Call drill-down", "icewatch-call"), Link("icewatch itself", "icewatch-self")),
    rows=(
        Row("Calls", (
            Panel("calls", "Calls", "stat", width=6, height=4,
                  sql=f"SELECT uniqExactMerge(calls) AS calls FROM call_minute WHERE {_F}"),
            Panel("ice_failure_rate", "ICE failure rate", "stat", unit="percentunit", width=6, height=4,
                  thresholds=_RATE, description="Calls whose ICE failed or never connected.",
                  sql="SELECT round(uniqExactIfMerge(ice_failed) / greatest(uniqExactMerge(calls), 1), 4) "
                      f"AS ice_failure_rate FROM call_minute WHERE {_F}"),
            Panel("relay_share", "Relayed calls", "stat", unit="percentunit", width=6, height=4,
                  sql="SELECT round(uniqExactIfMerge(relayed) / greatest(uniqExactMerge(calls), 1), 4) "
                      f"AS relay_share FROM call_minute WHERE {_F}"),
            Panel("dtls_stall_rate", "DTLS stall rate", "stat", unit="percentunit", width=6, height=4,
                  thresholds=_RATE, description="ICE-connected calls whose DTLS handshake stalled.",
                  sql="SELECT round(uniqExactIfMerge(dtls_stall) / greatest(uniqExactIfMerge(connected), 1), 4) "
                      f"AS dtls_stall_rate FROM call_minute WHERE {_F}"),
            Panel("path_mix", "Path class over time", "timeseries", width=16, stacked=True,
                  description="Selected candidate pair: host, srflx, prflx, relay over UDP/TCP/TLS; "
                              "'none' when no pair was selected.",
                  sql="SELECT $__timeInterval(minute) AS time, if(path_class = '', 'none', path_class) AS path, "
                      f"uniqExactMerge(calls) AS calls FROM call_minute WHERE {_F} "
                      "GROUP BY time, path ORDER BY time, path"),
            Panel("relay_share_by_region", "Relay share by client region", "bargauge", unit="percentunit",
                  width=8,
                  sql="SELECT client_region, round(uniqExactIfMerge(relayed) / greatest(uniqExactMerge(calls), 1), 4) "
                      f"AS relay_share FROM call_minute WHERE {_F} GROUP BY client_region ORDER BY client_region"),
        )),
        Row("Round-trip time", (
            # Not from rtt_band_minute: its exact (call, sample) sets hold every call second, and
            # merging a day of them (86 million for 1,000 concurrent calls) takes longer than the
            # page's 20 s limit. Each call's seconds per band are in calls (facts of its samples).
            Panel("rtt_bands", "Time in each RTT band", "bargauge", unit="s", width=8,
                  description="Seconds of call time by RTT band: excellent < 100 ms, good < 150, "
                              "acceptable < 300, poor >= 300.",
                  sql="SELECT band.1 AS rtt_band, round(band.2) AS seconds FROM (SELECT arrayJoin(["
                      "('excellent', sum(seconds_excellent)), ('good', sum(seconds_good)), "
                      "('acceptable', sum(seconds_acceptable)), ('poor', sum(seconds_poor))]) AS band "
                      f"FROM calls FINAL WHERE $__timeFilter(event_time) AND {RTT}) WHERE band.2 > 0 "
                      "ORDER BY indexOf(['excellent', 'good', 'acceptable', 'poor'], rtt_band)"),
            Panel("rtt_quantiles", "RTT p50 / p95", "timeseries", unit="ms", width=16, thresholds=RTT_THRESHOLDS,
                  sql="SELECT $__timeInterval(minute) AS time, "
                      "round(quantilesTDigestMerge(0.5, 0.95)(rtt_quantiles)[1], 1) AS p50_ms, "
                      "round(quantilesTDigestMerge(0.5, 0.95)(rtt_quantiles)[2], 1) AS p95_ms "
                      f"FROM rtt_band_minute WHERE $__timeFilter(minute) AND {RTT} GROUP BY time ORDER BY time"),
        )),
        Row("Failures", (
            Panel("failure_rates", "ICE failures and DTLS stalls", "timeseries", unit="percentunit", width=12,
                  thresholds=_RATE,
                  sql="SELECT $__timeInterval(minute) AS time, "
                      "round(uniqExactIfMerge(ice_failed) / greatest(uniqExactMerge(calls), 1), 4) AS ice_failed, "
                      "round(uniqExactIfMerge(dtls_stall) / greatest(uniqExactIfMerge(connected), 1), 4) AS dtls_stall "
                      f"FROM call_minute WHERE {_F} GROUP BY time ORDER BY time"),
            Panel("candidate_errors", "Candidate errors by code and server", "table", width=12,
                  description="icecandidateerror events (no rollup keeps them: read from candidate_errors).",
                  sql="SELECT if(turn_server_id = '', url_scheme, turn_server_id) AS server, error_code, "
                      "any(error_text) AS error_text, uniqExact(call_id) AS calls FROM candidate_errors FINAL "
                      f"WHERE $__timeFilter(event_time) AND {CALL_PLACES} "
                      "GROUP BY server, error_code ORDER BY calls DESC, server, error_code LIMIT 50"),
            Panel("mos", "MOS (estimated)", "timeseries", width=12,
                  thresholds=((None, "red"), (3.5, "yellow"), (4.0, "green")),
                  description="E-model estimate per call from RTT, jitter and loss; per-call value, so read from "
                              "the call table.",
                  sql="SELECT $__timeInterval(event_time) AS time, round(avg(mos), 2) AS mos_avg, "
                      "round(quantile(0.1)(mos), 2) AS mos_p10 FROM calls FINAL "
                      f"WHERE $__timeFilter(event_time) AND {CALLS} AND mos IS NOT NULL GROUP BY time ORDER BY time"),
            Panel("diagnosis_mix", "Diagnoses", "bargauge", width=12,
                  # distinct 64-bit hashes of the call ids: a third of the cost over a day of 2 million
                  # calls (tests/bench/bench_pages.py), and two of them collide with probability ~1e-7
                  sql="SELECT diagnosis, uniqExact(cityHash64(call_id)) AS calls FROM calls FINAL "
                      f"WHERE $__timeFilter(event_time) AND {CALLS} GROUP BY diagnosis ORDER BY calls DESC"),
            Panel("problem_calls", "Recent calls with a problem", "table", width=24,
                  links=(DataLink("Open the call", "icewatch-call", "call_id", "call_id"),),
                  sql="SELECT call_id, max(event_time) AS last_report, argMax(client_region, event_time) AS region, "
                      "argMax(path_class, event_time) AS path, argMax(diagnosis, event_time) AS last_diagnosis "
                      f"FROM calls FINAL WHERE $__timeFilter(event_time) AND {CALLS} AND diagnosis != 'ok' "
                      "GROUP BY call_id ORDER BY last_report DESC, call_id LIMIT 50"),
        )),
    ),
)
