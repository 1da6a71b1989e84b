-- 0013: the ids Telnyx support quotes for an uploaded call report, so a report can be found by
-- them: x-call-report-id (the call_report_id the SDK's signaling session got at registration;
-- every call of that session shares it) and x-voice-sdk-id. Empty for other uploads and for rows
-- written before this migration.

ALTER TABLE calls ADD COLUMN IF NOT EXISTS call_report_id String DEFAULT '';
ALTER TABLE calls ADD COLUMN IF NOT EXISTS voice_sdk_id String DEFAULT '';
