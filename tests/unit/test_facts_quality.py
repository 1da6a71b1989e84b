"""Quality: jitter, loss %, bitrates and the E-model MOS estimate."""

from __future__ import annotations

import pytest

from collector.contract import Sample
from processors.facts.quality import derive_quality, estimate_mos, mos_from_r, r_factor
from tests.unit.test_facts_fixtures import at, make_report


def test_jitter_loss_and_bitrates() -> None:
    samples = [
        Sample(
            start=at(i),
            end=at(i + 1),
            jitter_ms=j,
            packets_received=49,
            packets_lost=1,
            bytes_sent=4000,
            bytes_received=5000,
        )
        for i, j in enumerate([10.0, 20.0, 30.0, 40.0])
    ]
    q = derive_quality(make_report(samples=samples), rtt_median_ms=40.0)
    assert q.jitter_ms == 25.0
    assert q.loss_pct == pytest.approx(2.0)
    assert q.connection_send_kbps == 32.0 and q.connection_recv_kbps == 40.0
    assert q.mos is not None and 3.5 < q.mos < 4.4


def test_no_media_no_quality() -> None:
    q = derive_quality(make_report(), rtt_median_ms=None)
    assert (q.jitter_ms, q.loss_pct, q.mos, q.connection_send_kbps) == (None, None, None, None)


def test_negative_interval_loss_counts_as_zero() -> None:
    samples = [Sample(start=at(0), packets_received=100, packets_lost=-2)]
    assert derive_quality(make_report(samples=samples), None).loss_pct == 0.0


def test_emodel_reference_points() -> None:
    # Perfect network: R = 93.2 - 10/40 = 92.95 -> MOS about 4.4
    assert mos_from_r(r_factor(0, 0, 0)) == pytest.approx(4.40, abs=0.01)
    # Delay impairment switches slope at 160 ms effective latency
    assert r_factor(300, 0, 0) == pytest.approx(93.2 - (160 - 120) / 10)
    # 5 % random loss with G.711 PLC: Ie_eff = 95 * 5 / 30.1
    assert r_factor(0, 0, 5) == pytest.approx(93.2 - 0.25 - 95 * 5 / 30.1)
    assert mos_from_r(0) == 1.0 and mos_from_r(120) == 4.5


def test_mos_falls_with_rtt_jitter_and_loss() -> None:
    good = estimate_mos(30, 5, 0)
    assert good is not None
    for worse in (estimate_mos(600, 5, 0), estimate_mos(30, 80, 0), estimate_mos(30, 5, 10)):
        assert worse is not None and worse < good
    assert estimate_mos(30, None, None) is None
    bad = estimate_mos(2000, 200, 60)
    assert bad is not None and 1.0 <= bad < 2.0
