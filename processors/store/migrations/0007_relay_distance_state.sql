-- 0007: relay_distance_daily also carries its distance distribution as a mergeable state, so a
-- reader can combine days (icewatch query relay-distance) without restating the view.
-- A view holds no data: dropping and re-creating it loses nothing.

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
    quantilesState(0.5, 0.95)(relay_distance_km) AS distance_state
FROM calls FINAL
WHERE startsWith(path_class, 'relay') AND relay_distance_km IS NOT NULL
GROUP BY tenant, day, client_region, turn_region;
