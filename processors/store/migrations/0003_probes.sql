-- 0003: active STUN/TURN probe results and their per-minute rollup.

CREATE TABLE IF NOT EXISTS probes
(
    tenant LowCardinality(String),
    probe_id String,
    at DateTime64(3, 'UTC'),
    server_id LowCardinality(String),
    region LowCardinality(String),
    vantage LowCardinality(String),
    kind LowCardinality(String),
    transport LowCardinality(String),
    target String,
    success Bool,
    error_code Nullable(UInt16),
    error String,
    latency_ms Nullable(Float64),
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, server_id, at, probe_id)
TTL toDateTime(at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS probe_minute
(
    tenant LowCardinality(String),
    minute DateTime('UTC'),
    server_id LowCardinality(String),
    region LowCardinality(String),
    transport LowCardinality(String),
    kind LowCardinality(String),
    probes AggregateFunction(uniqExact, String),
    failures AggregateFunction(uniqExactIf, String, UInt8),
    failing_vantages AggregateFunction(uniqExactIf, String, UInt8),
    vantages AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, minute, server_id, region, transport, kind)
TTL minute + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS probe_minute_mv TO probe_minute AS
SELECT
    tenant,
    toStartOfMinute(at) AS minute,
    server_id,
    region,
    transport,
    kind,
    uniqExactState(probe_id) AS probes,
    uniqExactIfState(probe_id, toUInt8(NOT success)) AS failures,
    uniqExactIfState(vantage, toUInt8(NOT success)) AS failing_vantages,
    uniqExactState(vantage) AS vantages
FROM probes
GROUP BY tenant, minute, server_id, region, transport, kind;
