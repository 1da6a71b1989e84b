-- 0006: which TURN session served a relayed call, and how that was matched.
--   relayed-address: the call's selected local relay candidate (the TURN relayed address and port)
--                    equals the session's relay address, and the call started while it was allocated;
--   client-network:  otherwise, the same TURN server, the client's truncated address (/24 or /48)
--                    equals the session's, and the call started within the session's lifetime.
-- Relayed addresses are TURN server addresses (not personal data) and are kept whole.

CREATE VIEW IF NOT EXISTS call_turn_sessions AS
WITH
    relayed AS (
        SELECT tenant, call_id, any(concat(address, ':', toString(port))) AS relay_endpoint
        FROM candidates FINAL
        WHERE candidate_type = 'relay' AND NOT is_remote AND selected AND port IS NOT NULL
        GROUP BY tenant, call_id
    ),
    relayed_calls AS (
        SELECT c.tenant AS tenant, c.call_id AS call_id, c.event_time AS event_time,
               c.turn_server_id AS turn_server_id, c.client_address AS client_address,
               r.relay_endpoint AS relay_endpoint
        FROM calls AS c FINAL
        LEFT JOIN relayed AS r ON r.tenant = c.tenant AND r.call_id = c.call_id
        WHERE startsWith(c.path_class, 'relay')
    ),
    sessions AS (
        SELECT tenant, server_id, process_key, session_id, max(relay_address) AS relay_address,
               max(client_address) AS client_address, min(started_at) AS started_at, max(ended_at) AS ended_at
        FROM turn_sessions
        GROUP BY tenant, server_id, process_key, session_id
    ),
    by_address AS (
        SELECT rc.tenant AS tenant, rc.call_id AS call_id, s.server_id AS server_id, s.process_key AS process_key,
               s.session_id AS session_id, 'relayed-address' AS matched_by
        FROM relayed_calls AS rc
        INNER JOIN sessions AS s ON s.tenant = rc.tenant AND s.relay_address = rc.relay_endpoint
        WHERE rc.relay_endpoint != '' AND rc.event_time BETWEEN s.started_at - INTERVAL 5 MINUTE
                                                            AND s.ended_at + INTERVAL 5 MINUTE
    ),
    by_network AS (
        SELECT rc.tenant AS tenant, rc.call_id AS call_id, s.server_id AS server_id, s.process_key AS process_key,
               s.session_id AS session_id, 'client-network' AS matched_by
        FROM relayed_calls AS rc
        INNER JOIN sessions AS s ON s.tenant = rc.tenant AND s.server_id = rc.turn_server_id
                                 AND s.client_address = rc.client_address
        WHERE rc.client_address != '' AND rc.turn_server_id != ''
          AND rc.event_time BETWEEN s.started_at - INTERVAL 1 MINUTE AND s.ended_at
          AND (rc.tenant, rc.call_id) NOT IN (SELECT tenant, call_id FROM by_address)
    )
SELECT * FROM by_address
UNION ALL
SELECT * FROM by_network;
