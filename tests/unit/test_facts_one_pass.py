"""derive_rtt and derive_quality read each sample's duration once (rtt.seconds_of) and walk the samples
in one pass since 2026-11-26; ordered_samples keeps a report whose starts already increase as it is;
derive_ice reads the samples' ICE states once; richness counts distinct starts by their time order;
report_origin takes the ordered samples' first start.
The per-sample forms they replaced are kept here as the reference: on hypothesis-made samples
(repeated and unordered starts, or one per start in order; missing, reversed and zero-length
intervals; NaN/inf/negative values the contract would refuse, built with model_construct) both must
give the same facts and rows, float for float."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.contract import Sample
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.ice import count_reconnects, derive_ice
from processors.facts.quality import QualityFacts, derive_quality, estimate_mos
from processors.facts.rtt import RttStats, derive_rtt, percentile, rtt_band, seconds_of
from processors.facts.timeline import ordered_samples, report_origin, sample_durations
from processors.rows.calls import richness, rows_for_call
from tests.unit.test_facts_fixtures import T0, make_report


def _reference_ordered(samples: Sequence[Sample]) -> list[Sample]:
    unique: dict[datetime, Sample] = {}
    for s in samples:
        unique.setdefault(s.start, s)
    return [unique[k] for k in sorted(unique)]


def _reference_sample_seconds(s: Sample) -> float:
    if s.end is not None:
        seconds = (s.end - s.start).total_seconds()
        if seconds > 0:
            return seconds
    return 1.0


def _reference_rtt(samples: Sequence[Sample]) -> RttStats:
    pool = [s for s in samples if s.rtt_ms is not None and math.isfinite(s.rtt_ms) and s.rtt_ms >= 0]
    chosen: list[Sample] = []
    source = ""
    for candidate in ("candidate-pair", "remote-inbound-rtp", None):
        chosen = [s for s in pool if s.rtt_source == candidate]
        if chosen:
            source = candidate or "unknown"
            break
    seconds = {band: 0.0 for band in ("excellent", "good", "acceptable", "poor")}
    if not chosen:
        return RttStats(source, 0, None, None, None, "", seconds)
    values = sorted(s.rtt_ms for s in chosen if s.rtt_ms is not None)
    for s in chosen:
        if s.rtt_ms is not None:
            seconds[rtt_band(s.rtt_ms)] += _reference_sample_seconds(s)
    median = percentile(values, 50)
    return RttStats(source, len(values), median, percentile(values, 95), values[-1], rtt_band(median), seconds)


def _reference_kbps(samples: Sequence[Sample], attr: str) -> float | None:
    total_bytes = 0
    seconds = 0.0
    for s in samples:
        value = getattr(s, attr)
        if value is not None:
            total_bytes += max(0, value)
            seconds += _reference_sample_seconds(s)
    return total_bytes * 8 / 1000 / seconds if seconds > 0 else None


def _reference_quality(samples: Sequence[Sample], rtt_median_ms: float | None) -> QualityFacts:
    jitters = [s.jitter_ms for s in samples if s.jitter_ms is not None and s.jitter_ms >= 0]
    jitter = sum(jitters) / len(jitters) if jitters else None
    received = lost = 0
    counted = False
    for s in samples:
        if s.packets_received is not None or s.packets_lost is not None:
            counted = True
            received += max(0, s.packets_received or 0)
            lost += max(0, s.packets_lost or 0)
    loss = 100.0 * lost / (received + lost) if counted and received + lost > 0 else None
    return QualityFacts(jitter, loss, estimate_mos(rtt_median_ms, jitter, loss),
                        _reference_kbps(samples, "bytes_sent"), _reference_kbps(samples, "bytes_received"))


_MS = st.one_of(
    st.none(),
    st.sampled_from([0.0, 99.999, 100.0, 149.9, 150.0, 299.9, 300.0, -1.0, math.nan, math.inf]),
    st.floats(min_value=0, max_value=600_000, allow_nan=False),
)
_COUNT = st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1))
_BYTES = st.one_of(st.none(), st.integers(min_value=-5, max_value=2**63 - 1))


@st.composite
def _samples(draw: st.DrawFn) -> list[Sample]:
    out: list[Sample] = []
    for _ in range(draw(st.integers(min_value=0, max_value=40))):
        start = T0 + timedelta(milliseconds=draw(st.integers(min_value=0, max_value=30)) * 500)
        length = draw(st.one_of(st.none(), st.integers(min_value=-2000, max_value=5000)))
        micros = draw(st.integers(min_value=0, max_value=999))
        out.append(Sample.model_construct(
            start=start,
            end=None if length is None else start + timedelta(milliseconds=length, microseconds=micros),
            rtt_ms=draw(_MS),
            rtt_source=draw(st.sampled_from([None, "candidate-pair", "remote-inbound-rtp"])),
            jitter_ms=draw(_MS),
            packets_received=draw(_COUNT),
            packets_lost=draw(_COUNT),
            bytes_sent=draw(_BYTES),
            bytes_received=draw(_BYTES),
        ))
    if draw(st.booleans()):  # as most reports come: one sample per start, in time order
        return _reference_ordered(out)
    return out


@settings(max_examples=300, deadline=None)
@given(_samples(), st.one_of(st.none(), st.floats(min_value=0, max_value=2000, allow_nan=False)))
def test_one_pass_rtt_and_quality_equal_the_per_sample_forms(samples: list[Sample], median: float | None) -> None:
    report = make_report(started_at=None).model_copy(update={"samples": samples})  # the samples set the origin
    ordered = ordered_samples(report)
    assert ordered == _reference_ordered(samples)
    assert [id(s) for s in ordered] == [id(s) for s in _reference_ordered(samples)]
    assert report_origin(report, ordered) == report_origin(report)
    seconds = seconds_of(ordered)
    assert seconds == [_reference_sample_seconds(s) for s in ordered]
    expected_rtt = repr(_reference_rtt(ordered))
    assert repr(derive_rtt(report)) == expected_rtt
    assert repr(derive_rtt(report, ordered, seconds)) == expected_rtt
    expected_quality = repr(_reference_quality(ordered, median))
    assert repr(derive_quality(report, median)) == expected_quality
    assert repr(derive_quality(report, median, ordered, seconds)) == expected_quality


@settings(max_examples=150, deadline=None)
@given(_samples())
def test_durations_shared_by_facts_and_rows_change_neither(samples: list[Sample]) -> None:
    """The row builder subtracts each sample's times once (sample_durations) for the facts and the
    call_samples rows; both come out as when each computed its own."""
    report = make_report().model_copy(update={"samples": samples})
    durations = sample_durations(report.samples)
    facts = derive_call_facts(report, FactsEnv.default())
    assert derive_call_facts(report, FactsEnv.default(), durations) == facts
    now = datetime(2026, 11, 26, tzinfo=UTC)
    shared = rows_for_call(report, facts, "t", now, durations)["call_samples"]
    own = rows_for_call(report, facts, "t", now)["call_samples"]
    assert list(shared) == list(own)
    assert [r["duration_s"] for r in shared] == [
        (s.end - s.start).total_seconds() if s.end is not None else 1.0 for s in samples
    ]
    assert richness(report) == len({s.start for s in samples})  # the report has nothing else


def _reference_ice_from_samples(samples: Sequence[Sample]) -> tuple[bool, int]:
    return any(s.ice_state == "failed" for s in samples), count_reconnects(s.ice_state for s in samples if s.ice_state)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([None, "", "new", "checking", "connected", "completed", "disconnected", "failed"]),
                max_size=60))
def test_sample_ice_states_counted_in_runs_as_one_by_one(sequence: list[str | None]) -> None:
    """derive_ice reads the samples' ICE states once and counts reconnects over runs of one state."""
    samples = [Sample.model_construct(start=T0 + timedelta(seconds=i), ice_state=state)
               for i, state in enumerate(sequence)]
    failed, reconnects = _reference_ice_from_samples(samples)
    ice = derive_ice(make_report(samples=samples))
    assert ice.reconnects == reconnects
    assert ice.ice_failed == (failed and not ice.ice_connected)
