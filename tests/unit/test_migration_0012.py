"""Migration 0012 on the real engine (chDB): the bitrate columns renamed to say they are
connection-level (stored values kept), and the SDK's warning codes stored with a Telnyx call. The rows
are of the last day (the calls table keeps 400 days): the fixture's times are moved there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from collector.reports import UploadContext, parse_upload
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.rows.calls import rows_for_call
from processors.store.migrate import migrate
from tests.recent_times import moved_to_recent
from tests.schema_versions import store_at_version

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "telnyx" / "sdk-2.27.10-host-logs.json"


def test_rename_keeps_the_stored_bitrates_and_adds_sdk_warnings(tmp_path: Path) -> None:
    sink = store_at_version(tmp_path, 11)
    try:
        day_ago = datetime.now(UTC) - timedelta(days=1)
        old = {"tenant": "t", "call_id": "old-call", "segment": 0, "report_id": "r-old",
               "event_time": day_ago, "ingested_at": day_ago,
               "source_format": "telnyx", "bitrate_send_kbps": 41.6, "bitrate_recv_kbps": 40.2}
        sink.insert("calls", [old])
        assert next(m.version for m in migrate(sink)) == 12
        columns = {r["name"]: r["type"] for r in sink.query("DESCRIBE TABLE calls")}
        assert "bitrate_send_kbps" not in columns and "bitrate_recv_kbps" not in columns
        assert columns["connection_send_kbps"] == "Nullable(Float64)"
        assert columns["sdk_warnings"] == "Array(LowCardinality(String))"
        q = ("SELECT connection_send_kbps AS s, connection_recv_kbps AS r, sdk_warnings AS w FROM calls "
             "WHERE call_id = {c:String}")
        assert sink.query(q, {"c": "old-call"}) == [{"s": 41.6, "r": 40.2, "w": []}]

        # A Telnyx report with logs, through the real facts and row layout, into the store.
        body = orjson.dumps(moved_to_recent(orjson.loads(FIXTURE.read_bytes())))
        report = parse_upload(body, UploadContext())[0]
        facts = derive_call_facts(report, FactsEnv.default())
        rows = rows_for_call(report, facts, "t", datetime.now(UTC))
        sink.insert("calls", rows["calls"])
        got = sink.query(
            "SELECT sdk_warnings AS w, connection_send_kbps AS s, ice_connect_ms AS ice, dtls_connect_ms AS dtls "
            "FROM calls WHERE call_id = {c:String}", {"c": report.call_id})
        assert len(got) == 1
        assert got[0]["w"] == ["31005", "33005"]
        assert got[0]["s"] == pytest.approx(facts.connection_send_kbps)
        assert got[0]["ice"] == pytest.approx(332.1) and got[0]["dtls"] == pytest.approx(9.5)
        assert migrate(sink) == []  # idempotent
    finally:
        sink.close()
