"""Diagnosis: each troubleshooting-guide label on a hand-made report, and the primary label."""

from __future__ import annotations

from pathlib import Path

from collector.contract import IceServer
from processors.facts.call_facts import derive_call_facts
from processors.facts.diagnosis import PRIORITY
from processors.facts.model import LABELS
from tests.unit.test_facts_fixtures import (
    BERLIN_IP,
    STUN_EU,
    TURN_EU_TCP,
    TURN_EU_UDP,
    TURN_USE_UDP,
    TURNS_EU,
    at,
    cand,
    connected_states,
    err,
    make_env,
    make_report,
    pair,
    relay_call,
    srflx_call,
    state,
)


def test_priority_covers_every_label() -> None:
    assert sorted(PRIORITY) == sorted(LABELS)


def test_ok(tmp_path: Path) -> None:
    f = derive_call_facts(srflx_call(), make_env(tmp_path))
    assert (f.diagnosis, f.labels) == ("ok", ["ok"])


def test_stun_unreachable_701_on_stun_and_no_srflx(tmp_path: Path) -> None:
    local = cand("r1", "relay", "198.51.100.131", url=TURN_EU_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    report = relay_call(local, candidate_errors=[err(STUN_EU, 701)])
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.diagnosis == "stun_unreachable"
    # with a srflx gathered (another STUN server answered) it is not unreachable
    assert (
        "stun_unreachable"
        not in derive_call_facts(srflx_call(candidate_errors=[err(STUN_EU, 701)]), make_env(tmp_path)).labels
    )


def test_turn_down_701_on_turn_and_no_relay(tmp_path: Path) -> None:
    # TURN down: 701 on every TURN URL, no relay; the call still connected over srflx.
    report = srflx_call(
        candidates=[c for c in srflx_call().candidates if c.candidate_type != "relay"],
        candidate_errors=[err(TURN_EU_UDP, 701), err(TURNS_EU, 701)],
    )
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.diagnosis == "turn_unreachable" and f.labels == ["turn_unreachable"]
    assert [(e.url, e.error_code, e.count) for e in f.candidate_errors] == [(TURN_EU_UDP, 701, 1), (TURNS_EU, 701, 1)]


def test_stun_and_turn_down_all_ice_fails(tmp_path: Path) -> None:
    report = make_report(
        ice_servers=[IceServer(urls=[STUN_EU, TURN_EU_UDP])],
        candidates=[cand("h1", "host", "192.168.1.10", gathered=0.01)],
        candidate_errors=[err(STUN_EU, 701), err(TURN_EU_UDP, 701)],
        states=[state(0.1, "ice", "checking"), state(15, "ice", "failed"), state(15, "connection", "failed")],
    )
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.labels == ["turn_unreachable", "stun_unreachable", "ice_failed"]
    assert f.diagnosis == "turn_unreachable" and f.ice_failed and f.never_connected


def test_wrong_turn_password(tmp_path: Path) -> None:
    report = make_report(
        ice_transport_policy="relay",
        ice_servers=[IceServer(urls=[TURN_EU_UDP])],
        candidates=[cand("h1", "host", "192.168.1.10", gathered=0.01)],
        states=[state(0, "ice", "new"), state(0, "connection", "new")],
        candidate_errors=[err(TURN_EU_UDP, 401)],
        ended_at=at(30),
    )
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.diagnosis == "turn_auth_failed" and f.labels == ["turn_auth_failed"]
    assert f.never_connected and not f.ice_failed and not f.ice_connected and f.path_class == ""


def test_ice_failed(tmp_path: Path) -> None:
    report = srflx_call(
        selected_pairs=[],
        samples=[],
        states=[state(0.1, "ice", "checking"), state(20, "ice", "failed")],
    )
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.diagnosis == "ice_failed" and f.labels == ["ice_failed"]


def test_dtls_stall(tmp_path: Path) -> None:
    states = [state(0.5, "ice", "connected"), state(0.5, "dtls", "connecting"), state(40, "connection", "failed")]
    f = derive_call_facts(srflx_call(states=states, samples=[]), make_env(tmp_path))
    assert f.diagnosis == "dtls_stall" and f.dtls_stall and f.dtls_stall_ms == 39_500.0


def test_distant_relay_explains_high_rtt(tmp_path: Path) -> None:
    local = cand("r1", "relay", "198.51.100.7", url=TURN_USE_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    f = derive_call_facts(relay_call(local, rtts=[320.0] * 5), make_env(tmp_path))
    assert f.labels == ["distant_relay", "high_rtt"] and f.diagnosis == "distant_relay"


def test_udp_blocked_tcp_relay(tmp_path: Path) -> None:
    local = cand("r1", "relay", "198.51.100.131", url=TURNS_EU, relay_protocol="tls", related_address=BERLIN_IP)
    f = derive_call_facts(relay_call(local), make_env(tmp_path))
    assert f.diagnosis == "udp_blocked_tcp_relay" and f.path_class == "relay-tls"
    # TCP relay chosen although a UDP relay was gathered: not a UDP block
    udp = cand("r2", "relay", "198.51.100.132", url=TURN_EU_UDP, relay_protocol="udp")
    tcp = cand("r1", "relay", "198.51.100.131", url=TURN_EU_TCP, relay_protocol="tcp")
    report = relay_call(tcp, candidates=[tcp, udp, cand("rs1", "srflx", "198.51.100.250", remote=True)])
    assert "udp_blocked_tcp_relay" not in derive_call_facts(report, make_env(tmp_path)).labels
    # only TLS TURN configured: a configuration choice, not a block
    tls_only = relay_call(local, ice_servers=[IceServer(urls=[TURNS_EU])])
    assert derive_call_facts(tls_only, make_env(tmp_path)).labels == ["ok"]


def test_symmetric_nat_relay_is_informational(tmp_path: Path) -> None:
    report = srflx_call(selected_pairs=[pair("r1", "rs1", 0.5)], states=connected_states())
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.path_class == "relay-udp"
    assert f.labels == ["ok", "symmetric_nat_relay"] and f.diagnosis == "ok"


def test_high_rtt(tmp_path: Path) -> None:
    f = derive_call_facts(srflx_call(rtts=[310.0, 305.0, 290.0]), make_env(tmp_path))
    assert f.diagnosis == "high_rtt" and f.rtt_band == "poor"
    assert "high_rtt" not in derive_call_facts(srflx_call(rtts=[299.0] * 3), make_env(tmp_path)).labels


def test_701_on_a_stun_url_chromium_derived_from_a_turn_url_is_not_stun_unreachable() -> None:
    """Seen on Chromium 156 with the TURN server down: a 701 for the turn: URL and one for a stun:
    URL with the same host that was never configured."""
    from collector.contract import CallReport, CandidateError, IceServer
    from processors.facts.call_facts import FactsEnv, derive_call_facts

    report = CallReport(
        call_id="c", report_id="r", source_format="w3c",
        ice_servers=[IceServer(urls=["turn:198.18.0.1:3478?transport=udp"])],
        candidate_errors=[CandidateError(url="turn:198.18.0.1:3478?transport=udp", error_code=701),
                          CandidateError(url="stun:198.18.0.1:3478", error_code=701)],
    )
    facts = derive_call_facts(report, FactsEnv.default())
    assert "turn_unreachable" in facts.labels and "stun_unreachable" not in facts.labels
