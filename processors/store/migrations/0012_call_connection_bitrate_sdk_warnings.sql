-- 0012: Telnyx reports read fully (issue 13).
-- The bitrate columns always measured connection-level bytes (every packet on the ICE transport:
-- RTP/RTCP headers, SRTP tags and STUN included), not an audio payload bitrate: they are renamed
-- so. RENAME keeps the stored values. Telnyx rows written before this migration from reports
-- without a `connection` block (SDKs before 2.25.x shapes with audio counters only) hold the audio
-- payload bitrate instead; newer code leaves those empty.
-- sdk_warnings: the distinct warning codes the SDK logged for the call (Telnyx: e.g. 33005, only
-- host candidates; 31001, high RTT), from its report's logs block.

ALTER TABLE calls RENAME COLUMN IF EXISTS bitrate_send_kbps TO connection_send_kbps;
ALTER TABLE calls RENAME COLUMN IF EXISTS bitrate_recv_kbps TO connection_recv_kbps;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS sdk_warnings Array(LowCardinality(String)) DEFAULT [];
