"""ICE timing and failures: gathering, first srflx/relay, connect time, failure, reconnects, errors."""

from __future__ import annotations

from collector.contract import Sample
from processors.facts.ice import count_reconnects, derive_ice
from tests.unit.test_facts_fixtures import (
    STUN_EU,
    TURN_EU_UDP,
    at,
    cand,
    err,
    make_report,
    rtt_samples,
    srflx_call,
    state,
)


def test_timing_from_the_first_event() -> None:
    report = srflx_call(states=[*srflx_call().states, state(0.3, "gathering", "complete")])
    ice = derive_ice(report)
    assert ice.first_srflx_ms == 50.0 and ice.first_relay_ms == 120.0
    assert ice.ice_gathering_ms == 300.0
    assert ice.ice_connect_ms == 500.0 and ice.ice_connected and ice.ice_connected_at == at(0.5)
    assert not ice.ice_failed and not ice.never_connected and ice.reconnects == 0


def test_gathering_time_without_a_complete_state_is_the_last_local_candidate() -> None:
    assert derive_ice(srflx_call()).ice_gathering_ms == 120.0


def test_ice_failed_without_any_succeeded_pair() -> None:
    report = srflx_call(
        selected_pairs=[],
        samples=[],
        states=[state(0, "ice", "new"), state(0.1, "ice", "checking"), state(10, "ice", "failed")],
    )
    ice = derive_ice(report)
    assert ice.ice_failed and ice.never_connected and not ice.ice_connected


def test_failure_after_connecting_is_not_an_ice_failure() -> None:
    states = [state(0.1, "ice", "checking"), state(0.5, "ice", "connected"), state(60, "ice", "failed")]
    ice = derive_ice(srflx_call(states=states))
    assert not ice.ice_failed and ice.ice_connected


def test_wrong_turn_password_never_connects_and_reports_401() -> None:
    # Chromium, relay-only policy, wrong TURN credential: states stay `new`, a 401 per attempt.
    report = make_report(
        ice_transport_policy="relay",
        candidates=[cand("h1", "host", "192.168.1.10", gathered=0.01)],
        states=[state(0, "ice", "new"), state(0, "connection", "new"), state(0, "gathering", "gathering")],
        candidate_errors=[err(TURN_EU_UDP, 401, 0.2), err(TURN_EU_UDP, 401, 0.4)],
        ended_at=at(20),
    )
    ice = derive_ice(report)
    assert ice.never_connected and not ice.ice_failed and not ice.ice_connected
    assert [(e.url, e.error_code, e.count) for e in ice.candidate_errors] == [(TURN_EU_UDP, 401, 2)]


def test_candidate_errors_grouped_by_url_and_code_repeats_dropped() -> None:
    errors = [err(STUN_EU, 701, 0.2), err(STUN_EU, 701, 0.2), err(STUN_EU, 701, 0.3), err(TURN_EU_UDP, 701, 0.2)]
    errors.append(err(TURN_EU_UDP, 401, None))
    ice = derive_ice(make_report(candidate_errors=errors))
    assert [(e.url, e.error_code, e.count) for e in ice.candidate_errors] == [
        (STUN_EU, 701, 2),
        (TURN_EU_UDP, 401, 1),
        (TURN_EU_UDP, 701, 1),
    ]


def test_reconnects_count_returns_to_connected() -> None:
    assert count_reconnects(["new", "checking", "connected", "disconnected", "connected", "failed"]) == 1
    assert count_reconnects(["connected", "completed", "disconnected", "checking", "completed"]) == 1
    assert count_reconnects(["checking", "failed", "checking", "connected"]) == 0
    states = [
        state(0.5, "ice", "connected"),
        state(10, "ice", "disconnected"),
        state(12, "ice", "connected"),
        state(20, "ice", "failed"),
        state(25, "ice", "connected"),
    ]
    assert derive_ice(srflx_call(states=states)).reconnects == 2


def test_reconnects_also_counted_on_connection_state_and_samples() -> None:
    conn = [
        state(0.5, "connection", "connected"),
        state(5, "connection", "disconnected"),
        state(6, "connection", "connected"),
    ]
    assert derive_ice(srflx_call(states=conn)).reconnects == 1
    # ICE stayed connected while connectionState dropped and recovered (seen in real dumps)
    assert derive_ice(srflx_call(states=[state(0.4, "ice", "connected"), *conn])).reconnects == 1
    samples = [
        Sample(start=at(i), end=at(i + 1), ice_state=s)
        for i, s in enumerate(["connected", "disconnected", "connected", "connected"])
    ]
    ice = derive_ice(make_report(samples=samples))
    assert ice.reconnects == 1 and ice.ice_connected and ice.ice_connected_at == at(1)


def test_states_out_of_order_and_duplicated() -> None:
    states = [
        state(12, "ice", "connected"),
        state(10, "ice", "disconnected"),
        state(0.5, "ice", "connected"),
        state(10, "ice", "disconnected"),
        state(0.5, "ice", "connected"),
    ]
    ice = derive_ice(srflx_call(states=states))
    assert ice.reconnects == 1 and ice.ice_connect_ms == 500.0


def test_media_without_state_information_counts_as_connected() -> None:
    # An early Telnyx report: audio and RTT samples only, no ice/transport blocks.
    ice = derive_ice(make_report(samples=rtt_samples([50.0, 55.0])))
    assert ice.ice_connected and not ice.never_connected


def test_empty_report_claims_nothing() -> None:
    ice = derive_ice(make_report())
    assert not ice.never_connected and not ice.ice_failed and ice.ice_gathering_ms is None
