-- 0005: dead letters kept in the store (embedded mode has no dead-letter topic; in Kafka mode
-- the dead-letter consumer may copy them here for drill-down).

CREATE TABLE IF NOT EXISTS dead_letters
(
    tenant LowCardinality(String),
    received_at DateTime64(3, 'UTC'),
    stage LowCardinality(String),
    intended LowCardinality(String),
    reason String,
    path String,
    origin String,
    raw String CODEC(ZSTD(3)),
    raw_truncated Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, received_at)
TTL toDateTime(received_at) + INTERVAL 30 DAY;
