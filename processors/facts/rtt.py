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
from processors.facts.model import RTT_BANDS
from processors.facts.timeline import ordered_samples, sample_durations

DEFAULT_SAMPLE_SECONDS = 1.0
_SOURCES: tuple[str | None, ...] = ("candidate-pair", "remote-inbound-rtp", None)
# the bands' upper limits (ms, exclusive): rtt_band and derive_rtt's seconds per band read these
EXCELLENT_BELOW_MS, GOOD_BELOW_MS, ACCEPTABLE_BELOW_MS = 100, 150, 300


def rtt_band(ms: float) -> str:
    """The RTT quality band of a round-trip time in milliseconds."""
    if ms < EXCELLENT_BELOW_MS:
        return "excellent"
    if ms < GOOD_BELOW_MS:
        return "good"
    if ms < ACCEPTABLE_BELOW_MS:
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


def seconds_of(samples: Sequence[Sample]) -> list[float]:
    """Every sample's duration in seconds, in order (see the module docstring): computed once per
    report and read by the RTT bands and the bitrates."""
    return seconds_from_durations(sample_durations(samples))


def seconds_from_durations(durations: Sequence[float | None]) -> list[float]:
    """``seconds_of`` from the samples' ``timeline.sample_durations``."""
    return [d if d is not None and d > 0 else DEFAULT_SAMPLE_SECONDS for d in durations]


def derive_rtt(
    report: CallReport, samples: Sequence[Sample] | None = None, seconds: Sequence[float] | None = None
) -> RttStats:
    """RTT facts of a report (``samples``: already ordered/deduplicated samples, if at hand;
    ``seconds``: their ``seconds_of``, if at hand)."""
    ordered = ordered_samples(report) if samples is None else samples
    durations = seconds_of(ordered) if seconds is None else seconds
    isfinite = math.isfinite
    # positions of the usable samples (an RTT that is finite and not negative) of the first source
    # that has any: positions, not (rtt, seconds) tuples, which the garbage collector would count
    picked: list[int] = []
    source = ""
    for candidate in _SOURCES:
        picked = [i for i, s in enumerate(ordered)
                  if s.rtt_source == candidate and (r := s.rtt_ms) is not None and isfinite(r) and r >= 0]
        if picked:
            source = candidate or "unknown"
            break
    if not picked:
        return RttStats(source, 0, None, None, None, "", dict.fromkeys(RTT_BANDS, 0.0))
    rtts = [ordered[i].rtt_ms or 0.0 for i in picked]
    values = sorted(rtts)
    # rtt_band inlined (one call per sample saved); each band's seconds add up in sample order
    excellent = good = acceptable = poor = 0.0
    for r, i in zip(rtts, picked, strict=True):
        d = durations[i]
        if r < EXCELLENT_BELOW_MS:
            excellent += d
        elif r < GOOD_BELOW_MS:
            good += d
        elif r < ACCEPTABLE_BELOW_MS:
            acceptable += d
        else:
            poor += d
    seconds_per_band = {"excellent": excellent, "good": good, "acceptable": acceptable, "poor": poor}
    median = percentile(values, 50)
    return RttStats(
        source=source,
        samples=len(values),
        median_ms=median,
        p95_ms=percentile(values, 95),
        max_ms=values[-1],
        band=rtt_band(median),
        seconds_per_band=seconds_per_band,
    )
