-- 0010: the analyst views also carry mergeable distinct-call states, so a reader that combines
-- days, segments or groups (icewatch query) counts each call once instead of adding daily counts.
-- Views hold no data: dropping and re-creating them loses nothing. Their other columns are unchanged.

DROP VIEW IF EXISTS relay_usage_daily;

CREATE VIEW IF NOT EXISTS relay_usage_daily AS
SELECT
    tenant,
    toDate(event_time) AS day,
    client_region,
    turn_region,
    if(startsWith(path_class, 'relay'), relay_protocol, '') AS relay_protocol,
    uniqExact(call_id) AS calls,
    uniqExactIf(call_id, startsWith(path_class, 'relay')) AS relayed_calls,
    round(relayed_calls / calls, 4) AS relayed_share,
    uniqExactState(call_id) AS calls_state,
    uniqExactIfState(call_id, startsWith(path_class, 'relay')) AS relayed_state
FROM calls FINAL
GROUP BY tenant, day, client_region, turn_region, relay_protocol;

DROP VIEW IF EXISTS relay_distance_daily;

CREATE VIEW IF NOT EXISTS relay_distance_daily AS
SELECT
    tenant,
    toDate(event_time) AS day,
    client_region,
    turn_region,
    count() AS relayed_calls,
    round(quantile(0.5)(relay_distance_km), 1) AS distance_p50_km,
    round(quantile(0.95)(relay_distance_km), 1) AS distance_p95_km,
    round(quantile(0.5)(excess_km), 1) AS excess_p50_km,
    countIf(distant_relay) AS distant_relay_calls,
    quantilesState(0.5, 0.95)(relay_distance_km) AS distance_state,
    uniqExactState(call_id) AS calls_state,
    uniqExactIfState(call_id, distant_relay) AS distant_state
FROM calls FINAL
WHERE startsWith(path_class, 'relay') AND relay_distance_km IS NOT NULL
GROUP BY tenant, day, client_region, turn_region;

DROP VIEW IF EXISTS tcp_tls_fallback_daily;

CREATE VIEW IF NOT EXISTS tcp_tls_fallback_daily AS
SELECT
    tenant,
    toDate(event_time) AS day,
    client_region,
    client_country,
    uniqExactIf(call_id, startsWith(path_class, 'relay')) AS relayed_calls,
    uniqExactIf(call_id, path_class IN ('relay-tcp', 'relay-tls')) AS tcp_tls_calls,
    round(if(relayed_calls = 0, 0, tcp_tls_calls / relayed_calls), 4) AS tcp_tls_share,
    uniqExactIfState(call_id, startsWith(path_class, 'relay')) AS relayed_state,
    uniqExactIfState(call_id, path_class IN ('relay-tcp', 'relay-tls')) AS tcp_tls_state
FROM calls FINAL
GROUP BY tenant, day, client_region, client_country;

DROP VIEW IF EXISTS candidate_mix_by_sdk;

CREATE VIEW IF NOT EXISTS candidate_mix_by_sdk AS
SELECT
    tenant,
    toDate(event_time) AS day,
    sdk_name,
    sdk_version,
    path_class,
    uniqExact(call_id) AS calls,
    uniqExactState(call_id) AS calls_state
FROM calls FINAL
GROUP BY tenant, day, sdk_name, sdk_version, path_class;
