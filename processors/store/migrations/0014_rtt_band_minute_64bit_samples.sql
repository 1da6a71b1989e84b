-- 0014: rtt_band_minute keeps a 64-bit identity per sample instead of a 128-bit one: half the
-- bytes of what was 84 % of the kept storage (docs/capacity.md). Same table, same view, same
-- columns: readers keep `uniqExactMerge(samples)`; only the state's argument changes, from
-- (call_id, at) (uniqExact hashes several arguments to 128 bits) to cityHash64(call_id, at).
--
-- Collisions: two samples count once when their 64-bit hashes are equal. Over n samples merged
-- into one count the expected number of equal pairs is n^2 / 2^65: a day of 1,000,000
-- concurrent calls (86.4e9 samples, the largest row of docs/capacity.md) read as one count loses
-- ~200 of them (2.3e-9 of the count); a minute of it (60e6) ~1e-4.
--
-- A state's type can't be altered, so the table is rebuilt from what the store has:
-- * every (call, sample) still in call_samples (30 days; the collector refuses samples older
--   than 29 days, so no sample can arrive later for a minute older than that) is hashed anew;
--   FINAL reads the latest version of a sample, as call_samples converges to it;
-- * a minute the old table counted more samples for than call_samples still holds (older than
--   call_samples' TTL) gets that many stand-in identities, hashed from its own key and a
--   counter (and, on a cluster, the shard: each shard rebuilds its own rows from its own
--   call_samples, and shards' counts add up): its uniqExactMerge count stays what it was, and no
--   real sample can meet them;
-- * the RTT quantile states are copied as they were.
-- CREATE OR REPLACE builds the new table beside the old one and swaps them in one step (readers
-- see the old table until then); it reads its own table, whichever state type it holds, so a run
-- stopped before this file is recorded runs again to the same result. Its GROUP BYs spill to
-- disk past 1 GB (a server's call_samples of 30 days does not fit in memory as hashes), and it
-- writes in blocks of at most 4,096 rows (squashing the wide states into the default million-row
-- blocks held 6.2 GB for the 86-million-sample day of docs/capacity.md, 2.5 GB with these).
-- The old view goes first (it can't write the new state). The last statement hashes again the
-- samples published in the last day, for those a writer still running during the migration (a
-- server's old processors) stored between the two views: an identity already there counts once,
-- so it adds only those. Not covered: such a sample published more than a day before it was
-- stored (a Kafka backlog that old), and the RTT quantiles of such samples.

DROP VIEW IF EXISTS rtt_band_minute_mv;

CREATE OR REPLACE TABLE rtt_band_minute
(
    tenant LowCardinality(String),
    minute DateTime('UTC'),
    client_region LowCardinality(String),
    turn_region LowCardinality(String),
    path_class LowCardinality(String),
    rtt_band LowCardinality(String),
    samples AggregateFunction(uniqExact, UInt64),
    rtt_quantiles AggregateFunction(quantilesTDigest(0.5, 0.95), Float32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, client_region, turn_region, path_class, rtt_band)
TTL minute + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000
AS SELECT * FROM
(
SELECT
    tenant, toDateTime(toStartOfMinute(at), 'UTC') AS minute, client_region, turn_region, path_class, rtt_band,
    uniqExactState(cityHash64(call_id, at)) AS samples,
    arrayReduce('quantilesTDigestState(0.5, 0.95)', CAST([], 'Array(Float32)')) AS rtt_quantiles
FROM call_samples FINAL
WHERE rtt_ms IS NOT NULL
GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band
UNION ALL
SELECT
    kept.tenant AS tenant, kept.minute AS minute, kept.client_region AS client_region,
    kept.turn_region AS turn_region, kept.path_class AS path_class, kept.rtt_band AS rtt_band,
    arrayReduce('uniqExactState', arrayMap(i -> cityHash64('rtt_band_minute 0014 stand-in', kept.shard,
        kept.tenant, kept.minute, kept.client_region, kept.turn_region, kept.path_class, kept.rtt_band, i),
        range(toUInt64(greatest(toInt64(kept.n) - toInt64(raw.n), 0))))) AS samples,
    kept.q AS rtt_quantiles
FROM
(
    SELECT tenant, minute, client_region, turn_region, path_class, rtt_band,
           uniqExactMerge(samples) AS n, quantilesTDigestMergeState(0.5, 0.95)(rtt_quantiles) AS q,
           ifNull((SELECT any(substitution) FROM system.macros WHERE macro = 'shard'), '') AS shard
    FROM rtt_band_minute
    GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band
) AS kept
LEFT JOIN
(
    SELECT tenant, toDateTime(toStartOfMinute(at), 'UTC') AS minute, client_region, turn_region, path_class,
           rtt_band, count() AS n
    FROM call_samples FINAL
    WHERE rtt_ms IS NOT NULL
    GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band
) AS raw
ON kept.tenant = raw.tenant AND kept.minute = raw.minute AND kept.client_region = raw.client_region
   AND kept.turn_region = raw.turn_region AND kept.path_class = raw.path_class AND kept.rtt_band = raw.rtt_band
)
SETTINGS join_use_nulls = 0, max_bytes_before_external_group_by = 1000000000,
    min_insert_block_size_rows = 4096, min_insert_block_size_bytes = 67108864;

CREATE MATERIALIZED VIEW IF NOT EXISTS rtt_band_minute_mv TO rtt_band_minute AS
SELECT
    tenant,
    toStartOfMinute(at) AS minute,
    client_region,
    turn_region,
    path_class,
    rtt_band,
    uniqExactState(cityHash64(call_id, at)) AS samples,
    quantilesTDigestState(0.5, 0.95)(assumeNotNull(rtt_ms)) AS rtt_quantiles
FROM call_samples
WHERE rtt_ms IS NOT NULL
GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band;

INSERT INTO rtt_band_minute (tenant, minute, client_region, turn_region, path_class, rtt_band, samples)
SELECT
    tenant, toDateTime(toStartOfMinute(at), 'UTC') AS minute, client_region, turn_region, path_class, rtt_band,
    uniqExactState(cityHash64(call_id, at)) AS samples
FROM call_samples FINAL
WHERE rtt_ms IS NOT NULL AND ingested_at >= now64(3) - INTERVAL 1 DAY
GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band
SETTINGS max_bytes_before_external_group_by = 1000000000,
    min_insert_block_size_rows = 4096, min_insert_block_size_bytes = 67108864;
