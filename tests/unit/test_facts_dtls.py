"""DTLS after ICE: connect time, stall (threshold, failed, never connected), failure, sources."""

from __future__ import annotations

from collector.contract import Sample
from processors.facts.dtls import derive_dtls
from tests.unit.test_facts_fixtures import at, connected_states, make_report, srflx_call, state


def test_dtls_connect_time_from_ice_connected() -> None:
    dtls = derive_dtls(srflx_call())
    assert dtls.dtls_connected and dtls.dtls_connect_ms == 200.0
    assert not dtls.dtls_stall and dtls.dtls_stall_ms is None and not dtls.dtls_failed


def test_stall_when_dtls_stays_connecting_after_ice_connected() -> None:
    # The corpus `undefined-ice-candidate` shape: ICE connected, DTLS connecting, connection fails.
    states = [
        state(0.0, "ice", "checking"),
        state(0.07, "ice", "connected"),
        state(0.07, "dtls", "connecting"),
        state(0.07, "connection", "connecting"),
        state(12.0, "connection", "disconnected"),
        state(30.0, "connection", "failed"),
    ]
    dtls = derive_dtls(srflx_call(states=states, samples=[]))
    assert dtls.dtls_stall and not dtls.dtls_connected and not dtls.dtls_failed
    assert dtls.dtls_stall_ms == 29_930.0


def test_stall_from_per_sample_dtls_state() -> None:
    samples = [Sample(start=at(i), end=at(i + 1), ice_state="connected", dtls_state="connecting") for i in range(8)]
    dtls = derive_dtls(make_report(samples=samples, final=False))
    assert dtls.dtls_stall and dtls.dtls_stall_ms == 7000.0


def test_late_dtls_connect_is_a_stall_of_that_duration() -> None:
    dtls = derive_dtls(srflx_call(states=connected_states(ice_at=0.5, dtls_at=6.5)))
    assert dtls.dtls_connected and dtls.dtls_stall and dtls.dtls_stall_ms == 6000.0
    relaxed = derive_dtls(srflx_call(states=connected_states(ice_at=0.5, dtls_at=6.5)), stall_threshold_ms=10_000)
    assert not relaxed.dtls_stall


def test_dtls_failed_is_a_stall() -> None:
    states = [state(0.5, "ice", "connected"), state(0.5, "dtls", "connecting"), state(1.5, "dtls", "failed")]
    dtls = derive_dtls(srflx_call(states=states, samples=[]))
    assert dtls.dtls_failed and dtls.dtls_stall and dtls.dtls_stall_ms == 1000.0


def test_intermediate_segment_shortly_after_ice_is_not_yet_a_stall() -> None:
    states = [state(0.5, "ice", "connected"), state(0.5, "dtls", "connecting")]
    dtls = derive_dtls(srflx_call(states=states, samples=[], final=False))
    assert not dtls.dtls_stall
    # the same in the final report: the call ended without DTLS ever connecting
    assert derive_dtls(srflx_call(states=states, samples=[], final=True)).dtls_stall


def test_firefox_connection_state_connected_means_dtls_done() -> None:
    # Firefox: no transport stats, no DTLS events; connectionState connected implies DTLS.
    states = [state(0.1, "ice", "checking"), state(0.4, "ice", "connected"), state(0.9, "connection", "connected")]
    dtls = derive_dtls(srflx_call(states=states, samples=[]))
    assert dtls.dtls_connected and dtls.dtls_connect_ms == 500.0 and not dtls.dtls_stall


def test_no_ice_no_stall() -> None:
    states = [state(0.1, "ice", "checking"), state(10, "ice", "failed"), state(0.1, "dtls", "new")]
    dtls = derive_dtls(srflx_call(states=states, selected_pairs=[], samples=[]))
    assert not dtls.dtls_stall and not dtls.dtls_connected


def test_report_without_dtls_or_connection_state_shows_no_stall() -> None:
    samples = [Sample(start=at(i), end=at(i + 1), rtt_ms=40.0, packets_received=50) for i in range(10)]
    dtls = derive_dtls(make_report(samples=samples))
    assert not dtls.dtls_stall and dtls.dtls_connected
