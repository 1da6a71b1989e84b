"""A dump with Chrome's legacy goog* stats uploaded over HTTP, through the real app and the
embedded store: what the calls table holds afterwards. The fixture (tests/fixtures/legacy) is
moved to the last minutes, since the HTTP route takes only reports of the last 29 days."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from processors.store.chdb import ChdbSink

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "rtcstats-v1-chrome70-legacy-relay-tcp"
T0 = 1_600_000_000_000  # the fixture's clock (tests/fixtures/legacy/build.py)


def recent(shift_ms: int) -> bytes:
    """The fixture with every time (line times, getstats' report timestamp) moved by shift_ms."""
    out = []
    for raw in FIXTURE.read_bytes().splitlines():
        item: list[Any] = orjson.loads(raw)
        item[3] += shift_ms
        if item[0] == "getstats":
            item[2]["timestamp"] += shift_ms
        out.append(orjson.dumps(item))
    return b"\n".join(out) + b"\n"


def test_legacy_dump_upload_is_stored_with_its_path_rtt_and_quality(ingest: httpx.Client, store: ChdbSink) -> None:
    shift = int(time.time() * 1000) - 600_000 - T0
    r = ingest.post(
        "/v1/call-reports", content=recent(shift), headers={"Content-Type": "application/json", "x-call-id": "legacy"}
    )
    assert r.status_code == 202, r.text
    assert r.json()["call_ids"] == ["legacy:PC_0"]
    rows = store.query(
        "SELECT source_format, browser, path_class, relay_protocol, rtt_source, rtt_median_ms, rtt_band, "
        "jitter_ms, loss_pct, ice_connected, dtls_connected, dtls_stall, diagnosis "
        "FROM calls FINAL WHERE call_id = {c:String}",
        {"c": "legacy:PC_0"},
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["source_format"], row["browser"]) == ("rtcstats", "Chrome 70.0.3538.77")
    assert (row["path_class"], row["relay_protocol"], row["rtt_source"]) == ("relay-tcp", "tcp", "candidate-pair")
    assert row["rtt_median_ms"] == pytest.approx(44.0) and row["rtt_band"] == "excellent"
    assert row["jitter_ms"] == pytest.approx(4.5)
    assert row["loss_pct"] == pytest.approx(100 * 5 / 203)
    assert (row["ice_connected"], row["dtls_connected"], row["dtls_stall"]) == (True, True, False)
    assert row["diagnosis"] == "ok"
