"""Reports from clients whose clock is off the server's (docs/faults.md, "Clock skew"), through the
collector app into the embedded store (chDB): within the acceptance window a report is stored at its
own clock's times, unshifted, its durations untouched and a retry counted once; a clock beyond the
window is refused with 422 naming the field, and only a dead letter is stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.http_app import IngestConfig, build_app
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.example_report import example_doc
from tests.http_server import serve

FACTS = "ice_connect_ms, dtls_connect_ms, rtt_median_ms, rtt_p95_ms, ice_gathering_ms"
# The query docs/faults.md gives for finding reports from clocks that are ahead (kept equal to it).
AHEAD_SQL = """SELECT call_id, dateDiff('second', ingested_at, coalesce(ended_at, started_at)) / 3600 AS ahead_h
FROM calls FINAL
WHERE coalesce(ended_at, started_at) > ingested_at + INTERVAL 1 MINUTE
ORDER BY ahead_h DESC"""


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[tuple[httpx.Client, ChdbSink]]:
    sink = ChdbSink(tmp_path / "store")
    publisher = EmbeddedPublisher(sink, RowBuilder(FactsEnv()))
    try:
        migrate(sink)
        app = build_app(publisher, IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"skew"))
        with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield client, sink
    finally:
        publisher.close()  # closes the store


def post(client: httpx.Client, doc: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/call-reports", content=orjson.dumps(doc), headers={"Content-Type": "application/json"})


def test_the_documented_query_is_the_tested_one() -> None:
    assert AHEAD_SQL in (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()


def call_row(sink: ChdbSink, call_id: str) -> dict[str, Any]:
    rows = sink.query(f"SELECT toUnixTimestamp64Milli(started_at) AS started, toUnixTimestamp64Milli(event_time) "
                      f"AS event, {FACTS} FROM calls FINAL WHERE call_id = {{c:String}}", {"c": call_id})
    assert len(rows) == 1, rows
    return rows[0]


def samples(sink: ChdbSink, call_id: str) -> list[int]:
    rows = sink.query("SELECT toUnixTimestamp64Milli(at) AS at FROM call_samples FINAL WHERE call_id = {c:String} "
                      "ORDER BY at", {"c": call_id})
    return [int(r["at"]) for r in rows]


def test_a_skewed_clock_within_the_window_is_stored_at_its_own_times(
        collector: tuple[httpx.Client, ChdbSink]) -> None:
    client, sink = collector
    true_start = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    skews = {"clock-right": timedelta(0), "clock-ahead-3h": timedelta(hours=3),
             "clock-behind-5h": -timedelta(hours=5), "clock-ahead-23h": timedelta(hours=23)}
    docs = {call_id: example_doc(call_id, true_start + skew) for call_id, skew in skews.items()}
    for doc in docs.values():
        r = post(client, doc)
        assert r.status_code == 202, r.text

    right = call_row(sink, "clock-right")
    right_samples = samples(sink, "clock-right")
    assert right_samples
    for call_id, skew in skews.items():
        row = call_row(sink, call_id)
        shift_ms = int(skew.total_seconds() * 1000)
        # unshifted: every time is the client's own, exactly the skew away from the true one
        assert row["started"] - right["started"] == shift_ms
        assert row["event"] - right["event"] == shift_ms
        assert samples(sink, call_id) == [t + shift_ms for t in right_samples]
        # durations are differences of one clock: the skew does not touch them
        assert {k: row[k] for k in FACTS.split(", ")} == {k: right[k] for k in FACTS.split(", ")}

    # The minute rollups hold each call once, in the minute of its own clock.
    minutes = sink.query("SELECT toUnixTimestamp(minute) AS m, uniqExactMerge(calls) AS n FROM call_minute "
                         "GROUP BY minute ORDER BY minute")
    first_minute = int(right["event"]) // 60_000 * 60
    assert [(int(m["m"]) - first_minute, int(m["n"])) for m in minutes] == [
        (-5 * 3600, 1), (0, 1), (3 * 3600, 1), (23 * 3600, 1)]

    # The clocks that are ahead show in the store (docs/faults.md has this query): a report cannot
    # end after the collector took it.
    ahead = sink.query(AHEAD_SQL)
    assert [(r["call_id"], round(float(r["ahead_h"]))) for r in ahead] == [("clock-ahead-23h", 23),
                                                                            ("clock-ahead-3h", 3)]

    # An SDK's retry, later by the server's clock, lands on the same rows: counted once.
    time.sleep(1.1)
    assert post(client, docs["clock-ahead-3h"]).status_code == 202
    assert samples(sink, "clock-ahead-3h") == [t + 3 * 3_600_000 for t in right_samples]
    n_samples = len(right_samples)
    assert sink.query("SELECT count() AS n FROM call_samples FINAL")[0]["n"] == 4 * n_samples
    rtt = sink.query("SELECT countIf(rtt_ms IS NOT NULL) AS n FROM call_samples FINAL")[0]["n"]
    assert sink.query("SELECT uniqExactMerge(samples) AS n FROM rtt_band_minute")[0]["n"] == rtt > 0
    assert sink.query("SELECT count() AS n FROM calls FINAL")[0]["n"] == 4


def test_a_clock_beyond_the_window_is_refused_naming_the_field(collector: tuple[httpx.Client, ChdbSink]) -> None:
    client, sink = collector
    now = datetime.now(UTC).replace(microsecond=0)
    spread = example_doc("clock-jumped", now - timedelta(days=3))
    spread["snapshots"][-1]["timestamp"] = int((now - timedelta(minutes=5)).timestamp() * 1000)
    cases = {
        "clock-ahead-25h": (example_doc("clock-ahead-25h", now + timedelta(hours=25)), "in the future"),
        "clock-behind-30d": (example_doc("clock-behind-30d", now - timedelta(days=30)), "days old"),
        "clock-jumped": (spread, "spans"),  # the clock was set by days during the call
    }
    paths = {}
    for call_id, (doc, why) in cases.items():
        r = post(client, doc)
        assert r.status_code == 422, r.text
        body = r.json()
        assert why in body["error"], body
        paths[call_id] = body["path"]
    assert paths["clock-ahead-25h"] == paths["clock-behind-30d"] == "started_at"
    assert paths["clock-jumped"].startswith(("samples[", "states[", "selected_pairs[", "ended_at")), paths

    assert sink.query("SELECT count() AS n FROM calls")[0]["n"] == 0
    assert sink.query("SELECT count() AS n FROM call_samples")[0]["n"] == 0
    letters = sink.query("SELECT path, reason FROM dead_letters ORDER BY received_at")
    assert [(d["path"], why in d["reason"]) for d, (_, why) in zip(letters, cases.values(), strict=True)] == [
        (paths[c], True) for c in cases]
