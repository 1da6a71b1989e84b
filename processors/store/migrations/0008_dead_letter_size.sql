-- 0008: a dead letter keeps at most the first 64 KiB of the rejected body; raw_bytes says how
-- large the body was, so what was cut is counted.

ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS raw_bytes UInt64 DEFAULT 0;
