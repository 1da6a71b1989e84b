-- 0004: analyst views over the converged call table (one row per call and segment).

CREATE VIEW IF NOT EXISTS relay_usage_daily AS
SELECT
    tenant,
    toDate(event_time) AS day,
    client_region,
    turn_region,
    if(startsWith(path_class, 'relay'), relay_protocol, '') AS relay_protocol,
    uniqExact(call_id) AS calls,
    uniqExactIf(call_id, startsWith(path_class, 'relay')) AS relayed_calls,
    round(relayed_calls / calls, 4) AS relayed_share
FROM calls FINAL
GROUP BY tenant, day, client_region, turn_region, relay_protocol;

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
    countIf(distant_relay) AS distant_relay_calls
FROM calls FINAL
WHERE startsWith(path_class, 'relay') AND relay_distance_km IS NOT NULL
GROUP BY tenant, day, client_region, turn_region;

CREATE VIEW IF NOT EXISTS tcp_tls_fallback_daily AS
SELECT
    tenant,
    toDate(event_time) AS day,
    client_region,
    client_country,
    uniqExactIf(call_id, startsWith(path_class, 'relay')) AS relayed_calls,
    uniqExactIf(call_id, path_class IN ('relay-tcp', 'relay-tls')) AS tcp_tls_calls,
    round(if(relayed_calls = 0, 0, tcp_tls_calls / relayed_calls), 4) AS tcp_tls_share
FROM calls FINAL
GROUP BY tenant, day, client_region, client_country;

CREATE VIEW IF NOT EXISTS candidate_mix_by_sdk AS
SELECT
    tenant,
    toDate(event_time) AS day,
    sdk_name,
    sdk_version,
    path_class,
    uniqExact(call_id) AS calls
FROM calls FINAL
GROUP BY tenant, day, sdk_name, sdk_version, path_class;
