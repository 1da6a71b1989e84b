-- 0001: call facts, samples, candidates, candidate errors and the per-minute call rollup.
-- Immutable once released: change the schema with a new numbered file.
-- Convention: every statement ends with ';' at the end of a line; no other ';'.

-- One row per call report (a call, a peer connection of a dump, or one segment of a call).
-- Replays and SDK retries carry the same (tenant, call_id, segment) and converge.
CREATE TABLE IF NOT EXISTS calls
(
    tenant LowCardinality(String),
    call_id String,
    segment UInt32,
    report_id String,
    event_time DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC'),
    source_format LowCardinality(String),
    peer_connection_id String,
    sdk_name LowCardinality(String),
    sdk_version LowCardinality(String),
    browser LowCardinality(String),
    started_at Nullable(DateTime64(3, 'UTC')),
    ended_at Nullable(DateTime64(3, 'UTC')),
    client_address String,
    client_country LowCardinality(String),
    client_lat Nullable(Float64),
    client_lon Nullable(Float64),
    client_region LowCardinality(String),
    geo_source LowCardinality(String),
    local_candidate_type LowCardinality(String),
    remote_candidate_type LowCardinality(String),
    local_protocol LowCardinality(String),
    relay_protocol LowCardinality(String),
    relay_protocol_source LowCardinality(String),
    path_class LowCardinality(String),
    turn_url String,
    turn_server_id LowCardinality(String),
    turn_region LowCardinality(String),
    gathered_types Array(LowCardinality(String)),
    configured_turn Bool,
    configured_stun Bool,
    configured_turn_region LowCardinality(String),
    pair_changes UInt32,
    relay_distance_km Nullable(Float64),
    nearest_server_id LowCardinality(String),
    nearest_distance_km Nullable(Float64),
    excess_km Nullable(Float64),
    distant_relay Bool,
    ice_gathering_ms Nullable(Float64),
    first_srflx_ms Nullable(Float64),
    first_relay_ms Nullable(Float64),
    ice_connect_ms Nullable(Float64),
    ice_connected Bool,
    ice_failed Bool,
    never_connected Bool,
    reconnects UInt32,
    dtls_connect_ms Nullable(Float64),
    dtls_connected Bool,
    dtls_stall Bool,
    dtls_stall_ms Nullable(Float64),
    dtls_failed Bool,
    rtt_source LowCardinality(String),
    rtt_samples UInt32,
    rtt_median_ms Nullable(Float64),
    rtt_p95_ms Nullable(Float64),
    rtt_max_ms Nullable(Float64),
    rtt_band LowCardinality(String),
    seconds_excellent Float64,
    seconds_good Float64,
    seconds_acceptable Float64,
    seconds_poor Float64,
    jitter_ms Nullable(Float64),
    loss_pct Nullable(Float64),
    mos Nullable(Float64),
    bitrate_send_kbps Nullable(Float64),
    bitrate_recv_kbps Nullable(Float64),
    diagnosis LowCardinality(String),
    labels Array(LowCardinality(String))
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, call_id, segment)
TTL toDateTime(event_time) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per stats interval (about 1 s). Keyed so that a retried upload converges.
CREATE TABLE IF NOT EXISTS call_samples
(
    tenant LowCardinality(String),
    call_id String,
    at DateTime64(3, 'UTC'),
    duration_s Float32,
    rtt_ms Nullable(Float32) CODEC(Gorilla, ZSTD(1)),
    rtt_source LowCardinality(String),
    rtt_band LowCardinality(String),
    jitter_ms Nullable(Float32) CODEC(Gorilla, ZSTD(1)),
    packets_received Nullable(UInt32) CODEC(T64, ZSTD(1)),
    packets_lost Nullable(Int32) CODEC(T64, ZSTD(1)),
    bytes_sent Nullable(UInt64) CODEC(T64, ZSTD(1)),
    bytes_received Nullable(UInt64) CODEC(T64, ZSTD(1)),
    ice_state LowCardinality(String),
    dtls_state LowCardinality(String),
    client_region LowCardinality(String),
    turn_region LowCardinality(String),
    path_class LowCardinality(String),
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(at)
ORDER BY (tenant, call_id, at)
TTL toDateTime(at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS candidates
(
    tenant LowCardinality(String),
    call_id String,
    candidate_id String,
    event_time DateTime64(3, 'UTC'),
    is_remote Bool,
    candidate_type LowCardinality(String),
    protocol LowCardinality(String),
    relay_protocol LowCardinality(String),
    url String,
    address String,
    port Nullable(UInt16),
    turn_server_id LowCardinality(String),
    selected Bool,
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, call_id, candidate_id)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS candidate_errors
(
    tenant LowCardinality(String),
    call_id String,
    event_time DateTime64(3, 'UTC'),
    url String,
    url_scheme LowCardinality(String),
    error_code UInt16,
    error_text String,
    client_region LowCardinality(String),
    turn_server_id LowCardinality(String),
    turn_region LowCardinality(String),
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, call_id, url, error_code, event_time)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Per-minute call rollup. Every measure is a distinct-call set, so a replayed or retried row
-- can never count twice (the rollup converges exactly like the ReplacingMergeTree above).
CREATE TABLE IF NOT EXISTS call_minute
(
    tenant LowCardinality(String),
    minute DateTime('UTC'),
    client_region LowCardinality(String),
    turn_region LowCardinality(String),
    turn_server_id LowCardinality(String),
    configured_turn_region LowCardinality(String),
    path_class LowCardinality(String),
    sdk_version LowCardinality(String),
    calls AggregateFunction(uniqExact, String),
    connected AggregateFunction(uniqExactIf, String, UInt8),
    relayed AggregateFunction(uniqExactIf, String, UInt8),
    relayed_tcp_tls AggregateFunction(uniqExactIf, String, UInt8),
    ice_failed AggregateFunction(uniqExactIf, String, UInt8),
    dtls_stall AggregateFunction(uniqExactIf, String, UInt8),
    distant_relay AggregateFunction(uniqExactIf, String, UInt8),
    stun_unreachable AggregateFunction(uniqExactIf, String, UInt8),
    turn_unreachable AggregateFunction(uniqExactIf, String, UInt8),
    turn_auth_failed AggregateFunction(uniqExactIf, String, UInt8),
    turn_configured AggregateFunction(uniqExactIf, String, UInt8),
    turn_configured_no_relay AggregateFunction(uniqExactIf, String, UInt8),
    high_rtt AggregateFunction(uniqExactIf, String, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, client_region, turn_region, turn_server_id, configured_turn_region, path_class, sdk_version)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS call_minute_mv TO call_minute AS
SELECT
    tenant,
    toStartOfMinute(event_time) AS minute,
    client_region,
    turn_region,
    turn_server_id,
    configured_turn_region,
    path_class,
    sdk_version,
    uniqExactState(call_id) AS calls,
    uniqExactIfState(call_id, toUInt8(ice_connected)) AS connected,
    uniqExactIfState(call_id, toUInt8(startsWith(path_class, 'relay'))) AS relayed,
    uniqExactIfState(call_id, toUInt8(path_class IN ('relay-tcp', 'relay-tls'))) AS relayed_tcp_tls,
    uniqExactIfState(call_id, toUInt8(ice_failed OR never_connected)) AS ice_failed,
    uniqExactIfState(call_id, toUInt8(dtls_stall)) AS dtls_stall,
    uniqExactIfState(call_id, toUInt8(distant_relay)) AS distant_relay,
    uniqExactIfState(call_id, toUInt8(has(labels, 'stun_unreachable'))) AS stun_unreachable,
    uniqExactIfState(call_id, toUInt8(has(labels, 'turn_unreachable'))) AS turn_unreachable,
    uniqExactIfState(call_id, toUInt8(has(labels, 'turn_auth_failed'))) AS turn_auth_failed,
    uniqExactIfState(call_id, toUInt8(configured_turn)) AS turn_configured,
    uniqExactIfState(call_id, toUInt8(configured_turn AND NOT has(gathered_types, 'relay'))) AS turn_configured_no_relay,
    uniqExactIfState(call_id, toUInt8(has(labels, 'high_rtt'))) AS high_rtt
FROM calls
GROUP BY tenant, minute, client_region, turn_region, turn_server_id, configured_turn_region, path_class, sdk_version;

-- Per-minute RTT band time: distinct (call, sample) pairs per band; samples are ~1 s each.
CREATE TABLE IF NOT EXISTS rtt_band_minute
(
    tenant LowCardinality(String),
    minute DateTime('UTC'),
    client_region LowCardinality(String),
    turn_region LowCardinality(String),
    path_class LowCardinality(String),
    rtt_band LowCardinality(String),
    samples AggregateFunction(uniqExact, String, DateTime64(3, 'UTC')),
    rtt_quantiles AggregateFunction(quantilesTDigest(0.5, 0.95), Float32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, client_region, turn_region, path_class, rtt_band)
TTL minute + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rtt_band_minute_mv TO rtt_band_minute AS
SELECT
    tenant,
    toStartOfMinute(at) AS minute,
    client_region,
    turn_region,
    path_class,
    rtt_band,
    uniqExactState(call_id, at) AS samples,
    quantilesTDigestState(0.5, 0.95)(assumeNotNull(rtt_ms)) AS rtt_quantiles
FROM call_samples
WHERE rtt_ms IS NOT NULL
GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band;

-- Pipeline heartbeat: reports ingested per minute (the watchdog alert reads this).
CREATE TABLE IF NOT EXISTS ingest_minute
(
    tenant LowCardinality(String),
    minute DateTime('UTC'),
    source_format LowCardinality(String),
    reports AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, minute, source_format)
TTL minute + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_minute_mv TO ingest_minute AS
SELECT
    tenant,
    toStartOfMinute(ingested_at) AS minute,
    source_format,
    uniqExactState(report_id) AS reports
FROM calls
GROUP BY tenant, minute, source_format;
