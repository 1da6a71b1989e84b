"""Probe results posted over HTTP, through the real app into the embedded store: a result stamped
older than the probes table keeps (90 days, so more than 89 days back) or more than a day ahead
is a 422 naming the field and nothing but a dead letter is stored, as for call reports; one within
the window is stored, even if a call report of that age would be refused (29 days). Times are
relative to the real clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from processors.store.chdb import ChdbSink


def result(probe_id: str, at: datetime) -> dict[str, Any]:
    return {"probe_id": probe_id, "server_id": "turn-eu-1", "vantage": "remote-1", "kind": "stun_binding",
            "transport": "udp", "target": "turn-eu.example.net:3478", "at": at.isoformat(), "success": True,
            "latency_ms": 12.5}


def stored(store: ChdbSink) -> list[str]:
    return [r["probe_id"] for r in store.query("SELECT probe_id FROM probes FINAL ORDER BY probe_id")]


@pytest.mark.parametrize(("age", "words"), [
    (timedelta(days=100), ["more than 89 days before", "the probes table keeps 90 days"]),
    (timedelta(days=-2), ["more than 1 day after"]),
])
def test_a_result_outside_the_window_is_refused_whole_and_only_dead_lettered(
        ingest: httpx.Client, store: ChdbSink, age: timedelta, words: list[str]) -> None:
    now = datetime.now(UTC)
    body = orjson.dumps([result("p-ok", now - timedelta(minutes=1)), result("p-bad", now - age)])
    r = ingest.post("/v1/probe-results", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["path"] == "[1].at"
    assert all(w in r.json()["error"] for w in words)
    assert stored(store) == []  # all or none: the good result of the request is not stored either
    letters = store.query("SELECT stage, intended, reason, path, raw FROM dead_letters")
    assert len(letters) == 1
    d = letters[0]
    assert (d["stage"], d["intended"], d["path"]) == ("collector", "probe_result", "[1].at")
    assert d["reason"] == r.json()["error"] and orjson.loads(d["raw"]) == orjson.loads(body)


def test_results_within_what_the_probes_table_keeps_are_stored(ingest: httpx.Client, store: ChdbSink) -> None:
    now = datetime.now(UTC)
    body = b"\n".join(orjson.dumps(result(f"p{i}", now - age)) for i, age in enumerate(
        [timedelta(minutes=1), timedelta(days=60), timedelta(days=89) - timedelta(minutes=5), timedelta(hours=-23)]))
    r = ingest.post("/v1/probe-results", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202, r.text
    assert stored(store) == ["p0", "p1", "p2", "p3"]
    assert store.query("SELECT count() AS n FROM dead_letters")[0]["n"] == 0
