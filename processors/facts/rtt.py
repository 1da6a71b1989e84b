"""RTT buckets: the quality bands, per-call median/p95/max, the call's band, seconds per band.

Bands (reference network requirements): excellent < 100 ms, good 100-<150, acceptable 150-<300,
poor >= 300. The call's band is the band of its median.

Source: one source per call. Samples from the selected pair's ``currentRoundTripTime``
(``candidate-pair``) are used when there are any; otherwise RTCP ``remote-inbound-rtp``
samples; otherwise samples with no declared source (recorded as ``unknown``). Negative and
non-finite values are dropped.

Percentiles interpolate linearly between the two nearest ranks. A sample's duration is
``end - start``; samples without an end (or with a non-positive one) count as 1 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.contract import CallReport, Sample
from processors.facts.timeline import ordered_samples

DEFAULT_SAMPLE_SECONDS = 1.0
_SOURCES: tuple[str | None, ...] = ("candidate-pair", "remote-inbound-rtp", None)


def rtt_band(ms: float) -> str:
    """The RTT quality band of a round-trip time in milliseconds."""
    if ms < 100:
        return "excellent"
    if ms < 150:
        return "good"
    if ms < 300:
        return "acceptable"
    return "poor"


@dataclass(frozen=True)
class RttStats:
    source: str  # candidate-pair | remote-inbound-rtp | unknown | "" (no RTT at all)
    samples: int
    median_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    band: str
    seconds_per_band: dict[str, float] = field(default_factory=dict)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linear interpolation."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def sample_seconds(s: Sample) -> float:
    if s.end is not None:
        seconds = (s.end - s.start).total_seconds()
        if seconds > 0:
            return seconds
    return DEFAULT_SAMPLE_SECONDS


def _usable(s: Sample) -> bool:
    return s.rtt_ms is not None and math.isfinite(s.rtt_ms) and s.rtt_ms >= 0


def derive_rtt(report: CallReport, samples: Sequence[Sample] | None = None) -> RttStats:
    """RTT facts of a report (``samples``: already ordered/deduplicated samples, if at hand)."""
    pool = [s for s in (ordered_samples(report) if samples is None else samples) if _usable(s)]
    chosen: list[Sample] = []
    source = ""
    for candidate in _SOURCES:
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
            seconds[rtt_band(s.rtt_ms)] += sample_seconds(s)
    median = percentile(values, 50)
    return RttStats(
        source=source,
        samples=len(values),
        median_ms=median,
        p95_ms=percentile(values, 95),
        max_ms=values[-1],
        band=rtt_band(median),
        seconds_per_band=seconds,
    )
