-- 0009: how much a call report carries (samples + states + candidates + errors + pairs), so that a
-- report with less never replaces one with more of the same call and segment.

ALTER TABLE calls ADD COLUMN IF NOT EXISTS richness UInt32 DEFAULT 0;
