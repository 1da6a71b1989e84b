"""POST /call_report with a real SDK body, through the real app and the embedded store: what the
calls table holds afterwards (the SDK's exact connect times, warnings and ids), and a bad logs
block refused with a 4xx and kept as a dead letter. The committed bodies are moved to the last minutes
(tests/recent_times.py): the route takes only reports of the last 29 days."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from processors.store.chdb import ChdbSink
from tests.recent_times import moved_to_recent

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "telnyx-sdk"
WARNING = re.compile(r"[Ww]arning (\d{5}): ")
TIMING = re.compile(r"^\[CallTimings\]\S* (?P<step>\S.*?) +(?:-|[\d.]+ms) +(?P<ms>[\d.]+)ms$")


def test_sdk_upload_is_stored_with_its_exact_times_warnings_and_ids(ingest: httpx.Client, store: ChdbSink) -> None:
    body: dict[str, Any] = moved_to_recent(orjson.loads((REAL / "relay_udp.json").read_bytes()))
    raw = orjson.dumps(body)
    headers: dict[str, str] = orjson.loads((REAL / "relay_udp.headers.json").read_bytes())
    found = (TIMING.match(e["message"]) for e in body["logs"])
    logged = {m.group("step"): float(m.group("ms")) for m in found if m}
    r = ingest.post("/call_report", content=raw, headers=headers)
    assert r.status_code == 202, r.text
    rows = store.query(
        "SELECT path_class, relay_protocol, ice_connect_ms, dtls_connect_ms, sdk_warnings, call_report_id, "
        "voice_sdk_id, connection_send_kbps FROM calls FINAL WHERE call_id = {c:String}", {"c": headers["x-call-id"]})
    assert len(rows) == 1
    row = rows[0]
    assert (row["path_class"], row["relay_protocol"]) == ("relay-udp", "udp")
    assert row["ice_connect_ms"] == pytest.approx(logged["ICE connection established"], abs=0.001)
    assert row["dtls_connect_ms"] == pytest.approx(
        logged["Secure media channel established (DTLS)"] - logged["ICE connection established"], abs=0.001)
    assert row["sdk_warnings"] == sorted({m.group(1) for e in body["logs"] if (m := WARNING.search(e["message"]))})
    assert "33005" not in row["sdk_warnings"]  # a relay call has more than host candidates
    assert (row["call_report_id"], row["voice_sdk_id"]) == ("testbed-relay_udp", "testbed-voice-sdk-relay_udp")
    # Connection-level: more than the SDK's own audio (payload) bitrate, by the headers, SRTP tags, RTCP.
    audio = [s.get("audio", {}).get("outbound", {}).get("bitrateAvg") for s in body["stats"]]
    assert len([a for a in audio if a]) >= 5
    assert row["connection_send_kbps"] > max(a for a in audio if a) / 1000 * 1.3


def test_a_logs_block_that_is_not_a_list_is_a_422_and_a_dead_letter(ingest: httpx.Client, store: ChdbSink) -> None:
    body: dict[str, Any] = moved_to_recent(orjson.loads((REAL / "host.json").read_bytes()))
    for logs in ({"0": "not a list"}, "text", 12):
        r = ingest.post("/call_report", content=orjson.dumps(body | {"logs": logs}),
                        headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["path"] == "logs"
    assert store.query("SELECT count() AS n FROM calls")[0]["n"] == 0
    dead = store.query("SELECT path FROM dead_letters")
    assert [d["path"] for d in dead] == ["logs"] * 3


def test_hostile_log_entries_are_skipped_not_refused(ingest: httpx.Client, store: ChdbSink) -> None:
    body: dict[str, Any] = moved_to_recent(orjson.loads((REAL / "host.json").read_bytes()))
    body["logs"] = body["logs"] + [None, 5, {"message": ["x"]}, {"message": "\x00" * 10_000, "timestamp": 1e300}]
    r = ingest.post("/call_report", content=orjson.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    rows = store.query("SELECT sdk_warnings, ice_connected FROM calls FINAL")
    assert len(rows) == 1 and rows[0]["ice_connected"] is True and "33005" in rows[0]["sdk_warnings"]
