"""Call drill-down: one call's timeline, candidates and errors, diagnosis and its TURN session."""

from __future__ import annotations

from dashboards.filters import CALL_ID, TENANT, where
from dashboards.model import RTT_THRESHOLDS, Dashboard, Link, Panel, Row

UID = "icewatch-call"
_CALL = where("tenant = ${tenant:singlequote}", "call_id = ${call_id:singlequote}")

DASHBOARD = Dashboard(
    uid=UID,
    title="Call drill-down",
    description="Everything icewatch knows about one call: its reports, the per-second timeline, candidates, "
                "candidate errors, the diagnosis and the TURN session that relayed it.",
    variables=(TENANT, CALL_ID),
    links=(Link("Call quality overview", "icewatch-overview"), Link("TURN fleet", "icewatch-turn")),
    time_from="now-24h",
    refresh="",
    rows=(
        Row("The call", (
            Panel("summary", "Reports of this call", "table", width=24, height=6,
                  sql="SELECT segment, event_time, source_format, sdk_name, sdk_version, client_region, path_class, "
                      "relay_protocol, turn_server_id, ice_connect_ms, dtls_connect_ms, rtt_median_ms, jitter_ms, "
                      "loss_pct, mos, diagnosis, arrayStringConcat(labels, ', ') AS labels, "
                      "arrayStringConcat(sdk_warnings, ', ') AS sdk_warnings, call_report_id "
                      f"FROM calls FINAL WHERE {_CALL} ORDER BY segment"),
            Panel("rtt_jitter", "RTT and jitter, per sample", "timeseries", unit="ms", width=12,
                  thresholds=RTT_THRESHOLDS,
                  sql="SELECT at AS time, rtt_ms, jitter_ms FROM call_samples FINAL "
                      f"WHERE {_CALL} ORDER BY time"),
            Panel("loss", "Packets received and lost, per sample", "timeseries", width=12,
                  sql="SELECT at AS time, packets_received, packets_lost FROM call_samples FINAL "
                      f"WHERE {_CALL} ORDER BY time"),
            Panel("states", "ICE and DTLS states", "table", width=24, height=6,
                  sql="SELECT min(at) AS since, max(at) AS until, ice_state, dtls_state, path_class, "
                      "count() AS samples FROM call_samples FINAL "
                      f"WHERE {_CALL} GROUP BY ice_state, dtls_state, path_class ORDER BY since"),
        )),
        Row("Candidates and TURN", (
            Panel("candidates", "Candidates", "table", width=12,
                  sql="SELECT if(is_remote, 'remote', 'local') AS side, candidate_type, protocol, relay_protocol, "
                      "selected, turn_server_id, url, address, port FROM candidates FINAL "
                      f"WHERE {_CALL} ORDER BY side, selected DESC, candidate_type, candidate_id"),
            Panel("candidate_errors", "Candidate errors", "table", width=12,
                  sql="SELECT event_time, url, error_code, error_text, turn_server_id FROM candidate_errors FINAL "
                      f"WHERE {_CALL} ORDER BY event_time"),
            Panel("turn_session", "TURN session that relayed the call", "table", width=24, height=6,
                  description="Matched by the relayed address, else by the client network and time "
                              "(view call_turn_sessions).",
                  sql="SELECT server_id, session_id, transport, started_at, ended_at, client_bytes, peer_bytes, "
                      "close_reason FROM turn_session_summary WHERE (tenant, server_id, process_key, session_id) IN "
                      "(SELECT tenant, server_id, process_key, session_id FROM call_turn_sessions "
                      f"WHERE {_CALL}) ORDER BY started_at"),
        )),
    ),
)
