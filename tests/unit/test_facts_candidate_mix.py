"""Candidate-type mix: selected pair types, path class, relay protocol, gathered types, TURN server, changes."""

from __future__ import annotations

import pytest

from collector.contract import IceServer
from processors.facts.candidate_mix import derive_candidate_mix, resolve_relay_protocol
from tests.unit.test_facts_fixtures import (
    BERLIN_IP,
    TURN_EU_TCP,
    TURN_EU_UDP,
    TURNS_EU,
    build_inventory,
    cand,
    make_report,
    pair,
    relay_call,
    srflx_call,
)


def test_selected_pair_types_and_path_class_direct() -> None:
    mix = derive_candidate_mix(srflx_call(), build_inventory())
    assert (mix.local_candidate_type, mix.remote_candidate_type) == ("srflx", "srflx")
    assert mix.path_class == "srflx" and mix.local_protocol == "udp"
    assert mix.turn_server_id == "" and mix.relay_protocol == ""


def test_gathered_types_in_fixed_order() -> None:
    mix = derive_candidate_mix(srflx_call(), build_inventory())
    assert mix.gathered_types == ("host", "srflx", "relay")
    assert mix.gathered_relay_protocols == ("udp",)
    assert mix.configured_stun and mix.configured_turn and mix.configured_turn_udp


@pytest.mark.parametrize(
    ("url", "relay_protocol", "expected"),
    [
        (TURNS_EU, "tls", "relay-tls"),
        (TURN_EU_TCP, "tcp", "relay-tcp"),
        (TURN_EU_UDP, "udp", "relay-udp"),
    ],
)
def test_relay_path_class_and_turn_server_from_url(url: str, relay_protocol: str, expected: str) -> None:
    local = cand("r1", "relay", "198.51.100.131", protocol="udp", url=url, relay_protocol=relay_protocol)
    mix = derive_candidate_mix(relay_call(local), build_inventory())
    assert mix.path_class == expected
    assert (mix.turn_server_id, mix.turn_region, mix.turn_url) == ("turn-eu-1", "eu", url)


def test_turn_server_from_relayed_address_when_url_missing() -> None:
    local = cand("r1", "relay", "198.51.100.5", protocol="udp", relay_protocol="udp")
    mix = derive_candidate_mix(relay_call(local), build_inventory())
    assert (mix.turn_server_id, mix.turn_region) == ("turn-use-1", "us-east")


def test_turn_server_from_ipv6_relayed_address() -> None:
    local = cand("r1", "relay", "2001:db8:3::42", protocol="udp", relay_protocol="udp")
    mix = derive_candidate_mix(relay_call(local), build_inventory())
    assert mix.turn_server_id == "turn-eu-1"


def test_remote_relay_does_not_make_a_relay_path() -> None:
    report = srflx_call(
        candidates=[cand("s1", "srflx", BERLIN_IP), cand("rr", "relay", "198.51.100.140", remote=True)],
        selected_pairs=[pair("s1", "rr")],
    )
    mix = derive_candidate_mix(report, build_inventory())
    assert mix.path_class == "srflx" and mix.remote_candidate_type == "relay" and not mix.is_relay


def test_safari_without_relay_protocol_uses_the_url_then_priority() -> None:
    # Safari: no relayProtocol, and `protocol` says udp even for TURN/TLS.
    by_url = cand("r1", "relay", "198.51.100.131", protocol="udp", url=TURNS_EU)
    assert resolve_relay_protocol(by_url) == ("tls", "url")
    by_priority = cand("r1", "relay", "198.51.100.131", protocol="udp", priority=(0 << 24) | 0x7FFF)
    assert resolve_relay_protocol(by_priority) == ("tls", "priority")
    tcp_priority = cand("r1", "relay", "198.51.100.131", protocol="udp", priority=(1 << 24) | 0x1234)
    assert resolve_relay_protocol(tcp_priority) == ("tcp", "priority")
    mix = derive_candidate_mix(relay_call(by_priority), build_inventory())
    assert (mix.path_class, mix.relay_protocol_source) == ("relay-tls", "priority")


def test_bare_turn_url_is_udp_then_protocol_is_the_last_resort() -> None:
    bare = "turn:turn-eu.example.net"
    assert resolve_relay_protocol(cand("r1", "relay", None, url=bare, priority=(1 << 24) | 5)) == ("udp", "url")
    assert resolve_relay_protocol(cand("r1", "relay", None, protocol="tcp")) == ("tcp", "protocol")
    assert resolve_relay_protocol(cand("r1", "relay", None)) == ("", "")


def test_collector_resolution_is_kept() -> None:
    c = cand("r1", "relay", None, url=TURN_EU_UDP, relay_protocol="tls", relay_protocol_source="priority")
    assert resolve_relay_protocol(c) == ("tls", "priority")


def test_no_selected_pair() -> None:
    mix = derive_candidate_mix(srflx_call(selected_pairs=[]), build_inventory())
    assert mix.path_class == "" and mix.local_candidate_type == "" and mix.local is None
    assert mix.pair_changes == 0
    assert mix.gathered_types == ("host", "srflx", "relay")


def test_selected_pair_with_unknown_candidate_ids() -> None:
    mix = derive_candidate_mix(srflx_call(selected_pairs=[pair("nope", "nada")]), build_inventory())
    assert mix.path_class == "" and mix.remote is None


def test_pair_change_mid_call_uses_the_last_pair_and_counts_switches() -> None:
    report = srflx_call(selected_pairs=[pair("s1", "rs1", 0.5), pair("r1", "rs1", 30.0)])
    mix = derive_candidate_mix(report, build_inventory())
    assert mix.path_class == "relay-udp" and mix.pair_changes == 1


def test_pair_changes_out_of_order_and_duplicated() -> None:
    pairs = [pair("r1", "rs1", 30.0), pair("s1", "rs1", 0.5), pair("r1", "rs1", 30.0), pair("s1", "rs1", 0.5)]
    mix = derive_candidate_mix(srflx_call(selected_pairs=pairs), build_inventory())
    assert mix.path_class == "relay-udp" and mix.pair_changes == 1


def test_pair_changes_take_the_reported_counter_minus_first_selection() -> None:
    # W3C selectedCandidatePairChanges counts the first selection: 3 means two switches.
    mix = derive_candidate_mix(srflx_call(reported_pair_changes=3), build_inventory())
    assert mix.pair_changes == 2
    assert derive_candidate_mix(srflx_call(reported_pair_changes=1), build_inventory()).pair_changes == 0


def test_firefox_pair_without_transport_stats() -> None:
    # Firefox: the pair comes from `candidate-pair.selected`; no reported counter, no transport.
    local = cand("r1", "relay", "198.51.100.131", protocol="udp", url=TURNS_EU)
    report = relay_call(local, reported_pair_changes=None, browser="firefox")
    mix = derive_candidate_mix(report, build_inventory())
    assert mix.path_class == "relay-tls" and mix.relay_protocol_source == "url" and mix.pair_changes == 0


def test_configuration_inferred_from_candidates_when_not_reported() -> None:
    report = make_report(candidates=[cand("r1", "relay", None, url="turns:turn-eu.example.net:443")])
    mix = derive_candidate_mix(report, build_inventory())
    assert mix.configured_turn and not mix.configured_turn_udp and not mix.configured_stun


def test_tcp_only_turn_configuration_is_not_udp() -> None:
    report = make_report(ice_servers=[IceServer(urls=[TURN_EU_TCP, TURNS_EU])])
    mix = derive_candidate_mix(report, build_inventory())
    assert mix.configured_turn and not mix.configured_turn_udp


def test_configured_turn_region_is_known_without_a_relay() -> None:
    """The 'relay gathering failing' alert groups calls that gathered no relay by the TURN region
    they were configured with."""
    report = make_report(ice_servers=[IceServer(urls=[TURN_EU_UDP])])
    mix = derive_candidate_mix(report, build_inventory())
    assert mix.configured_turn and "relay" not in mix.gathered_types
    assert (mix.configured_turn_server_id, mix.configured_turn_region) == ("turn-eu-1", "eu")
    assert mix.turn_region == ""
