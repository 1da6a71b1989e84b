-- 0011: when a probe result was written to the store. ingested_at is when the collector published
-- it, so stored_at - ingested_at is the time it spent in Kafka and the processor (the
-- pipeline-consumer-lag alert reads it). Rows written before this migration have stored_at = the
-- time of the migration's first read of them, not their real write time; the rule reads new rows.

ALTER TABLE probes ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3);
