-- 0002: TURN server log events (coturn), per-session facts and the per-server minute rollup.
-- Immutable once released: change the schema with a new numbered file.
-- Convention: every statement ends with a semicolon at the end of a line, and there is no other.

-- One row per parsed log line. event_id = server + file identity + byte offset, so a line the
-- tailer publishes again after a crash converges to one row. raw has user names replaced by
-- their keyed hash.
CREATE TABLE IF NOT EXISTS turn_events
(
    tenant LowCardinality(String),
    event_id String,
    server_id LowCardinality(String),
    region LowCardinality(String),
    process_key String,
    session_id String,
    at Nullable(DateTime64(3, 'UTC')),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    event_time DateTime64(3, 'UTC') DEFAULT ifNull(at, ingested_at),
    kind LowCardinality(String),
    level LowCardinality(String),
    method LowCardinality(String),
    success Nullable(Bool),
    error_code Nullable(UInt16),
    reason String,
    realm LowCardinality(String),
    user_hash String,
    user_present Nullable(Bool),
    client_address String,
    listener_address String,
    peer_address String,
    relay_address String,
    transport LowCardinality(String),
    lifetime_s Nullable(UInt32),
    channel Nullable(UInt16),
    rx_packets UInt64,
    rx_bytes UInt64,
    tx_packets UInt64,
    tx_bytes UInt64,
    uptime_s Nullable(UInt64),
    is_auth_challenge UInt8,
    is_auth_rejected UInt8,
    is_alloc_ok UInt8,
    is_alloc_failed UInt8,
    is_peer_denied UInt8,
    is_refresh UInt8,
    relayed_bytes UInt64,
    raw String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, server_id, event_id)
TTL toDateTime(event_time) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per TURN session after merges (query with GROUP BY or FINAL): keyed by
-- (server, process, session id) because coturn's ids restart with the process.
-- Counts are distinct event ids, so a replayed line cannot count twice; the usage deltas are kept
-- as a set keyed by event id for the same reason (turn_session_summary sums them).
CREATE TABLE IF NOT EXISTS turn_sessions
(
    tenant LowCardinality(String),
    server_id LowCardinality(String),
    process_key String,
    session_id String,
    region SimpleAggregateFunction(max, LowCardinality(String)),
    realm SimpleAggregateFunction(max, String),
    user_hash SimpleAggregateFunction(max, String),
    transport SimpleAggregateFunction(max, String),
    client_address SimpleAggregateFunction(max, String),
    listener_address SimpleAggregateFunction(max, String),
    relay_address SimpleAggregateFunction(max, String),
    allocated SimpleAggregateFunction(max, UInt8),
    deallocated SimpleAggregateFunction(max, UInt8),
    error_codes SimpleAggregateFunction(groupUniqArrayArray, Array(UInt16)),
    auth_challenges AggregateFunction(uniqExactIf, String, UInt8),
    auth_rejected AggregateFunction(uniqExactIf, String, UInt8),
    denied_peers AggregateFunction(uniqExactIf, String, UInt8),
    refreshes AggregateFunction(uniqExactIf, String, UInt8),
    permissions SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    channels SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    -- (cityHash64(event_id), is peer leg, packets, bytes) of every usage / peer usage line
    usage AggregateFunction(groupUniqArrayIf, Tuple(UInt64, UInt8, UInt64, UInt64), UInt8),
    started_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    ended_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    close_reason SimpleAggregateFunction(max, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (tenant, server_id, process_key, session_id)
TTL toDateTime(started_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS turn_sessions_mv TO turn_sessions AS
SELECT
    tenant,
    server_id,
    process_key,
    session_id,
    max(region) AS region,
    max(realm) AS realm,
    max(user_hash) AS user_hash,
    max(transport) AS transport,
    max(if(kind = 'closed', client_address, '')) AS client_address,
    max(if(kind = 'closed', listener_address, '')) AS listener_address,
    max(relay_address) AS relay_address,
    max(toUInt8(is_alloc_ok OR (kind = 'allocation' AND reason = 'new'))) AS allocated,
    max(toUInt8(kind = 'allocation' AND reason = 'refreshed' AND ifNull(lifetime_s, 1) = 0)) AS deallocated,
    groupUniqArrayArray(if(kind = 'request' AND error_code IS NOT NULL AND is_auth_challenge = 0,
        [assumeNotNull(error_code)], CAST([], 'Array(UInt16)'))) AS error_codes,
    uniqExactIfState(event_id, is_auth_challenge) AS auth_challenges,
    uniqExactIfState(event_id, is_auth_rejected) AS auth_rejected,
    uniqExactIfState(event_id, is_peer_denied) AS denied_peers,
    uniqExactIfState(event_id, is_refresh) AS refreshes,
    groupUniqArrayArray(if(kind = 'permission' AND lifetime_s > 0, [peer_address], [])) AS permissions,
    groupUniqArrayArray(if(kind = 'channel_bind', [peer_address], [])) AS channels,
    groupUniqArrayIfState((cityHash64(event_id), toUInt8(kind = 'peer_usage'), rx_packets + tx_packets,
        rx_bytes + tx_bytes), toUInt8(kind IN ('usage', 'peer_usage'))) AS usage,
    min(event_time) AS started_at,
    max(event_time) AS ended_at,
    max(if(kind = 'closed', reason, '')) AS close_reason
FROM turn_events
WHERE session_id != '' AND kind != 'request_message'
GROUP BY tenant, server_id, process_key, session_id;

-- Per TURN server per minute: log heartbeat (distinct lines), allocations ok / failed by error
-- code, rejected credentials (not the normal 401 challenge), relayed bytes, distinct sessions.
-- Every measure is keyed by event id, so a replayed line never counts twice:
--   uniqExactMerge(lines), arraySum(x -> x.2, groupUniqArrayIfMerge(relayed_bytes)),
--   failed allocations per code: arrayMap over groupUniqArrayIfMerge(alloc_failed_codes) (code, event).
CREATE TABLE IF NOT EXISTS turn_server_minute
(
    tenant LowCardinality(String),
    server_id LowCardinality(String),
    region LowCardinality(String),
    minute DateTime('UTC'),
    lines AggregateFunction(uniqExact, String),
    allocs_ok AggregateFunction(uniqExactIf, String, UInt8),
    allocs_failed AggregateFunction(uniqExactIf, String, UInt8),
    alloc_failed_codes AggregateFunction(groupUniqArrayIf, Tuple(UInt16, UInt64), UInt8),
    auth_rejected AggregateFunction(uniqExactIf, String, UInt8),
    auth_challenges AggregateFunction(uniqExactIf, String, UInt8),
    peers_denied AggregateFunction(uniqExactIf, String, UInt8),
    relayed_bytes AggregateFunction(groupUniqArrayIf, Tuple(UInt64, UInt64), UInt8),
    sessions AggregateFunction(uniqExactIf, String, String, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, server_id, region, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS turn_server_minute_mv TO turn_server_minute AS
SELECT
    tenant,
    server_id,
    region,
    toStartOfMinute(event_time) AS minute,
    uniqExactState(event_id) AS lines,
    uniqExactIfState(event_id, is_alloc_ok) AS allocs_ok,
    uniqExactIfState(event_id, is_alloc_failed) AS allocs_failed,
    groupUniqArrayIfState((ifNull(error_code, toUInt16(0)), cityHash64(event_id)), is_alloc_failed)
        AS alloc_failed_codes,
    uniqExactIfState(event_id, is_auth_rejected) AS auth_rejected,
    uniqExactIfState(event_id, is_auth_challenge) AS auth_challenges,
    uniqExactIfState(event_id, is_peer_denied) AS peers_denied,
    groupUniqArrayIfState((cityHash64(event_id), relayed_bytes), toUInt8(relayed_bytes > 0)) AS relayed_bytes,
    uniqExactIfState(process_key, session_id, toUInt8(session_id != '')) AS sessions
FROM turn_events
GROUP BY tenant, server_id, region, minute;

-- Sessions with their merged measures, for people who write their own SQL.
CREATE VIEW IF NOT EXISTS turn_session_summary AS
SELECT
    tenant, server_id, process_key, session_id,
    max(region) AS region, max(realm) AS realm, max(user_hash) AS user_hash, max(transport) AS transport,
    max(client_address) AS client_address, max(listener_address) AS listener_address,
    max(relay_address) AS relay_address, max(allocated) AS allocated, max(deallocated) AS deallocated,
    groupUniqArrayArray(error_codes) AS error_codes,
    uniqExactIfMerge(auth_challenges) AS auth_challenges, uniqExactIfMerge(auth_rejected) AS auth_rejected,
    uniqExactIfMerge(denied_peers) AS denied_peers, uniqExactIfMerge(refreshes) AS refreshes,
    groupUniqArrayArray(permissions) AS permissions, groupUniqArrayArray(channels) AS channels,
    groupUniqArrayIfMerge(usage) AS usage_lines,
    arraySum(arrayMap(u -> if(u.2 = 0, u.3, 0), usage_lines)) AS client_packets,
    arraySum(arrayMap(u -> if(u.2 = 0, u.4, 0), usage_lines)) AS client_bytes,
    arraySum(arrayMap(u -> if(u.2 = 1, u.3, 0), usage_lines)) AS peer_packets,
    arraySum(arrayMap(u -> if(u.2 = 1, u.4, 0), usage_lines)) AS peer_bytes,
    min(started_at) AS started_at, max(ended_at) AS ended_at, max(close_reason) AS close_reason
FROM turn_sessions
GROUP BY tenant, server_id, process_key, session_id;
