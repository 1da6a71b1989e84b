"""RTT buckets: bands, median/p95/max, the call's band, seconds per band, the source used."""

from __future__ import annotations

import pytest

from collector.contract import Sample
from processors.facts.rtt import derive_rtt, percentile, rtt_band
from tests.unit.test_facts_fixtures import at, make_report, rtt_samples


@pytest.mark.parametrize(
    ("ms", "band"),
    [
        (0, "excellent"),
        (99.9, "excellent"),
        (100, "good"),
        (149.9, "good"),
        (150, "acceptable"),
        (299.9, "acceptable"),
        (300, "poor"),
        (2000, "poor"),
    ],
)
def test_rtt_band_boundaries(ms: float, band: str) -> None:
    assert rtt_band(ms) == band


def test_median_p95_max_and_band_by_median() -> None:
    values = [20.0, 30.0, 25.0, 26.0, 24.0, 27.0, 425.0, 22.0, 28.0, 29.0]
    rtt = derive_rtt(make_report(samples=rtt_samples(values)))
    assert rtt.source == "candidate-pair" and rtt.samples == 10
    assert rtt.median_ms == 26.5 and rtt.max_ms == 425.0
    assert rtt.p95_ms == pytest.approx(percentile(sorted(values), 95))
    assert rtt.band == "excellent"


def test_seconds_per_band_use_sample_durations() -> None:
    samples = [
        Sample(start=at(0), end=at(2), rtt_ms=50.0, rtt_source="candidate-pair"),
        Sample(start=at(2), end=at(5), rtt_ms=120.0, rtt_source="candidate-pair"),
        Sample(start=at(5), rtt_ms=200.0, rtt_source="candidate-pair"),  # no end: 1 s
        Sample(start=at(6), end=at(6), rtt_ms=400.0, rtt_source="candidate-pair"),  # zero length: 1 s
    ]
    rtt = derive_rtt(make_report(samples=samples))
    assert rtt.seconds_per_band == {"excellent": 2.0, "good": 3.0, "acceptable": 1.0, "poor": 1.0}


def test_candidate_pair_preferred_then_remote_inbound_recorded() -> None:
    mixed = rtt_samples([40.0, 42.0]) + [
        Sample(start=at(10 + i), rtt_ms=300.0, rtt_source="remote-inbound-rtp") for i in range(5)
    ]
    assert derive_rtt(make_report(samples=mixed)).median_ms == 41.0
    # Firefox: no candidate-pair RTT, the RTCP round trip is used and recorded as such.
    rtcp = [Sample(start=at(i), rtt_ms=190.0 + i, rtt_source="remote-inbound-rtp") for i in range(3)]
    rtt = derive_rtt(make_report(samples=rtcp))
    assert (rtt.source, rtt.median_ms, rtt.band) == ("remote-inbound-rtp", 191.0, "acceptable")


def test_undeclared_source_is_unknown_and_bad_values_dropped() -> None:
    # The contract refuses NaN and negative RTTs at ingest; the fact still drops them (model_construct
    # stands in for a message written before the limits existed).
    samples = [Sample.model_construct(start=at(i), rtt_ms=v) for i, v in enumerate([80.0, float("nan"), -1.0, 90.0])]
    rtt = derive_rtt(make_report(samples=samples))
    assert (rtt.source, rtt.samples, rtt.median_ms) == ("unknown", 2, 85.0)


def test_no_rtt() -> None:
    rtt = derive_rtt(make_report())
    assert (rtt.source, rtt.samples, rtt.median_ms, rtt.band) == ("", 0, None, "")
    assert sum(rtt.seconds_per_band.values()) == 0


def test_duplicate_samples_count_once() -> None:
    samples = rtt_samples([50.0, 350.0])
    rtt = derive_rtt(make_report(samples=samples + samples))
    assert rtt.samples == 2 and rtt.seconds_per_band["poor"] == 1.0
