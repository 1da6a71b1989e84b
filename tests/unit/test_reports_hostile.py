"""Crafted bodies (tests/bench/hostile_bodies.py) meet a limit that names itself, and the work done
before it is bounded: counted as samples and stats objects charged to the upload's budget,
snapshots handed to the report builder, candidates parsed, characters searched. No timings
(tests/bench/bench_hostile_parse.py measures CPU time against an orjson parse of the same bytes)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from collector.contract import MAX_CANDIDATE_ERRORS, CallReport
from collector.errors import PayloadTooLarge
from collector.reports import UploadContext, candidates, parse_upload, rtcstats, telnyx, webrtc_internals
from collector.reports.budget import MAX_PROPERTIES, Budget
from collector.reports.stats_series import Snapshot
from tests.bench import hostile_bodies as hb

MB = 1024 * 1024


class Work:
    """What one parse did: the upload's budget, snapshots given to build_report, candidate lines parsed."""

    def __init__(self) -> None:
        self.budgets: list[Budget] = []
        self.snapshots = 0
        self.sdp_lines = 0
        self.intervals = 0

    @property
    def budget(self) -> Budget:
        assert len(self.budgets) == 1
        return self.budgets[0]


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    w = Work()
    real_for_body = Budget.for_body.__func__  # type: ignore[attr-defined]

    def for_body(cls: type[Budget], /, size: int, *args: int, **kw: int) -> Budget:
        b: Budget = real_for_body(cls, size, *args, **kw)
        w.budgets.append(b)
        return b

    monkeypatch.setattr(Budget, "for_body", classmethod(for_body))
    for module in (webrtc_internals, rtcstats):
        real_build = module.build_report

        def build(meta: Any, snaps: Iterable[Snapshot], events: Any, real: Any = real_build) -> CallReport:
            listed = list(snaps)
            w.snapshots += len(listed)
            return real(meta, listed, events)  # type: ignore[no-any-return]

        monkeypatch.setattr(module, "build_report", build)
    real_sdp = candidates.from_sdp

    def from_sdp(*args: Any, **kw: Any) -> Any:
        w.sdp_lines += 1
        return real_sdp(*args, **kw)

    monkeypatch.setattr(candidates, "from_sdp", from_sdp)
    real_interval = telnyx._interval

    def interval(*args: Any) -> Any:
        w.intervals += 1
        return real_interval(*args)

    monkeypatch.setattr(telnyx, "_interval", interval)
    return w


def refused(body: bytes, match: str) -> PayloadTooLarge:
    with pytest.raises(PayloadTooLarge, match=match) as exc:
        parse_upload(body, UploadContext())
    return exc.value


def test_webrtc_internals_peer_connections_share_one_sample_budget(work: Work) -> None:
    """64 peer connections of thousands of polls each: refused once the upload's samples are spent
    (at most 2,000 or one per KiB), not after 64 x 20,000 samples were built."""
    body = hb.wi_many_pcs(2 * MB)
    refused(body, r"more than \d+ samples \(snapshots or intervals\) in one upload of this size")
    b = work.budget
    assert b.max_samples == max(2_000, len(body) // 1024)
    assert work.snapshots <= b.max_samples  # snapshots turned into samples before the refusal


def test_webrtc_internals_timed_objects_stop_at_the_object_budget(work: Work) -> None:
    """Hundreds of objects x 1,000 polls: rows are charged as they are read, so the refusal comes
    after one object's rows beyond the budget, before any snapshot is folded."""
    body = hb.wi_many_ids_timed(8 * MB)
    refused(body, r"more than \d+ stats objects over the snapshots of one upload of this size: at most 100000 "
                  r"or one per 64 bytes of body")
    b = work.budget
    assert b.max_objects == len(body) // 64 > 100_000
    assert b.objects <= b.max_objects + 1_000  # one object's timestamp series past the limit
    assert work.snapshots == 0


def test_webrtc_internals_long_untimed_series_are_refused_before_any_report(work: Work) -> None:
    """8 objects of 20,000 samples each: the rows are charged series by series, so the refusal
    comes one series past the object budget, before the polls are even counted."""
    body = hb.wi_long_untimed(2 * MB)
    refused(body, r"more than 100000 stats objects over the snapshots")
    assert work.snapshots == 0 and work.budget.samples == 0
    assert work.budget.objects <= 100_000 + 20_000


def test_webrtc_internals_long_untimed_series_under_the_object_budget_meet_the_sample_budget(work: Work) -> None:
    """Two objects of 20,000 samples: within the object budget, but the 20,000 polls are charged at
    once, before any snapshot is folded."""
    n = 20_000
    end = datetime.fromtimestamp((hb.T0_MS + 1000 * n) / 1000, UTC).isoformat()
    values = orjson.dumps([1] * n).decode()
    series = {"values": values, "startTime": hb.T0_ISO, "endTime": end, "statsType": "transport"}
    doc = {"PeerConnections": {"pc": {"updateLog": [], "stats": {f"RTCTransport_{i % 2}-p{i}": series
                                                                 for i in range(20)}}}}
    refused(orjson.dumps(doc), r"more than 2000 samples \(snapshots or intervals\) .* one per 1024 bytes")
    assert work.snapshots == 0
    assert work.budget.samples == 20_000
    assert work.budget.objects == 40_000  # two objects' rows


def test_webrtc_internals_stats_ids_are_counted_before_any_is_read(work: Work) -> None:
    body = hb.wi_many_tiny_series(3 * MB)
    e = refused(body, r"\d+ stats objects in one peer connection; at most 20000")
    assert int(str(e).split()[0]) == len(orjson.loads(body)["PeerConnections"]["pc"]["stats"]) > 20_000
    assert work.snapshots == 0 and work.budget.samples == 0 and work.budget.objects == 0


def test_webrtc_internals_one_sample_objects_at_distinct_times(work: Work) -> None:
    """Under the id limit, every object alone at its own poll: polls x objects is refused before folding."""
    body = hb.wi_many_tiny_series(19_000 * 110)
    refused(body, r"\d+ sample times x \d+ stats objects is too large a dump")
    assert work.snapshots == 0 and work.budget.samples == 0
    assert work.budget.objects < 20_000  # one row per object was read


def test_webrtc_internals_candidate_events_stop_at_twice_the_report_limit(work: Work) -> None:
    refused(hb.wi_many_events(1 * MB), r"more than 4000 candidate events in one peer connection")
    assert work.sdp_lines == 4_000


def test_rtcstats_events_of_all_peer_connections_share_one_budget(work: Work) -> None:
    """Each of 64 peer connections under its own limits, together far past what the body pays for."""
    body = hb.rtcstats_v1_many_events(4 * MB)
    refused(body, r"more than \d+ peer-connection events in one upload of this size: at most 10000 or one per 256")
    b = work.budget
    assert b.max_events == len(body) // 256
    assert b.events == b.max_events + 1  # the refused event was charged, never built
    assert work.sdp_lines <= b.max_events // 2 + 1  # every other event is a candidate
    assert work.snapshots == 0


class _Searches:
    """A compiled pattern that records the length of every text it searched."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.lengths: list[int] = []

    def search(self, text: str) -> re.Match[str] | None:
        self.lengths.append(len(text))
        return self.pattern.search(text)


def test_old_candidate_text_is_searched_in_its_first_4_kib_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """'candidate:' repeated: the candidate pattern would retry at each repetition over the whole
    rest of the text (quadratic); only the first 4 KiB of an old-style value is searched."""
    searches = _Searches(webrtc_internals._SDP_CANDIDATE)
    monkeypatch.setattr(webrtc_internals, "_SDP_CANDIDATE", searches)
    hostile = "candidate:" * 200_000
    real = "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host generation 0"
    log = [{"time": "1/1/2026, 10:00:00 AM", "type": "onIceCandidate", "value": v} for v in (hostile, real)]
    doc = {"PeerConnections": {"pc": {"updateLog": log, "stats": {}}}}
    (report,) = parse_upload(orjson.dumps(doc), UploadContext())
    assert searches.lengths == [4096, len(real)]
    assert [(c.port, c.candidate_type) for c in report.candidates] == [(50000, "host")]


def test_rtcstats_v1_wide_object_is_refused_before_it_is_copied(work: Work) -> None:
    e = refused(hb.rtcstats_v1_wide_object(1 * MB), rf"a stats object with \d+ properties; at most {MAX_PROPERTIES}")
    assert e.path == "line[1].o"
    assert work.snapshots == 0 and work.budget.objects == 1  # the first line's one object, never copied


def test_rtcstats_v3_empty_deltas_stop_at_the_object_budget(work: Work) -> None:
    """Each empty delta line would copy every known object: the copy is charged before it is made."""
    refused(hb.rtcstats_v3_many_ids(4 * MB), r"stats objects over the snapshots of one upload of this size")
    b = work.budget
    assert b.max_objects == 4 * MB // 16
    assert b.max_objects < b.objects <= b.max_objects + 4 * MB // 40 + 1  # the refused line's copy was never made
    assert work.snapshots == 0


def test_rtcstats_v3_peer_connections_share_one_object_budget(work: Work) -> None:
    """A per-peer-connection budget alone would allow 64 times the work."""
    refused(hb.rtcstats_v3_many_pcs(4 * MB), r"stats objects over the snapshots of one upload of this size")
    b = work.budget
    assert b.objects <= b.max_objects + 300 + 1
    assert work.snapshots == 0


def test_w3c_snapshots_are_charged_before_any_is_read(work: Work) -> None:
    refused(hb.w3c_many_objects(4 * MB), r"more than \d+ samples")
    assert work.budget.samples == 20_000 and work.budget.objects == 0


def test_w3c_events_stop_at_the_report_limit() -> None:
    e = refused(hb.w3c_many_events(1 * MB), rf"more than {MAX_CANDIDATE_ERRORS} icecandidateerror events")
    assert e.path == f"events[{3 * MAX_CANDIDATE_ERRORS + 2}]"  # every third event is an error


def test_telnyx_intervals_are_charged_before_any_is_read(work: Work) -> None:
    """Tiny intervals (a start time each): at most one per 256 bytes of body beyond 2,000."""
    body = orjson.dumps({"summary": {"callId": "hostile"},
                         "stats": [{"intervalStartUtc": hb.T0_MS + 1000 * i} for i in range(10_000)]})
    refused(body, r"more than 2000 samples .* one per 256 bytes of body")
    assert work.intervals == 0


def test_telnyx_distinct_candidates_stop_at_the_report_limit(work: Work) -> None:
    """Two new candidates per interval: refused at the 2,001st, not after building 6,000."""
    stats = [{"intervalStartUtc": hb.T0_MS + 1000 * i, "ice": {"id": f"p{i}",
              "local": {"id": f"l{i}", "candidateType": "host"}, "remote": {"id": f"r{i}", "candidateType": "relay"}}}
             for i in range(1_500)]
    body = orjson.dumps({"summary": {"callId": "hostile"}, "stats": stats})
    e = refused(body, r"more than 2000 distinct candidates in one report")
    assert e.path == "stats[1000].ice.local"
    assert work.intervals == 1_001


def test_real_sized_uploads_keep_their_floor() -> None:
    """The floors: a small upload may always hold 2,000 samples and 100,000 stats objects."""
    b = Budget.for_body(10)
    b.charge_samples(2_000)
    b.charge_objects(100_000)
    with pytest.raises(PayloadTooLarge):
        b.charge_samples(1)
    with pytest.raises(PayloadTooLarge):
        b.charge_objects(1)


class _Matches:
    """A compiled pattern that counts the texts it was asked to match."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.calls = 0

    def match(self, text: str) -> re.Match[str] | None:
        self.calls += 1
        return self.pattern.match(text)


def test_telnyx_android_timeline_is_read_up_to_the_state_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connectionTimeline of 30,000 flapping entries: the first 10,000 are read, the rest counted."""
    matches = _Matches(telnyx._TIMELINE)
    monkeypatch.setattr(telnyx, "_TIMELINE", matches)
    (report,) = parse_upload(hb.telnyx_android_timeline(30_000 * 50), UploadContext())
    entries = 30_000 * 50 // 50
    assert matches.calls == telnyx.MAX_TIMELINE_ENTRIES == 10_000
    assert len(report.states) == 10_000
    note = next(n for n in report.notes if n.code == "timeline-trimmed")
    assert note.text == (f"{entries - 10_000} android_extra.connectionTimeline entries beyond the first 10000 "
                         "were not read")


@pytest.mark.parametrize("end", [1.797693134862316e305, -1.797693134862316e305, 9e15])
def test_untimed_series_far_outside_any_time_are_dropped_not_an_error(end: float) -> None:
    """Sample times beyond any datetime: keyed without overflow, then dropped as times nobody can store."""
    series = {"values": "[1,2,3]", "endTime": end, "statsType": "transport"}
    ok = {"values": "[1,2,3]", "endTime": hb.T0_MS + 2000, "statsType": "transport"}
    doc = {"PeerConnections": {"pc": {"updateLog": [], "stats": {"T-bytesSent": series, "U-bytesSent": ok}}}}
    (report,) = parse_upload(orjson.dumps(doc), UploadContext())
    assert len(report.samples) == 3  # the good object's three polls only


def test_a_gzip_body_is_budgeted_by_its_decompressed_size(work: Work) -> None:
    """A crafted dump compresses well: the allowance follows the bytes decoded, not the bytes sent."""
    body = hb.wi_many_pcs(4 * MB)
    packed = gzip.compress(body)
    assert len(packed) * 5 < len(body)
    refused(packed, r"more than \d+ samples \(snapshots or intervals\) in one upload of this size")
    assert work.budget.max_samples == len(body) // 1024 > 2_000  # not the floor
