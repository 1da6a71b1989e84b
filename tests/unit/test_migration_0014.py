"""Migration 0014 on the real engine (chDB): rtt_band_minute moves to a 64-bit identity per sample
and keeps every count it had, for minutes whose raw samples call_samples still holds, has lost
(its TTL) or has partly lost; new samples land in the new state and a replay counts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.store.chdb import ChdbSink
from processors.store.migrate import load_migrations, migrate
from tests.schema_versions import store_at_version

_NOW = datetime.now(UTC).replace(second=0, microsecond=0)
RECENT = _NOW - timedelta(days=1, hours=2)  # within call_samples' 30 days
OLD = _NOW - timedelta(days=60)  # past them, within rtt_band_minute's 90
PARTLY = _NOW - timedelta(days=2, hours=3)  # a minute some of whose raw samples are deleted

BY_KEY = ("SELECT tenant, minute, client_region, turn_region, path_class, rtt_band, uniqExactMerge(samples) AS n, "
          "arrayMap(x -> round(x, 3), quantilesTDigestMerge(0.5, 0.95)(rtt_quantiles)) AS q FROM rtt_band_minute "
          "GROUP BY tenant, minute, client_region, turn_region, path_class, rtt_band "
          "ORDER BY tenant, minute, client_region, turn_region, path_class, rtt_band")
# Counts merged across rows (a dashboard's read): a sample counts once however rows are combined.
BY_BAND = "SELECT rtt_band, uniqExactMerge(samples) AS n FROM rtt_band_minute GROUP BY rtt_band ORDER BY rtt_band"
TOTAL = "SELECT uniqExactMerge(samples) AS n FROM rtt_band_minute"


def sample(call: str, at: datetime, rtt: float | None, region: str = "eu", band: str = "good",
           path: str = "relay-udp", tenant: str = "t") -> dict[str, Any]:
    return {"tenant": tenant, "call_id": call, "at": at, "duration_s": 1.0, "rtt_ms": rtt, "rtt_source": "pair",
            "rtt_band": band, "client_region": region, "turn_region": "eu-west", "path_class": path,
            "ingested_at": at + timedelta(minutes=1)}


def calls(minute: datetime, n_calls: int, seconds: int, band: str, rtt: float, **kw: Any) -> list[dict[str, Any]]:
    tenant = kw.get("tenant", "t")
    return [sample(f"{tenant}-{band}-{minute:%m%d%H%M}-{c}", minute + timedelta(seconds=s, milliseconds=c), rtt + c,
                   band=band, **kw) for c in range(n_calls) for s in range(seconds)]


def samples_type(sink: ChdbSink) -> str:
    return str(sink.query("SELECT type FROM system.columns WHERE database = currentDatabase() "
                          "AND table = 'rtt_band_minute' AND name = 'samples'")[0]["type"])


def fill(sink: ChdbSink) -> None:
    """Samples of three kinds of minutes, written as the processor writes them (the view builds the
    rollup on insert), then call_samples loses what its TTL and a deletion take."""
    sink.insert("call_samples", calls(RECENT, 4, 30, "good", 40.0))
    sink.insert("call_samples", calls(RECENT, 2, 20, "poor", 400.0, region="us"))
    sink.insert("call_samples", calls(RECENT, 3, 10, "good", 80.0, tenant="u"))
    sink.insert("call_samples", [sample("no-rtt", RECENT, None)])  # no RTT: never in the rollup
    # a retried upload converges: the same samples again in a new block
    sink.insert("call_samples", [*calls(RECENT, 1, 30, "good", 40.0), sample("late", RECENT, 55.0)])
    sink.insert("call_samples", calls(OLD, 5, 12, "acceptable", 150.0))
    sink.insert("call_samples", calls(OLD, 2, 7, "good", 30.0, path="host"))
    sink.insert("call_samples", calls(PARTLY, 3, 10, "good", 60.0))
    sink.execute("OPTIMIZE TABLE call_samples FINAL")  # the TTL takes the 60-day-old samples
    sink.execute(f"DELETE FROM call_samples WHERE at >= '{PARTLY:%Y-%m-%d %H:%M:%S}' "
                 f"AND at < '{PARTLY + timedelta(minutes=1):%Y-%m-%d %H:%M:%S}' AND call_id LIKE '%-0'")
    left = sink.query("SELECT countIf(at < now() - INTERVAL 30 DAY) AS old, "
                      f"countIf(toStartOfMinute(at) = '{PARTLY:%Y-%m-%d %H:%M:%S}') AS partly FROM call_samples")
    assert left == [{"old": 0, "partly": 20}]


def test_counts_and_quantiles_survive_and_new_samples_land_in_the_64_bit_state(tmp_path: Path) -> None:
    sink = store_at_version(tmp_path, 13)
    try:
        fill(sink)
        assert samples_type(sink) == "AggregateFunction(uniqExact, String, DateTime64(3, 'UTC'))"
        before = sink.query(BY_KEY), sink.query(BY_BAND), sink.query(TOTAL)
        assert before[2] == [{"n": 4 * 30 + 1 + 2 * 20 + 3 * 10 + 5 * 12 + 2 * 7 + 3 * 10}]

        assert [m.version for m in migrate(sink)] == [14]
        assert samples_type(sink) == "AggregateFunction(uniqExact, UInt64)"
        assert (sink.query(BY_KEY), sink.query(BY_BAND), sink.query(TOTAL)) == before

        # A stopped run sends the file again whole: the rebuilt table reads itself to the same result.
        mig = next(m for m in load_migrations() if m.version == 14)
        for stmt in mig.statements():
            sink.execute(stmt)
        assert (sink.query(BY_KEY), sink.query(BY_BAND), sink.query(TOTAL)) == before
        assert migrate(sink) == []

        total = before[2][0]["n"]
        # A replay of samples counted before the migration counts once: their identities were rebuilt
        # from call_samples. (Stand-ins replace only samples call_samples no longer holds: older than its
        # TTL, which the collector refuses to take again.)
        replay = calls(RECENT, 2, 30, "good", 40.0) + [r for r in calls(PARTLY, 3, 10, "good", 60.0)
                                                        if not r["call_id"].endswith("-0")]
        sink.insert("call_samples", replay)
        assert sink.query(TOTAL) == [{"n": total}]
        # new samples, in a rebuilt minute, a carried-over one (stand-ins) and a new one, add one each
        fresh = [sample("new-a", RECENT + timedelta(seconds=59), 41.0), sample("new-b", OLD, 150.0, band="acceptable"),
                 sample("new-c", RECENT + timedelta(minutes=5), 43.0)]
        sink.insert("call_samples", fresh)
        assert sink.query(TOTAL) == [{"n": total + 3}]
        # the same block retried: deduplicated in call_samples and in the rollup it feeds
        rows = sink.query("SELECT count() AS n FROM rtt_band_minute")[0]["n"]
        sink.insert("call_samples", fresh)
        assert sink.query("SELECT count() AS n FROM rtt_band_minute")[0]["n"] == rows
        assert sink.query(TOTAL) == [{"n": total + 3}]
        got = sink.query("SELECT quantilesTDigestMerge(0.5, 0.95)(rtt_quantiles)[1] AS p50 FROM rtt_band_minute "
                         "WHERE minute = {m:DateTime}", {"m": (RECENT + timedelta(minutes=5)).replace(tzinfo=None)})
        assert got == [{"p50": pytest.approx(43.0)}]
    finally:
        sink.close()


def test_a_sample_written_between_the_two_views_is_counted(tmp_path: Path) -> None:
    """On a server, a processor still running the old build writes while another migrates: a sample
    stored after the old view is gone and before the new one exists is counted by the last statement."""
    sink = store_at_version(tmp_path, 13)
    try:
        fill(sink)
        total = sink.query(TOTAL)[0]["n"]
        drop_old_view, rebuild, new_view, gap = next(m for m in load_migrations() if m.version == 14).statements()
        sink.execute(drop_old_view)
        sink.execute(rebuild)
        now = datetime.now(UTC).replace(microsecond=0)
        between = [sample("between", now - timedelta(seconds=s), 70.0) for s in range(5)]
        sink.insert("call_samples", [{**r, "ingested_at": now} for r in between])
        assert sink.query(TOTAL) == [{"n": total}]  # no view wrote them
        sink.execute(new_view)
        sink.execute(gap)
        assert sink.query(TOTAL) == [{"n": total + 5}]
        assert [m.version for m in migrate(sink)] == [14]  # not recorded yet: sent again whole
        assert sink.query(TOTAL) == [{"n": total + 5}]
    finally:
        sink.close()


def test_an_empty_store_migrates_to_the_64_bit_state(tmp_path: Path) -> None:
    sink = ChdbSink(tmp_path / "store")
    try:
        assert [m.version for m in migrate(sink)][-1] == 14
        assert samples_type(sink) == "AggregateFunction(uniqExact, UInt64)"
        assert sink.query(TOTAL) == [{"n": 0}]
        sink.insert("call_samples", calls(RECENT, 2, 3, "good", 40.0))
        assert sink.query(BY_BAND) == [{"rtt_band": "good", "n": 6}]
    finally:
        sink.close()
